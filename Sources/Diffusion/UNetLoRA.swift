// LoRA on the UNet's attention projections, in the folder format diffusers' `save_lora_weights`
// writes and `pipe.load_lora_weights(folder)` reads.
import Foundation
import Torch
import TorchNN

/// A UNet LoRA folder as diffusers writes it: `pytorch_lora_weights.safetensors` with PEFT's keys
/// under `unet.` (`unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight`) and
/// the adapter's settings in the metadata entry `lora_adapter_metadata` (a JSON object of PEFT's
/// `LoraConfig` fields with `unet.` before each name).
public enum UNetLoRA {
    public static let fileName = "pytorch_lora_weights.safetensors"
    /// The attention projections diffusers' training scripts adapt.
    public static let defaultTargets: Set<String> = ["to_q", "to_k", "to_v", "to_out.0"]
    static let metadataKey = "lora_adapter_metadata"

    /// Rank, alpha and target modules of the LoRA in `folder`, checked: every `unet.` key a
    /// `lora_A` / `lora_B` pair of one rank.
    public static func plan(folder: String) throws -> LoRAInjection {
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path) }
        let file = try SafeTensorsFile(path: path)
        var ranks = Set<Int>()
        var targets = Set<String>()
        for name in file.names {
            guard name.hasPrefix("unet.") else {
                throw ModelError.badConfig(file: path, message: "`\(name)` is not a UNet LoRA weight (only `unet.` keys are supported)")
            }
            guard let info = file.info(name), info.shape.count == 2 else {
                throw ModelError.badConfig(file: path, message: "`\(name)` is not a matrix")
            }
            if name.hasSuffix(".lora_A.weight") {
                ranks.insert(info.shape[0])
                let module = String(name.dropFirst(5).dropLast(".lora_A.weight".count))
                targets.insert(module.hasSuffix(".to_out.0") ? "to_out.0" : String(module.split(separator: ".").last ?? ""))
            } else if !name.hasSuffix(".lora_B.weight") {
                throw ModelError.badConfig(file: path, message: "`\(name)` is neither lora_A nor lora_B")
            }
        }
        guard ranks.count == 1, let rank = ranks.first, rank > 0 else {
            throw ModelError.badConfig(file: path, message: ranks.isEmpty ? "no LoRA weights" : "several ranks \(ranks.sorted())")
        }
        var alpha = Double(rank)  // diffusers' default when no alpha is recorded
        if let text = file.metadata[metadataKey] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw ModelError.badConfig(file: path, message: "`\(metadataKey)` is not a JSON object")
            }
            if let r = (object["unet.r"] as? NSNumber)?.intValue, r != rank {
                throw ModelError.badConfig(file: path, message: "metadata says rank \(r), the weights \(rank)")
            }
            if let a = (object["unet.lora_alpha"] as? NSNumber)?.doubleValue { alpha = a }
            if object["unet.use_dora"] as? Bool == true || object["unet.use_rslora"] as? Bool == true {
                throw ModelError.unsupported(file: path, field: "use_dora / use_rslora", value: "true")
            }
        }
        try ConfigRange(file: path).real("lora_alpha", alpha, above: 0, atMost: 1e6)
        return LoRAInjection(rank: rank, alpha: alpha, targetModules: targets)
    }

    /// Loads the adapters of `folder` into a UNet built with its ``plan(folder:)``.
    public static func load(folder: String, into store: ParameterStore) throws {
        let file = try SafeTensorsFile(path: (folder as NSString).appendingPathComponent(fileName))
        try store.load(from: RenamedSource(file) { $0.hasPrefix("unet.") ? String($0.dropFirst(5)) : nil },
                       selection: .adapters)
    }

    /// Writes the UNet's adapters (`store`'s adapter parameters) as a diffusers LoRA folder.
    public static func save(_ store: ParameterStore, plan: LoRAInjection, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config: [String: Any] = [
            "unet.r": plan.rank, "unet.lora_alpha": plan.alpha, "unet.target_modules": plan.targetModules.sorted(),
            "unet.lora_dropout": 0.0, "unet.use_dora": false, "unet.use_rslora": false, "unet.bias": "none",
            "unet.init_lora_weights": true,
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
        try store.save(to: (folder as NSString).appendingPathComponent(fileName), selection: .adapters, keyPrefix: "unet.",
                       metadata: ["format": "pt", metadataKey: json])
    }
}

extension LoadOptions {
    /// Reads a UNet LoRA folder's plan (for ``UNet2DConditionModel/load(folder:options:)``).
    func unetInjection() throws -> LoRAInjection? {
        try unetLoRA.map { try UNetLoRA.plan(folder: $0) }
    }
}
