import Foundation
import Torch
import TorchNN

/// Writes models in the diffusers / transformers folder layout, so that the Python ecosystem
/// (`StableDiffusionPipeline.from_pretrained`) loads what PromptLoop trained.
public enum DiffusersExport {
    /// Encodes `config` to JSON with extra keys (`_class_name`, `model_type`, …) merged in.
    static func configJSON<C: Encodable>(_ config: C, extra: [String: Any]) throws -> Data {
        let encoded = try JSONEncoder().encode(config)
        var object = try JSONSerialization.jsonObject(with: encoded) as? [String: Any] ?? [:]
        for (k, v) in extra { object[k] = v }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    static func folder(_ root: String, _ name: String) throws -> String {
        let path = (root as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func weights(_ store: ParameterStore, dtype: DType) -> [String: Tensor] {
        store.state(.base).mapValues { $0.dtype.isFloatingPoint ? $0.to(dtype) : $0 }
    }

    public static func writeUNet(_ store: ParameterStore, config: UNet2DConditionConfig, to root: String,
                                 dtype: DType = .float32) throws {
        let dir = try folder(root, "unet")
        try writeAtomically(configJSON(config, extra: ["_class_name": "UNet2DConditionModel",
                                                        "_diffusers_version": "0.42.1"]),
                            to: dir + "/config.json")
        try SafeTensors.write(weights(store, dtype: dtype), metadata: ["format": "pt"],
                              to: dir + "/diffusion_pytorch_model.safetensors")
    }

    public static func writeVAE(_ store: ParameterStore, config: AutoencoderKLConfig, to root: String,
                                dtype: DType = .float32) throws {
        let dir = try folder(root, "vae")
        try writeAtomically(configJSON(config, extra: ["_class_name": "AutoencoderKL", "_diffusers_version": "0.42.1"]),
                            to: dir + "/config.json")
        try SafeTensors.write(weights(store, dtype: dtype), metadata: ["format": "pt"],
                              to: dir + "/diffusion_pytorch_model.safetensors")
    }

    /// Writes `text_encoder/` with transformers 4's key layout (`text_model.…`), which both
    /// transformers 4 and 5 load.
    public static func writeTextEncoder(_ store: ParameterStore, config: CLIPTextConfig, to root: String,
                                        dtype: DType = .float32) throws {
        let dir = try folder(root, "text_encoder")
        try writeAtomically(configJSON(config, extra: ["architectures": ["CLIPTextModel"],
                                                        "model_type": "clip_text_model",
                                                        "torch_dtype": "\(dtype)", "dtype": "\(dtype)"]),
                            to: dir + "/config.json")
        try SafeTensors.write(weights(store, dtype: dtype), metadata: ["format": "pt"], to: dir + "/model.safetensors")
    }

    /// Copies a diffusers component folder (`config.json` and its single safetensors file) into
    /// `root/name`, converting floating-point weights to `dtype`.
    public static func copyComponent(from source: String, name: String, to root: String, dtype: DType) throws {
        let dir = try folder(root, name)
        let weights = try ModelFolder.weights(in: source)
        var tensors: [String: Tensor] = [:]
        for key in weights.names {
            let t = try weights.tensor(key)
            tensors[key] = t.dtype.isFloatingPoint ? t.to(dtype) : t
        }
        let file = weights.location(of: weights.names.first ?? "")
        try SafeTensors.write(tensors, metadata: ["format": "pt"],
                              to: dir + "/" + (file as NSString).lastPathComponent)
        try writeAtomically(Data(contentsOf: URL(fileURLWithPath: source + "/config.json")), to: dir + "/config.json")
    }

    public static func writeScheduler(_ config: SchedulerConfig, to root: String) throws {
        let dir = try folder(root, "scheduler")
        try writeAtomically(configJSON(config, extra: ["_diffusers_version": "0.42.1"]),
                            to: dir + "/scheduler_config.json")
    }

    /// `model_index.json` of a StableDiffusionPipeline without safety checker.
    public static func writeModelIndex(to root: String, schedulerClass: String, tokenizerClass: String) throws {
        let index: [String: Any] = [
            "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", tokenizerClass],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
            "scheduler": ["diffusers", schedulerClass], "safety_checker": [NSNull(), NSNull()],
            "feature_extractor": [NSNull(), NSNull()], "requires_safety_checker": false,
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]),
                            to: (root as NSString).appendingPathComponent("model_index.json"))
    }
}
