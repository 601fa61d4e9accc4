// Mirrors transformers LlamaForCausalLM and Qwen2ForCausalLM (transformers 5.24.0): RMSNorm, rotary
// position embeddings (rotate-half form), grouped-query attention, SwiGLU MLP, tied embeddings.
import Foundation
import Torch
import TorchNN

/// `config.json` of a Llama-family (Llama, SmolLM2) or Qwen2-family decoder.
public struct CausalLMConfig: Codable, Sendable {
    public var modelType = "llama"
    public var vocabSize = 32000
    public var hiddenSize = 4096
    public var intermediateSize = 11008
    public var numHiddenLayers = 32
    public var numAttentionHeads = 32
    public var numKeyValueHeads: Int? = nil
    public var headDim: Int? = nil
    public var hiddenAct = "silu"
    public var maxPositionEmbeddings = 2048
    public var rmsNormEps = 1e-6
    public var ropeTheta: Double? = nil
    public var ropeParameters: RopeParameters? = nil
    public var ropeScaling: RopeParameters? = nil
    public var tieWordEmbeddings = false
    public var attentionBias: Bool? = nil
    public var mlpBias = false
    public var bosTokenId: Int? = nil
    public var eosTokenId: OneOrMany<Int>? = nil
    public var padTokenId: Int? = nil
    public var useSlidingWindow = false

    /// `rope_parameters` (transformers 5) / `rope_scaling` (older files).
    public struct RopeParameters: Codable, Sendable {
        public var ropeTheta: Double?
        public var ropeType: String?
        public var type: String?

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type
        }
    }

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", hiddenAct = "hidden_act", maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling", tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", padTokenId = "pad_token_id", useSlidingWindow = "use_sliding_window"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CausalLMConfig()
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        ropeParameters = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        ropeScaling = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
            ?? (modelType == "qwen2" ? false : d.tieWordEmbeddings)
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias)
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? d.mlpBias
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        eosTokenId = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .eosTokenId)
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? d.useSlidingWindow
    }

    public var kvHeads: Int { numKeyValueHeads ?? numAttentionHeads }
    public var headDimension: Int { headDim ?? hiddenSize / numAttentionHeads }
    /// Qwen2 has biases on q, k and v; Llama only when `attention_bias` says so.
    public var qkvBias: Bool { attentionBias ?? (modelType == "qwen2") }
    public var theta: Double { ropeParameters?.ropeTheta ?? ropeTheta ?? 10000 }

    public func validate(file: String = "config.json") throws {
        guard ["llama", "qwen2", "mistral"].contains(modelType) else {
            throw ModelError.unsupported(file: file, field: "model_type", value: modelType)
        }
        guard hiddenAct == "silu" else { throw ModelError.unsupported(file: file, field: "hidden_act", value: hiddenAct) }
        for p in [ropeParameters, ropeScaling].compactMap({ $0 }) {
            let kind = p.ropeType ?? p.type ?? "default"
            guard kind == "default" else {
                throw ModelError.unsupported(file: file, field: "rope_type", value: kind)
            }
        }
        if useSlidingWindow { throw ModelError.unsupported(file: file, field: "use_sliding_window", value: "true") }
        let range = ConfigRange(file: file)
        try range.count("vocab_size", vocabSize, 1...ConfigRange.maxTable)
        try range.count("hidden_size", hiddenSize, 1...ConfigRange.maxWidth)
        try range.count("intermediate_size", intermediateSize, 1...(ConfigRange.maxWidth * 4))
        try range.count("num_hidden_layers", numHiddenLayers, 1...ConfigRange.maxLayers)
        try range.count("num_attention_heads", numAttentionHeads, 1...ConfigRange.maxWidth)
        try range.count("num_key_value_heads", kvHeads, 1...numAttentionHeads)
        if let d = headDim { try range.count("head_dim", d, 2...ConfigRange.maxWidth) }
        try range.count("max_position_embeddings", maxPositionEmbeddings, 1...ConfigRange.maxTable)
        try range.real("rms_norm_eps", rmsNormEps, above: 0, below: 1)
        try range.real("rope_theta", theta, above: 0, atMost: 1e12)
        for (field, id) in [("bos_token_id", bosTokenId), ("pad_token_id", padTokenId)] {
            if let id { try range.count(field, id, -1...ConfigRange.maxTable) }
        }
        try range.counts("eos_token_id", eosTokenId?.all ?? [], -1...ConfigRange.maxTable)
        _ = try range.product("the token embedding", [vocabSize, hiddenSize])
        _ = try range.product("an attention projection", [numAttentionHeads, headDimension, hiddenSize])
        guard numAttentionHeads > 0, numAttentionHeads % kvHeads == 0, headDimension % 2 == 0, headDimension > 0 else {
            throw ModelError.badConfig(file: file, message:
                "\(numAttentionHeads) heads are not a multiple of \(kvHeads) key/value heads, or the head dimension is odd")
        }
    }
}

/// Keys and values of earlier positions, one pair per layer: `[B, Hkv, S, D]`.
public final class KVCache {
    public var keys: [Tensor?]
    public var values: [Tensor?]

    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    /// Cached positions.
    public var length: Int { keys.first??.size(2) ?? 0 }
}

/// LoRA adapters to add to a decoder: rank, alpha, dropout and the projections they wrap
/// (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`).
public struct LoRASettings: Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var targets: Set<String>
    public var useRSLoRA: Bool

    public static let projections: Set<String> = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj"]

    public init(rank: Int, alpha: Double, dropout: Double = 0, targets: Set<String>, useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.useRSLoRA = useRSLoRA
    }

    /// The matching PEFT `adapter_config.json`.
    public var peftConfig: PEFTLoRAConfig {
        PEFTLoRAConfig(r: rank, loraAlpha: alpha, loraDropout: dropout, targetModules: Array(targets),
                       useRslora: useRSLoRA)
    }
}

/// Builds a projection: a `LoRALinear` when `name` is an adapter target, else a `Linear`.
func projection(_ p: ParameterPath, _ name: String, _ inFeatures: Int, _ outFeatures: Int, bias: Bool,
                lora: LoRASettings?, adapters: inout [LoRALinear]) -> UnaryModule {
    if let lora, lora.targets.contains(name) {
        let layer = LoRALinear(p / name, inFeatures, outFeatures, bias: bias, rank: lora.rank, alpha: lora.alpha,
                               dropout: lora.dropout, useRSLoRA: lora.useRSLoRA)
        adapters.append(layer)
        return layer
    }
    return Linear(p / name, inFeatures, outFeatures, bias: bias)
}

final class DecoderLayer {
    let inputLayernorm: RMSNorm
    let qProj: UnaryModule
    let kProj: UnaryModule
    let vProj: UnaryModule
    let oProj: UnaryModule
    let postAttentionLayernorm: RMSNorm
    let gateProj: UnaryModule
    let upProj: UnaryModule
    let downProj: UnaryModule
    let heads: Int
    let kvHeads: Int
    let headDim: Int

    init(_ p: ParameterPath, _ c: CausalLMConfig, lora: LoRASettings?, adapters: inout [LoRALinear]) {
        let d = c.headDimension
        inputLayernorm = RMSNorm(p / "input_layernorm", c.hiddenSize, eps: c.rmsNormEps)
        let a = p / "self_attn"
        qProj = projection(a, "q_proj", c.hiddenSize, c.numAttentionHeads * d, bias: c.qkvBias, lora: lora,
                           adapters: &adapters)
        kProj = projection(a, "k_proj", c.hiddenSize, c.kvHeads * d, bias: c.qkvBias, lora: lora, adapters: &adapters)
        vProj = projection(a, "v_proj", c.hiddenSize, c.kvHeads * d, bias: c.qkvBias, lora: lora, adapters: &adapters)
        oProj = projection(a, "o_proj", c.numAttentionHeads * d, c.hiddenSize, bias: false, lora: lora,
                           adapters: &adapters)
        postAttentionLayernorm = RMSNorm(p / "post_attention_layernorm", c.hiddenSize, eps: c.rmsNormEps)
        let m = p / "mlp"
        gateProj = projection(m, "gate_proj", c.hiddenSize, c.intermediateSize, bias: c.mlpBias, lora: lora,
                              adapters: &adapters)
        upProj = projection(m, "up_proj", c.hiddenSize, c.intermediateSize, bias: c.mlpBias, lora: lora,
                            adapters: &adapters)
        downProj = projection(m, "down_proj", c.intermediateSize, c.hiddenSize, bias: c.mlpBias, lora: lora,
                              adapters: &adapters)
        heads = c.numAttentionHeads
        kvHeads = c.kvHeads
        headDim = d
    }

    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor, cache: KVCache?, layer: Int) -> Tensor {
        let (b, l) = (x.size(0), x.size(1))
        let h = inputLayernorm(x)
        var q = qProj(h).reshape([b, l, heads, headDim]).transpose(1, 2)
        var k = kProj(h).reshape([b, l, kvHeads, headDim]).transpose(1, 2)
        var v = vProj(h).reshape([b, l, kvHeads, headDim]).transpose(1, 2)
        q = applyRotary(q, cos: cos, sin: sin)
        k = applyRotary(k, cos: cos, sin: sin)
        if let cache {
            if let pk = cache.keys[layer], let pv = cache.values[layer] {
                k = Tensor.cat([pk, k], dim: 2)
                v = Tensor.cat([pv, v], dim: 2)
            }
            cache.keys[layer] = k
            cache.values[layer] = v
        }
        // Grouped-query attention without copying the (cached) keys and values per query head.
        let attn = scaledDotProductAttention(query: q, key: k, value: v, mask: mask, groupedQuery: kvHeads != heads)
        let y = x + oProj(attn.transpose(1, 2).reshape([b, l, heads * headDim]))
        let z = postAttentionLayernorm(y)
        return y + downProj(gateProj(z).silu() * upProj(z))
    }
}

/// `q·cos + rotate_half(q)·sin` with `rotate_half(x) = [−x₂, x₁]` (x split in halves on the last dim).
func applyRotary(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
    let halves = x.chunk(2, dim: -1)
    let rotated = Tensor.cat([-halves[1], halves[0]], dim: -1)
    return x * cos + rotated * sin
}

/// A Llama- or Qwen2-family causal language model with transformers' keys (`model.layers.N.…`,
/// `lm_head` unless tied).
public final class CausalLM {
    public let config: CausalLMConfig
    /// The adapter layers (empty without LoRA).
    public let adapters: [LoRALinear]
    public let lora: LoRASettings?
    /// The store holding every parameter (base and adapters).
    public let store: ParameterStore
    let embedTokens: Embedding
    let layers: [DecoderLayer]
    let norm: RMSNorm
    let lmHead: Linear?
    let invFreq: Tensor

    /// A causal LM whose body sits at `path/model` and head at `path/lm_head` (transformers'
    /// `LlamaForCausalLM` / `Qwen2ForCausalLM`).
    public convenience init(config: CausalLMConfig, path p: ParameterPath, lora: LoRASettings? = nil) throws {
        try self.init(config: config, body: p / "model", head: p / "lm_head", lora: lora)
    }

    /// A causal LM with its body and head at the given paths (LLaVA keeps them at
    /// `model.language_model` and `lm_head`).
    public init(config: CausalLMConfig, body m: ParameterPath, head: ParameterPath, lora: LoRASettings? = nil) throws {
        try config.validate()
        if let lora {
            guard lora.rank > 0, !lora.targets.isEmpty, lora.targets.isSubset(of: LoRASettings.projections) else {
                throw VisionLanguageError.invalidArgument("LoRA needs a positive rank and targets among "
                    + "\(LoRASettings.projections.sorted()), got rank \(lora.rank), \(lora.targets.sorted())")
            }
        }
        self.config = config
        self.lora = lora
        store = m.store
        embedTokens = Embedding(m / "embed_tokens", count: config.vocabSize, dim: config.hiddenSize)
        var adapters: [LoRALinear] = []
        layers = (0..<config.numHiddenLayers).map { DecoderLayer(m / "layers" / $0, config, lora: lora, adapters: &adapters) }
        self.adapters = adapters
        norm = RMSNorm(m / "norm", config.hiddenSize, eps: config.rmsNormEps)
        lmHead = config.tieWordEmbeddings ? nil : Linear(head, config.hiddenSize, config.vocabSize, bias: false)
        // inv_freq = 1 / θ^(2i/d), float32 as transformers computes it (int64 arange → float).
        let d = config.headDimension
        invFreq = 1.0 / Tensor.full([d / 2], config.theta, dtype: .float32)
            .pow(Tensor.arange(0, Double(d), step: 2, dtype: .int64).to(.float32) / Double(d))
    }

    /// Whether the LoRA adapters act. Off, the model is the base model exactly: the GRPO reference
    /// policy, without a second copy in memory.
    public var adaptersEnabled: Bool {
        get { adapters.first?.enabled ?? false }
        set { for a in adapters { a.enabled = newValue } }
    }

    /// Runs `body` with the adapters off (the reference policy), then restores them.
    public func withAdaptersDisabled<R>(_ body: () throws -> R) rethrows -> R {
        let previous = adaptersEnabled
        adaptersEnabled = false
        defer { adaptersEnabled = previous }
        return try body()
    }

    /// Runs `body` with the adapters folded into the base weights (faster inference, the same
    /// function up to float32 rounding), then restores the base weights bit for bit.
    public func withAdaptersMerged<R>(_ body: () throws -> R) rethrows -> R {
        try LoRALinear.withMerged(adapters, body)
    }

    /// Writes the adapters in PEFT's format (`adapter_config.json`, `adapter_model.safetensors`).
    public func saveAdapter(to folder: String) throws {
        guard let lora else { throw VisionLanguageError.invalidArgument("this model has no LoRA adapters") }
        try PEFTAdapter.save(store, config: lora.peftConfig, to: folder)
    }

    /// Loads PEFT adapter weights written by PEFT or ``saveAdapter(to:)``.
    public func loadAdapter(from folder: String) throws {
        guard let lora else { throw VisionLanguageError.invalidArgument("this model has no LoRA adapters") }
        try PEFTAdapter.load(into: store, expecting: lora.peftConfig, from: folder)
    }

    /// Token embeddings `[B, L, H]` of `ids` (for splicing in image features).
    public func embed(_ ids: Tensor) -> Tensor { embedTokens(ids) }

    /// Logits `[B, L, V]` for input embeddings at `positions` `[B, L]`.
    ///
    /// `attentionMask` `[B, S]` (1 = token, 0 = padding) covers the cached and the new positions;
    /// attention is causal on top of it.
    public func forward(embeddings: Tensor, positions: Tensor, attentionMask: Tensor?, cache: KVCache? = nil) -> Tensor {
        let (b, l) = (embeddings.size(0), embeddings.size(1))
        let past = cache?.length ?? 0
        let s = past + l
        // Rotary tables for these positions: [B, 1, L, D].
        let freqs = positions.to(.float32).unsqueeze(-1) * invFreq.to(embeddings.device).reshape([1, 1, -1])
        let emb = Tensor.cat([freqs, freqs], dim: -1)
        let cos = emb.cos().to(embeddings.dtype).unsqueeze(1)
        let sin = emb.sin().to(embeddings.dtype).unsqueeze(1)
        // Causal over absolute cache positions, and padding.
        let query = Tensor.arange(Double(past), Double(s), device: embeddings.device).reshape([l, 1])
        let key = Tensor.arange(0, Double(s), device: embeddings.device).reshape([1, s])
        var mask = (key .<= query).reshape([1, 1, l, s])
        if let attentionMask {
            mask = mask.logicalAnd(attentionMask.to(.bool).reshape([b, 1, 1, s]))
            // A left-padding query row sees no key at all; let it see every key instead (its output is
            // ignored) so that no NaN enters the values later rows attend to — as transformers does.
            mask = mask.logicalOr(mask.any(dims: [-1], keepDim: true).logicalNot())
        }
        var h = embeddings
        for (i, layer) in layers.enumerated() {
            h = layer(h, cos: cos, sin: sin, mask: mask, cache: cache, layer: i)
        }
        h = norm(h)
        return lmHead.map { $0(h) } ?? h.linear(embedTokens.weight)
    }

    /// Logits for token ids, positions 0… (no padding).
    public func callAsFunction(_ ids: Tensor) -> Tensor {
        let (b, l) = (ids.size(0), ids.size(1))
        let positions = Tensor.arange(0, Double(l), device: ids.device).reshape([1, l]).expand([b, l])
        return forward(embeddings: embed(ids), positions: positions, attentionMask: nil)
    }

    /// Keys of old checkpoints that the model does not have (rotary tables; a tied `lm_head`).
    public var ignoredKeys: Set<String> {
        var keys = Set((0..<config.numHiddenLayers).map { "model.layers.\($0).self_attn.rotary_emb.inv_freq" })
        if config.tieWordEmbeddings { keys.insert("lm_head.weight") }
        return keys
    }
}
