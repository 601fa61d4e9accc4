import Foundation
import Torch
import TorchNN

/// `config.json` of a transformers folder, decoded, with its path (for validation messages).
func decodeConfig<T: Decodable>(_ type: T.Type, folder: String) throws -> (T, String) {
    (try ModelFolder.config(T.self, in: folder), (folder as NSString).appendingPathComponent("config.json"))
}

extension CausalLM {
    /// Loads a transformers Llama / Qwen2 folder (config and weights, strictly); the parameters are
    /// frozen (LoRA adapters are added on top).
    public static func load(folder: String, dtype: DType = .float32, device: Device = .cpu, lora: LoRASettings? = nil,
                            seed: UInt64 = 0) throws -> CausalLM {
        let (config, path) = try decodeConfig(CausalLMConfig.self, folder: folder)
        try config.validate(file: path)
        let weights = try ModelFolder.weights(in: folder)
        let store = try ParameterStore(device: device, dtype: dtype, seed: seed)
        store.limitScalars(to: weights)
        let model = try CausalLM(config: config, path: store.root, lora: lora)
        try store.checkBudget(config: path)
        store.freeze(adapters: false)
        try store.load(from: HidingSource(weights, hiding: model.ignoredKeys))
        return model
    }
}
