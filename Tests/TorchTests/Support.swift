import Foundation
import Testing
import Torch

/// Path of a fixture file next to this test target's sources.
func fixturePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

/// Largest absolute difference divided by the reference's largest magnitude (at least 1).
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    let x = a.to(.float64)
    let y = b.to(.float64)
    let scale = Swift.max(1, y.abs().max().item())
    return (x - y).abs().max().item() / scale
}

func floats(_ t: Tensor) -> [Float] { t.toArray(Float.self) }

/// A fresh temporary folder, removed by the caller.
func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "promptloop-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
