import Foundation
import Testing
import Torch

@Suite struct SafeTensorsTests {
    /// A valid file's bytes built by hand: header JSON, then the data section.
    static func file(header: String, data: [UInt8]) -> Data {
        var out = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    func write(_ data: Data, _ folder: String, _ name: String = "t.safetensors") throws -> String {
        let path = folder + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func roundTripEveryDTypeWithMetadata() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = Tensor([1.5, -2, 3.25, 0, 7, -8] as [Float], shape: [2, 3])
        var tensors: [String: Tensor] = [:]
        for dtype in [DType.float32, .float16, .bfloat16, .int64, .int32, .uint8, .bool, .float64] {
            tensors["t.\(dtype)"] = dtype == .uint8 ? base.abs().to(dtype) : base.to(dtype)
        }
        tensors["scalar"] = Tensor(scalar: Float(4))
        tensors["empty"] = Tensor.zeros([0, 3])
        let path = folder + "/all.safetensors"
        try SafeTensors.write(tensors, metadata: ["format": "pt", "note": "round trip"], to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(file.metadata == ["format": "pt", "note": "round trip"])
        #expect(Set(file.names) == Set(tensors.keys))
        for (name, t) in tensors {
            let back = try file.tensor(name)
            #expect(back.dtype == t.dtype && back.shape == t.shape, "\(name)")
            #expect(back.bytes() == t.bytes(), "\(name)")
        }
        // No temporary files are left behind, and a second write replaces the file.
        try SafeTensors.write(["x": Tensor([1] as [Float])], to: path)
        #expect(try SafeTensorsFile(path: path).names == ["x"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["all.safetensors"])
    }

    @Test func readsFilesWrittenByTheReferenceLibrary() throws {
        // Written by Python's `safetensors.torch.save_file` (scripts/fixtures/torch_ops.py).
        let file = try SafeTensorsFile(path: fixturePath("ops.safetensors"))
        #expect(try file.tensor("x").shape == [2, 6, 5, 5])
        #expect(try file.tensor("mask").dtype == .bool)
        #expect(try file.tensor("topk_indices").dtype == .int64)
    }

    @Test func corruptFilesAreTypedErrorsNamingTheFile() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let data = Self.file(header: good, data: [UInt8](repeating: 0, count: 8))
        _ = try SafeTensorsFile(path: write(data, folder, "good.safetensors"))

        func expectError(_ bytes: Data, _ check: (TorchError) -> Bool, _ label: String) throws {
            let path = try write(bytes, folder, label + ".safetensors")
            do {
                _ = try SafeTensorsFile(path: path)
                Issue.record("\(label): no error")
            } catch let error as TorchError {
                #expect(check(error), "\(label): \(error)")
                #expect(error.description.contains(path), "\(label): message names the file")
            }
        }
        try expectError(Data([1, 2, 3]), { if case .truncated = $0 { true } else { false } }, "tiny")
        try expectError(data.prefix(20), { if case .truncated = $0 { true } else { false } }, "cut-header")
        try expectError(data.prefix(data.count - 3),
                        { if case .offsetsOutOfRange = $0 { true } else { false } }, "cut-data")
        try expectError(Self.file(header: "{not json", data: []),
                        { if case .badHeader = $0 { true } else { false } }, "json")
        try expectError(Self.file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}"#, data: [0]),
                        { if case .offsetsOutOfRange = $0 { true } else { false } }, "range")
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        try expectError(Self.file(header: overlap, data: [UInt8](repeating: 0, count: 12)),
                        { if case .overlappingTensors = $0 { true } else { false } }, "overlap")
        try expectError(Self.file(header: #"{"a":{"dtype":"F8_E9","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0]),
                        { if case .unknownDType(_, "a", "F8_E9") = $0 { true } else { false } }, "dtype")
        try expectError(Self.file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                                  data: [UInt8](repeating: 0, count: 8)),
                        { if case .sizeMismatch = $0 { true } else { false } }, "size")
        try expectError(Self.file(header: #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#,
                                  data: [UInt8](repeating: 0, count: 8)),
                        { if case .badHeader = $0 { true } else { false } }, "shape")
        // Found by the fuzzer: a 2^62-element shape whose byte count overflows trapped.
        try expectError(Self.file(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}}"#,
                                  data: [UInt8](repeating: 0, count: 8)),
                        { if case .sizeMismatch = $0 { true } else { false } }, "bytes-overflow")
        #expect(throws: TorchError.fileNotFound(path: folder + "/nope.safetensors")) {
            try SafeTensorsFile(path: folder + "/nope.safetensors")
        }
        let file = try SafeTensorsFile(path: folder + "/good.safetensors")
        #expect(throws: TorchError.self) { try file.tensor("b") }
    }

    @Test func shardedCheckpoints() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try SafeTensors.write(["a": Tensor([1, 2] as [Float])], to: folder + "/m-00001-of-00002.safetensors")
        try SafeTensors.write(["b": Tensor([3] as [Int64])], to: folder + "/m-00002-of-00002.safetensors")
        let index = #"{"metadata":{"total_size":24},"weight_map":{"a":"m-00001-of-00002.safetensors","#
            + #""b":"m-00002-of-00002.safetensors"}}"#
        try index.write(toFile: folder + "/m.safetensors.index.json", atomically: true, encoding: .utf8)
        let source = try openSafeTensors(path: folder + "/m.safetensors.index.json")
        #expect(source.names == ["a", "b"])
        #expect(try source.tensor("b").toArray(Int64.self) == [3])
        #expect(source.location(of: "a").hasSuffix("m-00001-of-00002.safetensors"))
        let broken = #"{"weight_map":{"a":"m-00002-of-00002.safetensors"}}"#
        try broken.write(toFile: folder + "/bad.safetensors.index.json", atomically: true, encoding: .utf8)
        #expect(throws: TorchError.self) { try openSafeTensors(path: folder + "/bad.safetensors.index.json") }
    }
}
