import Foundation
import Torch
import TorchNN

/// The safetensors weights of a transformers folder (`model.safetensors` or a sharded index).
func folderWeights(_ folder: String) throws -> TensorSource {
    let fm = FileManager.default
    for name in ["model.safetensors", "model.safetensors.index.json"] {
        let path = (folder as NSString).appendingPathComponent(name)
        if fm.fileExists(atPath: path) { return try openSafeTensors(path: path) }
    }
    throw VisionLanguageError.missingFile("no model.safetensors (or index) in \(folder)")
}

func decodeConfig<T: Decodable>(_ type: T.Type, folder: String) throws -> (T, String) {
    let path = (folder as NSString).appendingPathComponent("config.json")
    guard FileManager.default.fileExists(atPath: path) else { throw VisionLanguageError.missingFile(path) }
    do {
        return (try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: path))), path)
    } catch {
        throw VisionLanguageError.badConfig(file: path, message: "\(error)")
    }
}

extension CausalLM {
    /// Loads a transformers Llama / Qwen2 folder (config and weights, strictly); the parameters are
    /// frozen (LoRA adapters are added on top).
    public static func load(folder: String, dtype: DType = .float32, device: Device = .cpu, lora: LoRASettings? = nil,
                            seed: UInt64 = 0) throws -> CausalLM {
        let (config, path) = try decodeConfig(CausalLMConfig.self, folder: folder)
        try config.validate(file: path)
        let store = try ParameterStore(device: device, dtype: dtype, seed: seed)
        let model = try CausalLM(config: config, path: store.root, lora: lora)
        store.freeze(adapters: false)
        try store.load(from: HidingSource(try folderWeights(folder), hiding: model.ignoredKeys))
        return model
    }
}
