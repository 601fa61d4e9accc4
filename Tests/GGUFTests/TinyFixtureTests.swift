import Foundation
import Testing

@testable import GGUF

/// `tiny.gguf` was written by gguf-py 0.19.0's `GGUFWriter` and `tiny_reference.json` is what its
/// `GGUFReader` and `gguf.quants.dequantize` make of it (`scripts/fixtures/gguf_fixtures.py`).
@Suite struct TinyFixtureTests {
    let file: GGUFFile
    let reference: [String: Any]

    init() throws {
        file = try GGUFFile(url: Fixtures.tiny)
        reference = try Fixtures.json("tiny_reference.json")
    }

    @Test func header() {
        #expect(file.version == 3)
        #expect(file.alignment == reference["alignment"] as? Int)
        #expect(file.alignment == 64)
        #expect(file.dataOffset == reference["data_offset"] as? Int)
        #expect(file.metadataKeys == reference["keys"] as? [String])
    }

    /// Every GGUF value type, compared with gguf-py's `ReaderField.contents()`.
    @Test func metadataOfEveryValueType() throws {
        let fields = try #require(reference["metadata"] as? [String: [String: Any]])
        #expect(fields.count == file.metadata.count)
        for (key, field) in fields {
            let value = try #require(file.metadata[key], "missing \(key)")
            let types = try #require(field["types"] as? [String])
            #expect(typeChain(value) == types, "\(key)")
            #expect(matches(value, field["value"]!), "\(key): \(value) vs \(field["value"]!)")
        }
        // Exact values the script wrote, beyond what JSON can carry faithfully.
        #expect(file.metadata["t.u64"] == .uint64(1 << 63 + 5))
        #expect(file.metadata["t.f32"] == .float32(0.1))
        #expect(file.metadata["t.f64"] == .float64(1e-300))
        #expect(file.metadata["t.string"]?.stringValue == "héllo wörld ✓ \"quoted\"\n")
        // gguf-py flattens nested arrays in `contents()`; the writer was given [[1, 2], [3]].
        #expect(
            file.metadata["t.array.nested"]
                == .array(
                    elementType: .array,
                    [
                        .array(elementType: .int32, [.int32(1), .int32(2)]),
                        .array(elementType: .int32, [.int32(3)]),
                    ]))
    }

    @Test func tensorTable() throws {
        let tensors = try #require(reference["tensors"] as? [[String: Any]])
        #expect(file.tensors.map(\.name) == tensors.map { $0["name"] as! String })
        for (info, ref) in zip(file.tensors, tensors) {
            #expect(info.type.description == ref["type"] as? String)
            #expect(info.dimensions == ref["dims"] as? [Int])
            #expect(info.fileOffset == ref["data_offset"] as? Int)
            #expect(info.byteCount == ref["n_bytes"] as? Int)
            #expect(info.fileOffset % file.alignment == 0)
        }
        #expect(file.tensor(named: "q8_0.3d")?.shape == [2, 3, 32])
        #expect(file.tensor(named: "nope") == nil)
    }

    /// F32 (with NaN and -0), F16 (subnormals, ±inf), BF16, Q8_0, Q4_0, Q4_1: bit-identical to gguf-py.
    @Test func dequantisedValuesEqualReference() throws {
        let tensors = try #require(reference["tensors"] as? [[String: Any]])
        var seen = Set<String>()
        for ref in tensors {
            let name = ref["name"] as! String
            let values = try file.dequantize(named: name)
            let expected = (ref["bits"] as! [Int]).map { UInt32($0) }
            #expect(Fixtures.bits(values[...]) == expected, "\(name)")
            seen.insert(ref["type"] as! String)
        }
        #expect(seen == Set(GGMLType.dequantisable.map(\.description)))
    }

    @Test func missingTensorIsAnError() {
        #expect(throws: GGUFError.tensorNotFound(path: file.path, tensor: "nope")) {
            try file.dequantize(named: "nope")
        }
    }

    @Test func halfConversionIsExactForAllHalves() {
        // Independent check against Float16 where the platform has it.
        #if arch(x86_64) || arch(arm64)
            for h in 0...UInt16.max {
                let mine = halfToFloat(h)
                let theirs = Float(Float16(bitPattern: h))
                if theirs.isNaN {
                    #expect(mine.isNaN)
                } else {
                    #expect(mine.bitPattern == theirs.bitPattern, "half \(h)")
                }
            }
        #endif
    }

    // MARK: - Helpers

    func typeChain(_ v: GGUFValue) -> [String] {
        let name = String(describing: v.type).uppercased()
        if case .array(let elementType, let elements) = v {
            if elementType == .array, let first = elements.first { return [name] + typeChain(first) }
            return [name, String(describing: elementType).uppercased()]
        }
        return [name == "FLOAT32" ? "FLOAT32" : name]
    }

    func matches(_ v: GGUFValue, _ json: Any) -> Bool {
        switch v {
        case .string(let s): return s == json as? String
        case .bool(let b): return b == json as? Bool
        case .float32(let f): return (json as? NSNumber).map { Float($0.doubleValue) == f } ?? false
        case .float64(let d): return (json as? NSNumber)?.doubleValue == d
        case .uint64(let u): return (json as? NSNumber)?.uint64Value == u
        case .array(_, let elements):
            guard let list = json as? [Any] else { return false }
            let flat = flatten(elements)
            return flat.count == list.count && zip(flat, list).allSatisfy { matches($0, $1) }
        default: return (json as? NSNumber)?.int64Value == v.intValue.map(Int64.init)
        }
    }

    func flatten(_ values: [GGUFValue]) -> [GGUFValue] {
        values.flatMap { v -> [GGUFValue] in
            if case .array(_, let inner) = v { return flatten(inner) }
            return [v]
        }
    }
}
