import Foundation
import Torch

/// Reading diffusers / transformers model folders: `config.json` plus safetensors weights
/// (single file, `fp16`-style variants, or sharded with an index).
public enum ModelFolder {
    /// Decodes `config.json` (or `name`) in `folder`, naming the file on any error.
    public static func config<T: Decodable>(_ type: T.Type, in folder: String, name: String = "config.json") throws -> T {
        let path = (folder as NSString).appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch let error as DecodingError {
            throw ModelError.badConfig(file: path, message: describe(error))
        } catch {
            throw ModelError.badConfig(file: path, message: "\(error)")
        }
    }

    /// The weights in `folder`: `<stem>[.variant].safetensors` or its sharded index, for the stems
    /// diffusers (`diffusion_pytorch_model`) and transformers (`model`) use.
    public static func weights(in folder: String, variant: String? = nil) throws -> TensorSource {
        let fm = FileManager.default
        guard fm.fileExists(atPath: folder) else { throw ModelError.missingFile(folder) }
        var tried: [String] = []
        for stem in ["diffusion_pytorch_model", "model"] {
            let base = variant.map { "\(stem).\($0)" } ?? stem
            let single = (folder as NSString).appendingPathComponent("\(base).safetensors")
            let index = (folder as NSString).appendingPathComponent("\(base).safetensors.index.json")
            if fm.fileExists(atPath: single) { return try SafeTensorsFile(path: single) }
            if fm.fileExists(atPath: index) { return try ShardedSafeTensors(indexPath: index) }
            // transformers names sharded variants model.safetensors.index.fp16.json
            if let variant {
                let alt = (folder as NSString).appendingPathComponent("\(stem).safetensors.index.\(variant).json")
                if fm.fileExists(atPath: alt) { return try ShardedSafeTensors(indexPath: alt) }
            }
            tried += [single, index]
        }
        // As diffusers: a component without files of the requested variant loads its plain weights.
        if variant != nil, let plain = try? weights(in: folder, variant: nil) { return plain }
        throw ModelError.missingFile("no safetensors weights in \(folder) (looked for \(tried.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")))")
    }

    /// A decoding error as "field `a.b`: …" (the JSON path a user can find in the file).
    public static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c):
            return "field `\(path(c))`: \(c.debugDescription)"
        case .keyNotFound(let key, let c):
            return "missing field `\((path(c).isEmpty ? "" : path(c) + ".") + key.stringValue)`"
        case .dataCorrupted(let c):
            return path(c).isEmpty ? "not valid JSON: \(c.debugDescription)" : "field `\(path(c))`: \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// Options for loading a model folder.
public struct LoadOptions: Sendable {
    public var dtype: DType = .float32
    public var device: Device = .cpu
    /// Weight file variant (`fp16` reads `diffusion_pytorch_model.fp16.safetensors`).
    public var variant: String? = nil
    /// A UNet LoRA folder in diffusers' format (`pytorch_lora_weights.safetensors`) to apply.
    public var unetLoRA: String? = nil
    /// A fresh LoRA (B = 0, A Kaiming-uniform from `seed`) on the UNet layers it targets, for training;
    /// ignored when `unetLoRA` is given.
    public var freshUNetLoRA: LoRAInjection? = nil
    /// Seed of the parameter store (the initial values of fresh adapters).
    public var seed: UInt64 = 0

    public init(dtype: DType = .float32, device: Device = .cpu, variant: String? = nil, unetLoRA: String? = nil) {
        self.dtype = dtype
        self.device = device
        self.variant = variant
        self.unetLoRA = unetLoRA
    }
}
