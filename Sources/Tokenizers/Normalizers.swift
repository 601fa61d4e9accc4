import Foundation

// Mirrors the normalizers of Hugging Face `tokenizers` 0.23 (`tokenizers/src/normalizers`).

/// A text normalizer, applied to the text between added tokens before pre-tokenization.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case replace(SplitPattern, [Unicode.Scalar])
    case strip(left: Bool, right: Bool)
    case prepend([Unicode.Scalar])
    case stripAccents
    case sequence([Normalizer])

    init(_ config: NormalizerConfig, path: String, field: String = "normalizer") throws(TokenizersError) {
        switch config.type {
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "StripAccents": self = .stripAccents
        case "Strip":
            self = .strip(left: config.stripLeft ?? true, right: config.stripRight ?? true)
        case "Prepend":
            self = .prepend(Array((config.prepend ?? "").unicodeScalars))
        case "Replace":
            guard let pattern = config.pattern else {
                throw .corruptFile(path: path, field: field + ".pattern", reason: "missing")
            }
            self = .replace(
                try SplitPattern.make(pattern, path: path, field: field + ".pattern"),
                Array((config.content ?? "").unicodeScalars))
        case "Sequence":
            var list: [Normalizer] = []
            for (i, n) in (config.normalizers ?? []).enumerated() {
                list.append(try Normalizer(n, path: path, field: "\(field).normalizers.\(i)"))
            }
            self = .sequence(list)
        default:
            throw .unsupported(path: path, field: field + ".type", value: config.type)
        }
    }

    /// Normalizes `s` in place.
    func apply(_ s: inout [Unicode.Scalar]) {
        switch self {
        case .nfc, .nfd, .nfkc, .nfkd:
            // ASCII is invariant under every normalization form.
            if s.allSatisfy({ $0.value < 128 }) { return }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s)
            let text = String(view)
            let out: String
            switch self {
            case .nfc: out = text.precomposedStringWithCanonicalMapping
            case .nfd: out = text.decomposedStringWithCanonicalMapping
            case .nfkc: out = text.precomposedStringWithCompatibilityMapping
            default: out = text.decomposedStringWithCompatibilityMapping
            }
            s = Array(out.unicodeScalars)
        case .lowercase:
            // Per scalar, as Rust's `char::to_lowercase` (no final-sigma context).
            var i = 0
            while i < s.count {
                let c = s[i]
                if c.value < 128 {
                    if c.value >= 65 && c.value <= 90 { s[i] = Unicode.Scalar(c.value + 32)! }
                    i += 1
                    continue
                }
                let mapped = Array(c.properties.lowercaseMapping.unicodeScalars)
                if mapped.count == 1 {
                    s[i] = mapped[0]
                    i += 1
                } else {
                    s.replaceSubrange(i..<(i + 1), with: mapped)
                    i += mapped.count
                }
            }
        case .replace(let pattern, let content):
            var ranges: [Range<Int>] = []
            pattern.matches(s, into: &ranges)
            // Skip the copy when every match already equals its replacement (`\s+` → " " on
            // single spaces).
            if ranges.allSatisfy({ s[$0].elementsEqual(content) }) { return }
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(s.count)
            var last = 0
            for r in ranges {
                out.append(contentsOf: s[last..<r.lowerBound])
                out.append(contentsOf: content)
                last = r.upperBound
            }
            out.append(contentsOf: s[last...])
            s = out
        case .strip(let left, let right):
            if right {
                while let l = s.last, CharClass.isSpace(l) { s.removeLast() }
            }
            if left {
                let n = s.prefix { CharClass.isSpace($0) }.count
                s.removeFirst(n)
            }
        case .prepend(let p):
            if !s.isEmpty { s.insert(contentsOf: p, at: 0) }
        case .stripAccents:
            s.removeAll { $0.properties.generalCategory == .nonspacingMark }
        case .sequence(let list):
            for n in list { n.apply(&s) }
        }
    }
}
