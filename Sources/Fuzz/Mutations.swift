// Mutations: byte flips, truncations, insertions, JSON-level lies, and each binary format's
// structured lies (header lengths, dtypes, shapes, offsets, counts, chunk sizes).
import Foundation
import Torch

/// SplitMix64: the fuzzer's seeded stream (same seed, same cases).
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Numbers that break naive code: zero, negatives, 2^62, the largest doubles, non-integers.
nonisolated(unsafe) let hostileNumbers: [Any] = [0, -1, 1, 2, -(1 << 31), 1 << 31, 1 << 62, -(1 << 62), Int64.max, 1e308, -1e308, 1.5,
                             1e-308, 3, 7, 65536]
/// The same as JSON text, plus literals JSON does not allow.
let hostileLiterals = ["0", "-1", "4611686018427387904", "-4611686018427387904", "9223372036854775807",
                       "18446744073709551616", "1e308", "1e999", "-1e999", "NaN", "Infinity", "1.5", "\"x\"", "null",
                       "[]", "{}", "true", "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]"]

enum Mutation {
    /// A byte-level mutation of `data`; returns its label.
    static func bytes(_ data: inout [UInt8], _ rng: inout SplitMix) -> String {
        switch rng.below(5) {
        case 0:
            let n = 1 + rng.below(8)
            for _ in 0..<n where !data.isEmpty { data[rng.below(data.count)] ^= UInt8(1 << rng.below(8)) }
            return "flip \(n) bits"
        case 1:
            let keep = rng.below(data.count + 1)
            data = Array(data.prefix(keep))
            return "truncate to \(keep)"
        case 2:
            let at = rng.below(data.count + 1)
            let n = 1 + rng.below(64)
            data.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            return "insert \(n) bytes at \(at)"
        case 3:
            guard data.count > 1 else { return "none" }
            let start = rng.below(data.count), length = 1 + rng.below(Swift.min(256, data.count - start))
            let chunk = Array(data[start..<(start + length)])
            let at = rng.below(data.count + 1)
            data.insert(contentsOf: chunk, at: at)
            return "duplicate \(length) bytes at \(at)"
        default:
            let n = 1 + rng.below(4)
            for _ in 0..<n where !data.isEmpty { data[rng.below(data.count)] = rng.pick([0x00, 0xFF, 0x7F, 0x80, 0xC0]) }
            return "set \(n) bytes"
        }
    }

    /// A JSON-level lie: a number, string or container replaced by a hostile value, a key dropped,
    /// deep nesting, invalid UTF-8. Falls back to bytes when the seed is not a JSON object.
    static func json(_ data: inout [UInt8], _ rng: inout SplitMix) -> String {
        let choice = rng.below(6)
        if choice == 0 {
            // Text-level: a number literal replaced by one JSON may not even allow.
            let text = String(decoding: data, as: UTF8.self)
            let numbers = text.matches(of: /-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/).map(\.range)
            guard !numbers.isEmpty else { return bytes(&data, &rng) }
            let range = rng.pick(numbers)
            let literal = rng.pick(hostileLiterals)
            data = Array((String(text[..<range.lowerBound]) + literal + String(text[range.upperBound...])).utf8)
            return "number → \(literal)"
        }
        if choice == 1 {
            let depth = rng.pick([100, 1000, 100_000])
            let at = rng.below(data.count + 1)
            data.insert(contentsOf: Array(repeating: UInt8(ascii: "["), count: depth) + Array(repeating: UInt8(ascii: "]"), count: depth), at: at)
            return "nesting \(depth) deep"
        }
        if choice == 2 {
            let at = rng.below(data.count + 1)
            data.insert(contentsOf: rng.pick([[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00]]), at: at)
            return "invalid UTF-8"
        }
        guard var object = try? JSONSerialization.jsonObject(with: Data(data)) else { return bytes(&data, &rng) }
        let label = lie(&object, &rng, depth: 0)
        guard let out = try? JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed]) else {
            return bytes(&data, &rng)
        }
        data = [UInt8](out)
        return label
    }

    /// Replaces one leaf of `value` (walking down a random path).
    static func lie(_ value: inout Any, _ rng: inout SplitMix, depth: Int) -> String {
        if var dict = value as? [String: Any], !dict.isEmpty {
            let key = dict.keys.sorted()[rng.below(dict.count)]
            if rng.below(8) == 0 {
                dict.removeValue(forKey: key)
                value = dict
                return "drop `\(key)`"
            }
            var inner = dict[key]!
            let label = lie(&inner, &rng, depth: depth + 1)
            dict[key] = inner
            value = dict
            return "\(key).\(label)"
        }
        if var list = value as? [Any], !list.isEmpty, rng.below(4) != 0 {
            let i = rng.below(list.count)
            var inner = list[i]
            let label = lie(&inner, &rng, depth: depth + 1)
            list[i] = inner
            value = list
            return "[\(i)].\(label)"
        }
        switch rng.below(4) {
        case 0, 1:
            let n = rng.pick(hostileNumbers)
            value = n
            return "= \(n)"
        case 2:
            let replacement: Any = rng.pick(["", "x", String(repeating: "A", count: 10_000), NSNull(), [Any](), [String: Any]()] as [Any])
            value = replacement
            return "= \(type(of: replacement))"
        default:
            let list = Array(repeating: value, count: rng.pick([0, 2, 100]))
            value = list
            return "= [×\(list.count)]"
        }
    }

    /// JSON Lines: one line gets a JSON lie, or the file gets a byte-level mutation.
    static func jsonLines(_ data: inout [UInt8], _ rng: inout SplitMix) -> String {
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        guard rng.below(3) != 0, !lines.isEmpty else { return bytes(&data, &rng) }
        let i = rng.below(lines.count)
        let label = json(&lines[i], &rng)
        data = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
        return "line \(i + 1): \(label)"
    }
}

// MARK: - Structured lies of the binary formats

func putLE(_ value: UInt64, _ data: inout [UInt8], at offset: Int, width: Int) {
    guard offset >= 0, offset + width <= data.count else { return }
    for i in 0..<width { data[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
}

/// safetensors: the header length, an entry's dtype, shape or offsets, a duplicate name.
func safetensorsLie(_ data: inout [UInt8], _ rng: inout SplitMix) -> String {
    guard data.count >= 8 else { return Mutation.bytes(&data, &rng) }
    let length = Int(data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
    guard length <= data.count - 8 else { return Mutation.bytes(&data, &rng) }
    if rng.below(5) == 0 {
        let lie = rng.pick([0, 1, 7, UInt64(length + 1), UInt64(length - 1), 1 << 62, UInt64.max, UInt64(data.count)])
        putLE(lie, &data, at: 0, width: 8)
        return "header length → \(lie)"
    }
    guard var header = try? JSONSerialization.jsonObject(with: Data(data[8..<(8 + length)])) as? [String: Any] else {
        return Mutation.bytes(&data, &rng)
    }
    let names = header.keys.filter { $0 != "__metadata__" }.sorted()
    guard !names.isEmpty else { return Mutation.bytes(&data, &rng) }
    let name = rng.pick(names)
    var entry = header[name] as? [String: Any] ?? [:]
    var label: String
    var duplicate = false
    switch rng.below(6) {
    case 0:
        let dtype = rng.pick(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64", "I8", "F8_E4M3", "Q4", "", "f32"])
        entry["dtype"] = dtype
        label = "\(name).dtype → \(dtype)"
    case 1:
        let shape: [Any] = rng.pick([[1 << 62], [1 << 31, 1 << 31], [-1, 4], [0], [], [3, 0, 5], [1 << 40, 1 << 40, 1 << 40], [1.5]])
        entry["shape"] = shape
        label = "\(name).shape → \(shape)"
    case 2:
        let offsets = entry["data_offsets"] as? [Int] ?? [0, 0]
        let lie: [Any] = rng.pick([[offsets[1], offsets[0]], [0, 1 << 62], [offsets[0], offsets[1] + 8], [-8, offsets[1]],
                                   [0, offsets[1] - offsets[0]], [offsets[0] + 1, offsets[1] + 1], [0], ["0", "4"]])
        entry["data_offsets"] = lie
        label = "\(name).data_offsets → \(lie)"
    case 3:
        duplicate = true
        label = "duplicate `\(name)`"
    case 4:
        header["__metadata__"] = rng.pick([["crc32": "12"], ["step": "x"], ["a": 1], "meta"] as [Any])
        label = "metadata lie"
    default:
        entry = [:]
        label = "\(name) → {}"
    }
    header[name] = entry
    guard var json = try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) else {
        return Mutation.bytes(&data, &rng)
    }
    if duplicate, let entryJSON = try? JSONSerialization.data(withJSONObject: [name: entry], options: [.sortedKeys]) {
        // `{"name":{…},` spliced after the opening brace: the same key twice.
        var inner = entryJSON.dropFirst().dropLast()
        inner.append(UInt8(ascii: ","))
        json.insert(contentsOf: inner, at: 1)
    }
    var out = [UInt8](repeating: 0, count: 8)
    putLE(UInt64(json.count), &out, at: 0, width: 8)
    data = out + [UInt8](json) + Array(data[(8 + length)...])
    return label
}

/// GGUF: magic, version, the tensor and key-value counts, a length or type somewhere inside.
func ggufLie(_ data: inout [UInt8], _ rng: inout SplitMix) -> String {
    guard data.count >= 24 else { return Mutation.bytes(&data, &rng) }
    let huge = rng.pick([0, 1, 0xFFFF_FFFF, 1 << 32, 1 << 62, UInt64.max, 1 << 20] as [UInt64])
    switch rng.below(5) {
    case 0:
        putLE(UInt64(rng.pick([0x4655_4747, 0x4747_5546, 0])), &data, at: 0, width: 4)
        return "magic"
    case 1:
        let v = UInt64(rng.pick([0, 1, 2, 4, 0xFFFF_FFFF]))
        putLE(v, &data, at: 4, width: 4)
        return "version → \(v)"
    case 2:
        putLE(huge, &data, at: 8, width: 8)
        return "tensor count → \(huge)"
    case 3:
        putLE(huge, &data, at: 16, width: 8)
        return "key-value count → \(huge)"
    default:
        // A u64 somewhere in the metadata or tensor infos: a string length, an array count, a
        // dimension, an offset or (as u32) a value or tensor type.
        let at = 24 + rng.below(data.count - 24)
        let width = rng.pick([4, 8])
        putLE(huge, &data, at: at, width: width)
        return "u\(width * 8) at \(at) → \(huge)"
    }
}

/// PNG: IHDR dimensions (CRC fixed so the lie reaches the decoder), a chunk length, a CRC.
func pngLie(_ data: inout [UInt8], _ rng: inout SplitMix) -> String {
    guard data.count > 33 else { return Mutation.bytes(&data, &rng) }
    func fixCRC(chunkAt start: Int, length: Int) {
        let crc = data[(start + 4)..<(start + 8 + length)].withUnsafeBytes { checksumCRC32($0) }
        for i in 0..<4 { data[start + 8 + length + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(3 - i))) }
    }
    func putBE(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { data[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(3 - i))) }
    }
    switch rng.below(4) {
    case 0:
        let w = rng.pick([0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 100_000, 8000] as [UInt32])
        let h = rng.pick([0, 1, 0x7FFF_FFFF, 100_000, 8000, 16] as [UInt32])
        putBE(w, at: 16)
        putBE(h, at: 20)
        fixCRC(chunkAt: 8, length: 13)
        return "IHDR \(w)×\(h)"
    case 1:
        // bit depth / colour type / interlace
        data[24 + rng.below(5)] = UInt8(rng.pick([0, 3, 7, 16, 255]))
        fixCRC(chunkAt: 8, length: 13)
        return "IHDR fields"
    case 2:
        // The length of the chunk after IHDR.
        putBE(rng.pick([0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 20]), at: 33)
        return "chunk length"
    default:
        data[29 + rng.below(4)] ^= 0xFF
        return "IHDR CRC"
    }
}
