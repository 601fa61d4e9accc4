import Foundation
import Torch

func fixturePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

/// Largest absolute difference divided by the reference's largest magnitude (at least 1).
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    let scale = Swift.max(1, b.to(.float64).abs().max().item())
    return (a.to(.float64) - b.to(.float64)).abs().max().item() / scale
}

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "promptloop-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A dictionary of tensors served as a checkpoint.
struct DictionarySource: TensorSource {
    var tensors: [String: Tensor]
    var file = "dict.safetensors"
    var names: [String] { tensors.keys.sorted() }
    func info(_ name: String) -> TensorInfo? {
        tensors[name].map { TensorInfo(dtype: $0.dtype, shape: $0.shape, range: 0..<0) }
    }
    func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw TorchError.missingTensor(path: file, tensor: name) }
        return t
    }
    func location(of name: String) -> String { file }
}
