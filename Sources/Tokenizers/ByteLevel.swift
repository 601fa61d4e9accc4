// Mirrors GPT-2's `bytes_to_unicode` (used by the ByteLevel pre-tokenizer and decoder of
// `tokenizers`, and by CLIP's SimpleTokenizer).

/// The reversible map between bytes and printable characters of byte-level BPE.
enum ByteLevelTable {
    /// `byteToScalar[b]`: the character that stands for byte `b`.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    /// The inverse of ``byteToScalar``, indexed by scalar value (all are below 324).
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// Maps the UTF-8 bytes of `s` to byte-level characters.
    @inline(__always)
    static func encode(_ s: ArraySlice<Unicode.Scalar>, into out: inout [Unicode.Scalar]) {
        let table = byteToScalar
        table.withUnsafeBufferPointer { t in
            for c in s {
                if c.value < 128 {
                    out.append(t[Int(c.value)])
                } else {
                    for b in c.utf8 { out.append(t[Int(b)]) }
                }
            }
        }
    }

    /// Maps byte-level characters back to bytes; nil when a character is not byte-level.
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for c in token.unicodeScalars {
            guard Int(c.value) < scalarToByte.count, scalarToByte[Int(c.value)] >= 0 else { return nil }
            bytes.append(UInt8(scalarToByte[Int(c.value)]))
        }
        return bytes
    }
}
