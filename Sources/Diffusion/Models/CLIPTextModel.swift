// Mirrors transformers CLIPTextModel and CLIPTextModelWithProjection (transformers 5.x).
import Foundation
import Torch
import TorchNN

/// `text_encoder/config.json` (a `CLIPTextConfig`), with the field names transformers writes.
public struct CLIPTextConfig: Codable, Sendable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct: Activation = .quickGelu
    public var layerNormEps = 1e-5
    public var padTokenId: Int? = 1
    public var bosTokenId: Int? = 49406
    public var eosTokenId: Int? = 49407
    public var architectures: [String]? = nil

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case projectionDim = "projection_dim", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps", padTokenId = "pad_token_id"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", architectures
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPTextConfig()
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? d.projectionDim
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(Activation.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? d.padTokenId
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? d.bosTokenId
        eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? d.eosTokenId
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
    }

    public func validate(file: String = "text_encoder/config.json") throws {
        let range = ConfigRange(file: file)
        try range.count("vocab_size", vocabSize, 1...ConfigRange.maxTable)
        try range.count("hidden_size", hiddenSize, 1...ConfigRange.maxWidth)
        try range.count("intermediate_size", intermediateSize, 1...(ConfigRange.maxWidth * 4))
        try range.count("projection_dim", projectionDim, 1...ConfigRange.maxWidth)
        try range.count("num_hidden_layers", numHiddenLayers, 1...ConfigRange.maxLayers)
        try range.count("num_attention_heads", numAttentionHeads, 1...ConfigRange.maxWidth)
        try range.count("max_position_embeddings", maxPositionEmbeddings, 1...ConfigRange.maxTable)
        try range.real("layer_norm_eps", layerNormEps, above: 0, below: 1)
        _ = try range.product("the token embedding", [vocabSize, hiddenSize])
        _ = try range.product("the position embedding", [maxPositionEmbeddings, hiddenSize])
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw ModelError.badConfig(file: file,
                message: "hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard vocabSize > 0, maxPositionEmbeddings > 0, numHiddenLayers > 0 else {
            throw ModelError.badConfig(file: file,
                message: "vocab_size, max_position_embeddings and num_hidden_layers must be positive")
        }
    }
}

/// The outputs SD pipelines use.
public struct CLIPTextOutput {
    /// After the final layer norm, `[B, L, D]`.
    public let lastHiddenState: Tensor
    /// The embeddings followed by each layer's output (before the final layer norm): `count = layers + 1`.
    public let hiddenStates: [Tensor]
    /// The final-norm state at each row's end-of-text token, `[B, D]`.
    public let pooled: Tensor
    /// `text_projection(pooled)` for `CLIPTextModelWithProjection`, else nil.
    public let textEmbeds: Tensor?
}

/// CLIP's text transformer with transformers' keys (`text_model.…`, and `text_projection` when
/// `withProjection`), as Stable Diffusion's text encoders.
public final class CLIPTextModel {
    public let config: CLIPTextConfig
    let tokenEmbedding: Embedding
    let positionEmbedding: Embedding
    let layers: [CLIPEncoderLayer]
    let finalLayerNorm: LayerNorm
    let textProjection: Linear?

    public init(config: CLIPTextConfig, path p: ParameterPath, withProjection: Bool = false) throws {
        try config.validate()
        self.config = config
        let t = p / "text_model"
        tokenEmbedding = Embedding(t / "embeddings" / "token_embedding", count: config.vocabSize, dim: config.hiddenSize)
        positionEmbedding = Embedding(t / "embeddings" / "position_embedding", count: config.maxPositionEmbeddings,
                                      dim: config.hiddenSize)
        layers = (0..<config.numHiddenLayers).map {
            CLIPEncoderLayer(t / "encoder" / "layers" / $0, hidden: config.hiddenSize, intermediate: config.intermediateSize,
                             heads: config.numAttentionHeads, eps: config.layerNormEps, act: config.hiddenAct)
        }
        finalLayerNorm = LayerNorm(t / "final_layer_norm", config.hiddenSize, eps: config.layerNormEps)
        textProjection = withProjection
            ? Linear(p / "text_projection", config.hiddenSize, config.projectionDim, bias: false) : nil
    }

    /// Keys that old checkpoints carry but the model does not use (a non-persistent buffer).
    public static let ignoredKeys: Set<String> = ["text_model.embeddings.position_ids"]

    /// Encodes token ids `[B, L]` (int64). `attentionMask` `[B, L]` (1 = token, 0 = padding) is optional,
    /// as in SD pipelines, which attend to the padding under the causal mask.
    public func callAsFunction(_ ids: Tensor, attentionMask: Tensor? = nil) -> CLIPTextOutput {
        let (b, l) = (ids.size(0), ids.size(1))
        let positions = Tensor.arange(0, Double(l), device: ids.device)
        var h = tokenEmbedding(ids) + positionEmbedding(positions).unsqueeze(0)
        var mask = Tensor.ones([l, l], dtype: .bool, device: ids.device).tril().reshape([1, 1, l, l])
        if let attentionMask {
            mask = mask.logicalAnd(attentionMask.to(.bool).reshape([b, 1, 1, l]))
        }
        var states = [h]
        for layer in layers {
            h = layer(h, mask: mask)
            states.append(h)
        }
        let last = finalLayerNorm(h)
        // transformers: eos_token_id == 2 (old configs) pools at argmax(ids), else at the first eos.
        let eos = config.eosTokenId ?? 2
        let position = eos == 2 ? ids.argmax(dim: -1) : (ids .== Double(eos)).to(.int32).argmax(dim: -1)
        let index = position.to(.int64).reshape([b, 1, 1]).expand([b, 1, last.size(-1)])
        let pooled = last.gather(dim: 1, index: index).squeeze(1)
        return CLIPTextOutput(lastHiddenState: last, hiddenStates: states, pooled: pooled,
                              textEmbeds: textProjection.map { $0(pooled) })
    }
}
