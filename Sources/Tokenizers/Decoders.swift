// Mirrors the decoders of Hugging Face `tokenizers` 0.23 (`tokenizers/src/decoders`).

/// Turns tokens back into text.
indirect enum TokenDecoder: Sendable {
    /// No decoder: tokens joined with spaces, as `tokenizers` does.
    case none
    case byteLevel
    case fuse
    case sequence([TokenDecoder])

    init(_ config: DecoderConfig?, path: String, field: String = "decoder") throws(TokenizersError) {
        guard let config else {
            self = .none
            return
        }
        switch config.type {
        case "ByteLevel": self = .byteLevel
        case "Fuse": self = .fuse
        case "Sequence":
            var list: [TokenDecoder] = []
            for (i, d) in (config.decoders ?? []).enumerated() {
                list.append(try TokenDecoder(d, path: path, field: "\(field).decoders.\(i)"))
            }
            self = .sequence(list)
        default:
            throw .unsupported(path: path, field: field + ".type", value: config.type)
        }
    }

    /// The decode chain: tokens in, tokens out (joined by the caller).
    func chain(_ tokens: [String]) -> [String] {
        switch self {
        case .none:
            return tokens
        case .fuse:
            return [tokens.joined()]
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                if let b = ByteLevelTable.decode(t) { bytes += b } else { bytes += Array(t.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .sequence(let list):
            var t = tokens
            for d in list { t = d.chain(t) }
            return t
        }
    }

    func decode(_ tokens: [String]) -> String {
        if case .none = self { return tokens.joined(separator: " ") }
        return chain(tokens).joined()
    }
}
