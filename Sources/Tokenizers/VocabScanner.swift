import Foundation

/// Reads a JSON object of `"token": id` pairs exactly as written.
///
/// `JSONDecoder` decodes objects into `[String: …]`, whose keys compare by canonical equivalence, so
/// `"é"` (U+00E9) and `"e\u0301"` would collapse into one entry; tokenizers keeps them apart.
struct VocabScanner {
    enum ScanError: Error {
        case malformed(offset: Int, reason: String)
    }

    private let bytes: [UInt8]
    private var i = 0

    init(_ data: Data) {
        bytes = [UInt8](data)
    }

    /// The pairs of the object at `keyPath` (e.g. `["model", "vocab"]`; `[]` for the root), or nil
    /// when the path does not lead to an object.
    static func pairs(in data: Data, at keyPath: [String]) throws(ScanError) -> [(String, Int)]? {
        var scanner = VocabScanner(data)
        return try scanner.scan(keyPath[...])
    }

    private mutating func scan(_ keyPath: ArraySlice<String>) throws(ScanError) -> [(String, Int)]? {
        skipSpace()
        guard peek() == UInt8(ascii: "{") else { return nil }
        if keyPath.isEmpty { return try readIntObject() }
        i += 1
        while true {
            skipSpace()
            if peek() == UInt8(ascii: "}") { return nil }
            let key = try readString()
            skipSpace()
            try expect(":")
            if key == keyPath.first! {
                return try scan(keyPath.dropFirst())
            }
            try skipValue()
            skipSpace()
            if peek() == UInt8(ascii: ",") { i += 1 } else { return nil }
        }
    }

    private mutating func readIntObject() throws(ScanError) -> [(String, Int)] {
        try expect("{")
        var out: [(String, Int)] = []
        skipSpace()
        if peek() == UInt8(ascii: "}") {
            i += 1
            return out
        }
        while true {
            skipSpace()
            let key = try readString()
            skipSpace()
            try expect(":")
            skipSpace()
            out.append((key, try readInt()))
            skipSpace()
            if peek() == UInt8(ascii: ",") {
                i += 1
            } else {
                try expect("}")
                return out
            }
        }
    }

    private func peek() -> UInt8 { i < bytes.count ? bytes[i] : 0 }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 32 || bytes[i] == 10 || bytes[i] == 13 || bytes[i] == 9 { i += 1 }
    }

    private mutating func expect(_ c: Unicode.Scalar) throws(ScanError) {
        guard peek() == UInt8(c.value) else { throw .malformed(offset: i, reason: "expected `\(c)`") }
        i += 1
    }

    private mutating func readInt() throws(ScanError) -> Int {
        var negative = false
        if peek() == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var value = 0
        let start = i
        while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
            value = value * 10 + Int(bytes[i] - 48)
            i += 1
        }
        guard i > start else { throw .malformed(offset: i, reason: "expected an integer id") }
        return negative ? -value : value
    }

    private mutating func readHex4() throws(ScanError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw .malformed(offset: i, reason: "truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw .malformed(offset: i, reason: "bad \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func readString() throws(ScanError) -> String {
        try expect("\"")
        var utf8: [UInt8] = []
        while true {
            guard i < bytes.count else { throw .malformed(offset: i, reason: "unterminated string") }
            let c = bytes[i]
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c != UInt8(ascii: "\\") {
                utf8.append(c)
                continue
            }
            guard i < bytes.count else { throw .malformed(offset: i, reason: "unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): utf8.append(10)
            case UInt8(ascii: "t"): utf8.append(9)
            case UInt8(ascii: "r"): utf8.append(13)
            case UInt8(ascii: "b"): utf8.append(8)
            case UInt8(ascii: "f"): utf8.append(12)
            case UInt8(ascii: "u"):
                var v = try readHex4()
                if v >= 0xD800 && v < 0xDC00, peek() == UInt8(ascii: "\\"), i + 1 < bytes.count,
                    bytes[i + 1] == UInt8(ascii: "u")
                {
                    i += 2
                    let low = try readHex4()
                    v = 0x10000 + ((v - 0xD800) << 10) + (low &- 0xDC00)
                }
                let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
                utf8.append(contentsOf: scalar.utf8)
            default: utf8.append(e)
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    private mutating func skipValue() throws(ScanError) {
        skipSpace()
        switch peek() {
        case UInt8(ascii: "\""):
            _ = try readString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            repeat {
                guard i < bytes.count else { throw .malformed(offset: i, reason: "unterminated value") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    _ = try readString()
                    continue
                }
                if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { depth += 1 }
                if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") { depth -= 1 }
                i += 1
            } while depth > 0
        default:
            while i < bytes.count, !",}] \n\r\t".utf8.contains(bytes[i]) { i += 1 }
        }
    }
}
