import Foundation
import Torch
import TorchNN

/// Reading diffusers / transformers model folders: `config.json` plus safetensors weights
/// (single file, `fp16`-style variants, or sharded with an index).
public enum ModelFolder {
    /// Decodes `config.json` (or `name`) in `folder`, naming the file on any error.
    public static func config<T: Decodable>(_ type: T.Type, in folder: String, name: String = "config.json") throws -> T {
        let path = (folder as NSString).appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: path) else { throw DiffusionError.missingFile(path) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch let error as DecodingError {
            throw DiffusionError.badConfig(file: path, message: describe(error))
        } catch {
            throw DiffusionError.badConfig(file: path, message: "\(error)")
        }
    }

    /// The weights in `folder`: `<stem>[.variant].safetensors` or its sharded index, for the stems
    /// diffusers (`diffusion_pytorch_model`) and transformers (`model`) use.
    public static func weights(in folder: String, variant: String? = nil) throws -> TensorSource {
        let fm = FileManager.default
        guard fm.fileExists(atPath: folder) else { throw DiffusionError.missingFile(folder) }
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
        throw DiffusionError.missingFile("no safetensors weights in \(folder) (looked for \(tried.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")))")
    }

    static func describe(_ error: DecodingError) -> String {
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

    public init(dtype: DType = .float32, device: Device = .cpu, variant: String? = nil) {
        self.dtype = dtype
        self.device = device
        self.variant = variant
    }
}

extension UNet2DConditionModel {
    /// Loads `unet/` (config and weights, strictly).
    public static func load(folder: String, options: LoadOptions = .init()) throws -> UNet2DConditionModel {
        let config = try ModelFolder.config(UNet2DConditionConfig.self, in: folder)
        try config.validate(file: (folder as NSString).appendingPathComponent("config.json"))
        let store = try ParameterStore(device: options.device, dtype: options.dtype)
        let model = try withNoGrad { try UNet2DConditionModel(config: config, path: store.root) }
        store.freeze()
        try store.load(from: ModelFolder.weights(in: folder, variant: options.variant))
        return model
    }
}

extension AutoencoderKL {
    /// Loads `vae/` (config and weights, strictly).
    public static func load(folder: String, options: LoadOptions = .init()) throws -> AutoencoderKL {
        let config = try ModelFolder.config(AutoencoderKLConfig.self, in: folder)
        try config.validate(file: (folder as NSString).appendingPathComponent("config.json"))
        let store = try ParameterStore(device: options.device, dtype: options.dtype)
        let model = try AutoencoderKL(config: config, path: store.root)
        store.freeze()
        try store.load(from: ModelFolder.weights(in: folder, variant: options.variant))
        return model
    }
}

extension CLIPTextModel {
    /// Loads `text_encoder/` or `text_encoder_2/`; the projection is built when the weights hold
    /// `text_projection.weight` (CLIPTextModelWithProjection).
    public static func load(folder: String, options: LoadOptions = .init()) throws -> CLIPTextModel {
        let config = try ModelFolder.config(CLIPTextConfig.self, in: folder)
        try config.validate(file: (folder as NSString).appendingPathComponent("config.json"))
        var weights: TensorSource = HidingSource(try ModelFolder.weights(in: folder, variant: options.variant),
                                                 hiding: CLIPTextModel.ignoredKeys)
        // transformers ≥ 5 saves CLIPTextModel without the `text_model.` prefix (its PrefixChange
        // conversion); transformers 4 and every published SD checkpoint keep it. Both load.
        if weights.info("text_model.embeddings.token_embedding.weight") == nil,
           weights.info("embeddings.token_embedding.weight") != nil {
            weights = RenamedSource(weights) { "text_model." + $0 }
        }
        let store = try ParameterStore(device: options.device, dtype: options.dtype)
        let model = try CLIPTextModel(config: config, path: store.root,
                                      withProjection: weights.info("text_projection.weight") != nil)
        store.freeze()
        try store.load(from: weights)
        return model
    }
}
