// Mirrors transformers CLIPVisionModel and LlavaForConditionalGeneration (transformers 5.24.0).
import Foundation
import Torch
import TorchNN

/// `vision_config` of a LLaVA model (a `CLIPVisionConfig`).
public struct CLIPVisionConfig: Codable, Sendable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct: Activation = .quickGelu
    public var layerNormEps = 1e-5

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numChannels = "num_channels", imageSize = "image_size"
        case patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPVisionConfig()
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
        imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        hiddenAct = try c.decodeIfPresent(Activation.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
    }

    /// Patches per image side.
    public var gridSize: Int { imageSize / patchSize }

    /// Checks every number against a range that makes sense for it (`field` prefixes the names).
    public func validate(file: String, field: String = "vision_config") throws {
        let range = ConfigRange(file: file)
        try range.count("\(field).hidden_size", hiddenSize, 1...ConfigRange.maxWidth)
        try range.count("\(field).intermediate_size", intermediateSize, 1...(ConfigRange.maxWidth * 4))
        try range.count("\(field).num_hidden_layers", numHiddenLayers, 1...ConfigRange.maxLayers)
        try range.count("\(field).num_attention_heads", numAttentionHeads, 1...ConfigRange.maxWidth)
        try range.divides(numAttentionHeads, "\(field).num_attention_heads", hiddenSize, "\(field).hidden_size")
        try range.count("\(field).num_channels", numChannels, 1...16)
        try range.count("\(field).image_size", imageSize, 1...ConfigRange.maxSpatial)
        try range.count("\(field).patch_size", patchSize, 1...imageSize)
        try range.real("\(field).layer_norm_eps", layerNormEps, above: 0, below: 1)
        _ = try range.product("the vision position table", [gridSize, gridSize, hiddenSize])
    }
}

/// CLIP's vision transformer: patch embedding with a class token, `pre_layrnorm` (sic), encoder
/// layers, `post_layernorm` (pooled output only).
public final class CLIPVisionTower {
    public let config: CLIPVisionConfig
    let classEmbedding: Tensor
    let patchEmbedding: Conv2d
    let positionEmbedding: Embedding
    let preLayrnorm: LayerNorm
    let layers: [CLIPEncoderLayer]
    let postLayernorm: LayerNorm

    public init(config c: CLIPVisionConfig, path p: ParameterPath) {
        config = c
        let e = p / "embeddings"
        classEmbedding = e.parameter("class_embedding", [c.hiddenSize], .normal(mean: 0, std: 1))
        patchEmbedding = Conv2d(e / "patch_embedding", c.numChannels, c.hiddenSize, kernelSize: c.patchSize,
                                stride: c.patchSize, bias: false)
        positionEmbedding = Embedding(e / "position_embedding", count: c.gridSize * c.gridSize + 1, dim: c.hiddenSize)
        preLayrnorm = LayerNorm(p / "pre_layrnorm", c.hiddenSize, eps: c.layerNormEps)
        layers = (0..<c.numHiddenLayers).map {
            CLIPEncoderLayer(p / "encoder" / "layers" / $0, hidden: c.hiddenSize, intermediate: c.intermediateSize,
                             heads: c.numAttentionHeads, eps: c.layerNormEps, act: c.hiddenAct)
        }
        postLayernorm = LayerNorm(p / "post_layernorm", c.hiddenSize, eps: c.layerNormEps)
    }

    /// The hidden states of `pixels` `[N, 3, S, S]` (normalised): after `pre_layrnorm`, then after
    /// each layer — `layers + 1` tensors `[N, 1 + patches, D]`.
    public func hiddenStates(_ pixels: Tensor) -> [Tensor] {
        let n = pixels.size(0)
        let patches = patchEmbedding(pixels.to(classEmbedding.dtype)).flatten(start: 2).transpose(1, 2)
        let cls = classEmbedding.reshape([1, 1, -1]).expand([n, 1, config.hiddenSize])
        let positions = Tensor.arange(0, Double(config.gridSize * config.gridSize + 1), device: pixels.device)
        var h = preLayrnorm(Tensor.cat([cls, patches], dim: 1) + positionEmbedding(positions).unsqueeze(0))
        var states = [h]
        for layer in layers {
            h = layer(h, mask: nil)
            states.append(h)
        }
        return states
    }

    /// CLIPVisionModel's `pooler_output`: `post_layernorm` of the class token after the last layer,
    /// `[N, D]`.
    public func pooled(_ pixels: Tensor) -> Tensor {
        let last = hiddenStates(pixels).last!
        return postLayernorm(last.select(dim: 1, index: 0))
    }
}

/// `config.json` of `LlavaForConditionalGeneration`.
public struct LlavaConfig: Decodable, Sendable {
    public var visionConfig: CLIPVisionConfig
    public var textConfig: CausalLMConfig
    public var imageTokenId: Int
    public var projectorHiddenAct: Activation
    public var visionFeatureLayer: Int
    public var visionFeatureSelectStrategy: String
    public var projectorBias: Bool
    public var tieWordEmbeddings: Bool?

    enum CodingKeys: String, CodingKey {
        case visionConfig = "vision_config", textConfig = "text_config", imageTokenIndex = "image_token_index"
        case imageTokenId = "image_token_id", projectorHiddenAct = "projector_hidden_act"
        case visionFeatureLayer = "vision_feature_layer"
        case visionFeatureSelectStrategy = "vision_feature_select_strategy"
        case projectorBias = "multimodal_projector_bias", tieWordEmbeddings = "tie_word_embeddings"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        visionConfig = try c.decode(CLIPVisionConfig.self, forKey: .visionConfig)
        textConfig = try c.decode(CausalLMConfig.self, forKey: .textConfig)
        guard let token = try c.decodeIfPresent(Int.self, forKey: .imageTokenId)
            ?? c.decodeIfPresent(Int.self, forKey: .imageTokenIndex) else {
            throw DecodingError.keyNotFound(CodingKeys.imageTokenId,
                                            .init(codingPath: c.codingPath, debugDescription: "no image token id"))
        }
        imageTokenId = token
        projectorHiddenAct = try c.decodeIfPresent(Activation.self, forKey: .projectorHiddenAct) ?? .gelu
        if let list = try? c.decode([Int].self, forKey: .visionFeatureLayer) {
            guard list.count == 1 else {
                throw DecodingError.dataCorruptedError(forKey: .visionFeatureLayer, in: c,
                    debugDescription: "several vision feature layers (\(list)) are not supported")
            }
            visionFeatureLayer = list[0]
        } else {
            visionFeatureLayer = try c.decodeIfPresent(Int.self, forKey: .visionFeatureLayer) ?? -2
        }
        visionFeatureSelectStrategy = try c.decodeIfPresent(String.self, forKey: .visionFeatureSelectStrategy) ?? "default"
        projectorBias = try c.decodeIfPresent(Bool.self, forKey: .projectorBias) ?? true
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
        if let tie = tieWordEmbeddings { textConfig.tieWordEmbeddings = tie }
    }

    /// Checks both towers' numbers and the fields joining them.
    public func validate(file: String) throws {
        try visionConfig.validate(file: file)
        try textConfig.validate(file: file)
        let range = ConfigRange(file: file)
        try range.count("image_token_id", imageTokenId, 0...(textConfig.vocabSize - 1))
        try range.count("vision_feature_layer", visionFeatureLayer,
                        -(visionConfig.numHiddenLayers + 1)...visionConfig.numHiddenLayers)
    }

    /// Image tokens each image expands to in the prompt.
    public var imageSequenceLength: Int {
        visionConfig.gridSize * visionConfig.gridSize + (visionFeatureSelectStrategy == "full" ? 1 : 0)
    }
}

/// A LLaVA vision-language model: CLIP vision tower → two-layer projector → image-token embeddings
/// spliced into a Llama / Qwen2 decoder, with transformers 5's keys (`model.vision_tower.…`,
/// `model.multi_modal_projector.…`, `model.language_model.…`, `lm_head`).
public final class LlavaModel {
    public let config: LlavaConfig
    public let visionTower: CLIPVisionTower
    let projector1: Linear
    let projector2: Linear
    public let languageModel: CausalLM

    public init(config: LlavaConfig, path p: ParameterPath, lora: LoRASettings? = nil) throws {
        guard ["default", "full"].contains(config.visionFeatureSelectStrategy) else {
            throw ModelError.unsupported(file: "config.json", field: "vision_feature_select_strategy",
                                                  value: config.visionFeatureSelectStrategy)
        }
        self.config = config
        let m = p / "model"
        visionTower = CLIPVisionTower(config: config.visionConfig, path: m / "vision_tower")
        let proj = m / "multi_modal_projector"
        projector1 = Linear(proj / "linear_1", config.visionConfig.hiddenSize, config.textConfig.hiddenSize,
                            bias: config.projectorBias)
        projector2 = Linear(proj / "linear_2", config.textConfig.hiddenSize, config.textConfig.hiddenSize,
                            bias: config.projectorBias)
        languageModel = try CausalLM(config: config.textConfig, body: m / "language_model", head: p / "lm_head",
                                     lora: lora)
    }

    /// Projected image features `[N, imageSequenceLength, H]` for normalised pixels `[N, 3, S, S]`.
    public func imageFeatures(_ pixels: Tensor) -> Tensor {
        let states = visionTower.hiddenStates(pixels)
        let layer = config.visionFeatureLayer
        var selected = states[layer < 0 ? states.count + layer : layer]
        if config.visionFeatureSelectStrategy == "default" { selected = selected.slice(dim: 1, start: 1) }
        return projector2(config.projectorHiddenAct(projector1(selected)))
    }

    /// Input embeddings of `ids` `[B, L]` with every image token replaced, in order, by the rows of
    /// `imageFeatures(pixels)` (as transformers' `masked_scatter`).
    public func embeddings(ids: Tensor, pixels: Tensor?) throws -> Tensor {
        try embeddings(ids: ids, features: pixels.map(imageFeatures))
    }

    /// ``embeddings(ids:pixels:)`` with the projected image features already computed (the vision
    /// tower and projector are frozen in training, so a batch's features can serve several passes).
    ///
    /// `imagePrefix[i]`, when given, limits row i's image slots to its first `imagePrefix[i]` positions:
    /// a scored reply in which the policy wrote the image token is text there, not an image.
    public func embeddings(ids: Tensor, features: Tensor?, imagePrefix: [Int]? = nil) throws -> Tensor {
        let text = languageModel.embed(ids)
        guard let features else { return text }
        let (b, l, h) = (text.size(0), text.size(1), text.size(2))
        let flatIds = ids.toArray(Int64.self)
        let slots = flatIds.indices.filter { i in
            flatIds[i] == Int64(config.imageTokenId) && (imagePrefix.map { i % l < $0[i / l] } ?? true)
        }
        let rows = features.reshape([-1, h])
        guard slots.count == rows.size(0) else {
            throw VisionLanguageError.invalidArgument("the prompt has \(slots.count) image tokens but the images give "
                + "\(rows.size(0)) features (\(config.imageSequenceLength) per image): expand each image placeholder")
        }
        let index = Tensor(slots.map(Int64.init), shape: [slots.count, 1]).expand([slots.count, h])
        return text.reshape([b * l, h]).scatter(dim: 0, index: index, source: rows.to(text.dtype)).reshape([b, l, h])
    }

    /// `ids` with every image token repeated ``LlavaConfig/imageSequenceLength`` times, as
    /// transformers' processor expands the `<image>` placeholder.
    public func expandImageTokens(_ ids: [Int]) -> [Int] {
        ids.flatMap { $0 == config.imageTokenId ? Array(repeating: $0, count: config.imageSequenceLength) : [$0] }
    }

    /// Generates continuations of prompts whose (expanded) image tokens stand for the rows of `pixels`
    /// (normalised, `[N, 3, S, S]`, in prompt order).
    public func generate(prompts: [[Int]], pixels: Tensor?, config: SamplingConfig, padId: Int) throws
        -> GenerationOutput
    {
        try languageModel.generate(prompts: prompts, config: config, padId: padId) { ids in
            try self.embeddings(ids: ids, pixels: pixels)
        }
    }

    /// Logits `[B, L, V]` for `ids` and the images their image tokens stand for.
    public func callAsFunction(_ ids: Tensor, pixels: Tensor?) throws -> Tensor {
        let (b, l) = (ids.size(0), ids.size(1))
        let positions = Tensor.arange(0, Double(l)).reshape([1, l]).expand([b, l])
        return languageModel.forward(embeddings: try embeddings(ids: ids, pixels: pixels), positions: positions,
                                     attentionMask: nil)
    }

    /// Maps the on-disk layouts to the module layout: transformers 5 writes `language_model.model.…`,
    /// `language_model.lm_head`, `vision_tower.…` and `multi_modal_projector.…`; older files (llava-hf)
    /// have `vision_tower.vision_model.…`; keys already in module layout pass unchanged.
    public static func sanitize(_ key: String) -> String {
        let rules: [(String, String)] = [
            ("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
            ("vision_tower.vision_model.", "model.vision_tower."), ("vision_tower.", "model.vision_tower."),
            ("multi_modal_projector.", "model.multi_modal_projector."),
        ]
        for (old, new) in rules where key.hasPrefix(old) { return new + key.dropFirst(old.count) }
        return key
    }
}

extension LlavaModel {
    /// Loads a transformers LLaVA folder (either key layout), strictly; base weights frozen.
    public static func load(folder: String, dtype: DType = .float32, device: Device = .cpu,
                            lora: LoRASettings? = nil) throws -> LlavaModel {
        let (config, path) = try decodeConfig(LlavaConfig.self, folder: folder)
        try config.validate(file: path)
        let source = RenamedSource(try ModelFolder.weights(in: folder), rename: sanitize)
        let store = try ParameterStore(device: device, dtype: dtype)
        store.limitScalars(to: source)
        let model = try LlavaModel(config: config, path: store.root, lora: lora)
        try store.checkBudget(config: path)
        store.freeze(adapters: false)
        var hidden: Set<String> = []
        if config.textConfig.tieWordEmbeddings { hidden.insert("lm_head.weight") }
        try store.load(from: HidingSource(source, hiding: hidden))
        return model
    }
}
