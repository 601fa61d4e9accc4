import Foundation
import Torch
import TorchNN

extension UNet2DConditionModel {
    /// Loads `unet/` (config and weights, strictly), with the LoRA of `options.unetLoRA` on its
    /// attention projections when given (frozen, like the base: for inference), or a fresh one for
    /// training (`options.freshUNetLoRA`, frozen too until the trainer unfreezes it).
    public static func load(folder: String, options: LoadOptions = .init()) throws -> UNet2DConditionModel {
        let config = try ModelFolder.config(UNet2DConditionConfig.self, in: folder)
        try config.validate(file: (folder as NSString).appendingPathComponent("config.json"))
        let weights = try ModelFolder.weights(in: folder, variant: options.variant)
        let store = try ParameterStore(device: options.device, dtype: options.dtype, seed: options.seed)
        store.limitScalars(to: weights)
        store.loraInjection = try options.unetInjection() ?? options.freshUNetLoRA
        let model = try withNoGrad { try UNet2DConditionModel(config: config, path: store.root) }
        try store.checkBudget(config: (folder as NSString).appendingPathComponent("config.json"))
        store.freeze()
        try store.load(from: weights)
        if let lora = options.unetLoRA {
            let adapters = store.parameters.filter(\.isAdapter).count
            guard adapters > 0 else {
                throw ModelError.badConfig(file: lora + "/" + UNetLoRA.fileName,
                                           message: "its target modules match no layer of the UNet in \(folder)")
            }
            try UNetLoRA.load(folder: lora, into: store)
        }
        return model
    }
}

extension AutoencoderKL {
    /// Loads `vae/` (config and weights, strictly).
    public static func load(folder: String, options: LoadOptions = .init()) throws -> AutoencoderKL {
        let config = try ModelFolder.config(AutoencoderKLConfig.self, in: folder)
        try config.validate(file: (folder as NSString).appendingPathComponent("config.json"))
        let weights = try ModelFolder.weights(in: folder, variant: options.variant)
        let store = try ParameterStore(device: options.device, dtype: options.dtype)
        store.limitScalars(to: weights)
        let model = try AutoencoderKL(config: config, path: store.root)
        try store.checkBudget(config: (folder as NSString).appendingPathComponent("config.json"))
        store.freeze()
        try store.load(from: weights)
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
        store.limitScalars(to: weights)
        let model = try CLIPTextModel(config: config, path: store.root,
                                      withProjection: weights.info("text_projection.weight") != nil)
        try store.checkBudget(config: (folder as NSString).appendingPathComponent("config.json"))
        store.freeze()
        try store.load(from: weights)
        return model
    }
}
