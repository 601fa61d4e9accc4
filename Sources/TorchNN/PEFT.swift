import Foundation
import Torch

/// `adapter_config.json` of a PEFT LoRA adapter (the fields PromptLoop reads and writes).
public struct PEFTLoRAConfig: Codable, Sendable, Equatable {
    public var peftType = "LORA"
    public var taskType: String? = "CAUSAL_LM"
    public var r: Int
    public var loraAlpha: Double
    public var loraDropout = 0.0
    public var targetModules: [String]
    public var useRslora = false
    public var bias = "none"
    public var fanInFanOut = false
    public var inferenceMode = true
    public var baseModelNameOrPath: String? = nil

    enum CodingKeys: String, CodingKey {
        case peftType = "peft_type", taskType = "task_type", r, loraAlpha = "lora_alpha"
        case loraDropout = "lora_dropout", targetModules = "target_modules", useRslora = "use_rslora", bias
        case fanInFanOut = "fan_in_fan_out", inferenceMode = "inference_mode"
        case baseModelNameOrPath = "base_model_name_or_path"
        case useDora = "use_dora", rankPattern = "rank_pattern", alphaPattern = "alpha_pattern"
        case modulesToSave = "modules_to_save"
    }

    public init(r: Int, loraAlpha: Double, loraDropout: Double = 0, targetModules: [String], useRslora: Bool = false,
                taskType: String? = "CAUSAL_LM", baseModelNameOrPath: String? = nil) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.loraDropout = loraDropout
        self.targetModules = targetModules.sorted()
        self.useRslora = useRslora
        self.taskType = taskType
        self.baseModelNameOrPath = baseModelNameOrPath
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peftType = try c.decodeIfPresent(String.self, forKey: .peftType) ?? "LORA"
        taskType = try c.decodeIfPresent(String.self, forKey: .taskType)
        r = try c.decode(Int.self, forKey: .r)
        loraAlpha = try c.decode(Double.self, forKey: .loraAlpha)
        loraDropout = try c.decodeIfPresent(Double.self, forKey: .loraDropout) ?? 0
        // PEFT writes a list (or a single regex string, which PromptLoop does not interpret).
        if let list = try? c.decode([String].self, forKey: .targetModules) {
            targetModules = list.sorted()
        } else {
            let text = try c.decode(String.self, forKey: .targetModules)
            throw DecodingError.dataCorruptedError(forKey: .targetModules, in: c,
                debugDescription: "target_modules given as a pattern (\(text)) is not supported; list the modules")
        }
        useRslora = try c.decodeIfPresent(Bool.self, forKey: .useRslora) ?? false
        bias = try c.decodeIfPresent(String.self, forKey: .bias) ?? "none"
        fanInFanOut = try c.decodeIfPresent(Bool.self, forKey: .fanInFanOut) ?? false
        inferenceMode = try c.decodeIfPresent(Bool.self, forKey: .inferenceMode) ?? true
        baseModelNameOrPath = try c.decodeIfPresent(String.self, forKey: .baseModelNameOrPath)
        // Variants PromptLoop does not implement are refused rather than loaded wrongly.
        if try c.decodeIfPresent(Bool.self, forKey: .useDora) == true {
            throw DecodingError.dataCorruptedError(forKey: .useDora, in: c, debugDescription: "DoRA is not supported")
        }
        for key in [CodingKeys.rankPattern, .alphaPattern] {
            if let pattern = try c.decodeIfPresent([String: Double].self, forKey: key), !pattern.isEmpty {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                                                       debugDescription: "per-module \(key.rawValue) is not supported")
            }
        }
        if let modules = try c.decodeIfPresent([String].self, forKey: .modulesToSave), !modules.isEmpty {
            throw DecodingError.dataCorruptedError(forKey: .modulesToSave, in: c,
                                                   debugDescription: "modules_to_save is not supported")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(peftType, forKey: .peftType)
        try c.encodeIfPresent(taskType, forKey: .taskType)
        try c.encode(r, forKey: .r)
        try c.encode(loraAlpha, forKey: .loraAlpha)
        try c.encode(loraDropout, forKey: .loraDropout)
        try c.encode(targetModules, forKey: .targetModules)
        try c.encode(useRslora, forKey: .useRslora)
        try c.encode(bias, forKey: .bias)
        try c.encode(fanInFanOut, forKey: .fanInFanOut)
        try c.encode(inferenceMode, forKey: .inferenceMode)
        try c.encodeIfPresent(baseModelNameOrPath, forKey: .baseModelNameOrPath)
        try c.encode(false, forKey: .useDora)
    }
}

/// PEFT's on-disk adapter format: `adapter_config.json` and `adapter_model.safetensors` whose keys
/// are the model's adapter keys under `base_model.model.` (`base_model.model.model.layers.0.self_attn
/// .q_proj.lora_A.weight`), so PEFT in Python loads what PromptLoop trains and the reverse.
public enum PEFTAdapter {
    public static let keyPrefix = "base_model.model."

    public static func save(_ store: ParameterStore, config: PEFTLoRAConfig, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(config), to: folder + "/adapter_config.json")
        try store.save(to: folder + "/adapter_model.safetensors", selection: .adapters, keyPrefix: keyPrefix)
    }

    /// The adapter's `adapter_config.json` (a LoRA one), checked.
    public static func readConfig(folder: String) throws -> PEFTLoRAConfig {
        let configPath = folder + "/adapter_config.json"
        guard FileManager.default.fileExists(atPath: configPath) else { throw TorchError.fileNotFound(path: configPath) }
        let config: PEFTLoRAConfig
        do {
            config = try JSONDecoder().decode(PEFTLoRAConfig.self, from: Data(contentsOf: URL(fileURLWithPath: configPath)))
        } catch {
            throw NNError.invalidConfig("\(configPath): \(error)")
        }
        guard config.peftType == "LORA" else { throw NNError.invalidConfig("\(configPath): peft_type \(config.peftType) is not LORA") }
        return config
    }

    /// Reads `adapter_config.json`, checks it against the model's adapter settings, and loads the
    /// adapter weights strictly.
    public static func load(into store: ParameterStore, expecting expected: PEFTLoRAConfig, from folder: String) throws {
        let configPath = folder + "/adapter_config.json"
        let config = try readConfig(folder: folder)
        guard config.r == expected.r, config.loraAlpha == expected.loraAlpha, config.useRslora == expected.useRslora,
              config.targetModules == expected.targetModules
        else {
            throw NNError.invalidConfig("\(configPath): adapter r=\(config.r) alpha=\(config.loraAlpha) "
                + "targets=\(config.targetModules) does not match the model's r=\(expected.r) "
                + "alpha=\(expected.loraAlpha) targets=\(expected.targetModules)")
        }
        guard config.bias == "none", !config.fanInFanOut else {
            throw NNError.invalidConfig("\(configPath): bias=\(config.bias), fan_in_fan_out=\(config.fanInFanOut) "
                + "are not supported")
        }
        try store.load(from: SafeTensorsFile(path: folder + "/adapter_model.safetensors"), selection: .adapters,
                       keyPrefix: keyPrefix)
    }
}
