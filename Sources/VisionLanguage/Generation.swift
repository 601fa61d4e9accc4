import Foundation
import Torch

/// How to pick each next token.
public struct SamplingConfig: Sendable {
    /// Greedy decoding (argmax); the other fields but `maxNewTokens` and `stopTokens` are ignored.
    public var greedy = false
    public var temperature = 1.0
    public var topK: Int? = nil
    public var topP: Double? = nil
    public var maxNewTokens = 64
    public var stopTokens: Set<Int> = []
    public var seed: UInt64 = 0

    public init(greedy: Bool = false, temperature: Double = 1, topK: Int? = nil, topP: Double? = nil,
                maxNewTokens: Int = 64, stopTokens: Set<Int> = [], seed: UInt64 = 0) {
        self.greedy = greedy
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.seed = seed
    }

    func validate() throws {
        guard maxNewTokens > 0 else { throw VisionLanguageError.invalidArgument("max new tokens must be positive") }
        guard greedy || (temperature > 0 && temperature.isFinite) else {
            throw VisionLanguageError.invalidArgument("temperature must be positive, got \(temperature)")
        }
        if let k = topK, k <= 0 { throw VisionLanguageError.invalidArgument("top-k must be positive, got \(k)") }
        if let p = topP, !(p > 0 && p <= 1) { throw VisionLanguageError.invalidArgument("top-p must be in (0, 1], got \(p)") }
    }
}

/// Generated tokens per row (the stop token included when one ended the row) and each token's
/// log-probability under the full temperature-scaled distribution `log_softmax(logits / T)` — not
/// the top-k / top-p truncated one: the quantity a policy-gradient importance ratio needs.
public struct GenerationOutput: Sendable {
    public var tokens: [[Int]]
    public var logProbs: [[Double]]
    /// True for rows that ended with a stop token.
    public var stopped: [Bool]
}

extension CausalLM {
    /// Token ids outside the embedding table would abort inside libtorch: they are checked here,
    /// where input enters the model.
    func checkTokenIds(_ rows: [[Int]], what: String) throws {
        let vocab = config.vocabSize
        for row in rows {
            if let bad = row.first(where: { $0 < 0 || $0 >= vocab }) {
                throw VisionLanguageError.invalidArgument(
                    "\(what) token id \(bad) is outside the model's vocabulary (0..<\(vocab)): is the tokenizer "
                        + "the model's own?")
            }
        }
    }

    /// Samples continuations of `prompts` (token ids) as one left-padded batch with a KV cache.
    ///
    /// `promptEmbeddings`, when given, turns the padded prompt ids `[B, L]` into input embeddings
    /// (LLaVA splices image features in); later tokens are embedded as usual.
    public func generate(prompts: [[Int]], config: SamplingConfig, padId: Int,
                         promptEmbeddings: ((Tensor) throws -> Tensor)? = nil) throws -> GenerationOutput {
        try config.validate()
        guard !prompts.isEmpty, prompts.allSatisfy({ !$0.isEmpty }) else {
            throw VisionLanguageError.invalidArgument("every prompt needs at least one token")
        }
        try checkTokenIds(prompts + [[padId]], what: "prompt")
        let b = prompts.count
        let width = prompts.map(\.count).max()!
        var ids: [Int64] = []
        var mask: [Int64] = []
        for p in prompts {
            ids += Array(repeating: Int64(padId), count: width - p.count) + p.map(Int64.init)
            mask += Array(repeating: 0, count: width - p.count) + Array(repeating: 1, count: p.count)
        }
        return try withNoGrad {
            let generator = try Generator(seed: config.seed)
            var attention = Tensor(mask, shape: [b, width])
            // As transformers' generate: positions count real tokens only.
            var positions = (attention.cumsum(dim: 1) - 1).maskedFill(attention .== 0, 1)
            let cache = KVCache(layers: config.layers(self))
            let idTensor = Tensor(ids, shape: [b, width])
            let first = try promptEmbeddings?(idTensor) ?? embed(idTensor)
            var logits = forward(embeddings: first, positions: positions, attentionMask: attention, cache: cache)
                .select(dim: 1, index: width - 1)
            var out = GenerationOutput(tokens: Array(repeating: [], count: b), logProbs: Array(repeating: [], count: b),
                                       stopped: Array(repeating: false, count: b))
            var next = positions.select(dim: 1, index: width - 1) + 1
            for _ in 0..<config.maxNewTokens {
                let (chosen, lp) = pick(logits.to(.float32), config: config, generator: generator)
                let tokens = chosen.toArray(Int64.self)
                let logps = lp.toArray(Double.self)
                var feed = [Int64](repeating: Int64(padId), count: b)
                for r in 0..<b where !out.stopped[r] {
                    out.tokens[r].append(Int(tokens[r]))
                    out.logProbs[r].append(logps[r])
                    feed[r] = tokens[r]
                    if config.stopTokens.contains(Int(tokens[r])) { out.stopped[r] = true }
                }
                if out.stopped.allSatisfy({ $0 }) { break }
                attention = Tensor.cat([attention, Tensor.ones([b, 1], dtype: .int64)], dim: 1)
                positions = next.unsqueeze(1)
                next = next + 1
                logits = forward(embeddings: embed(Tensor(feed, shape: [b, 1])), positions: positions,
                                 attentionMask: attention, cache: cache).select(dim: 1, index: 0)
            }
            return out
        }
    }

    /// The next token per row and its log-probability under `log_softmax(logits / T)`.
    func pick(_ logits: Tensor, config: SamplingConfig, generator: Generator) -> (Tensor, Tensor) {
        if config.greedy {
            let token = logits.argmax(dim: -1)
            let lp = logits.logSoftmax(dim: -1).gather(dim: 1, index: token.unsqueeze(1)).squeeze(1).to(.float64)
            return (token, lp)
        }
        let scaled = logits / config.temperature
        let full = scaled.logSoftmax(dim: -1)
        var filtered = scaled
        if let k = config.topK, k < scaled.size(-1) {
            let threshold = scaled.topk(k).values.narrow(dim: -1, start: k - 1, length: 1)
            filtered = filtered.maskedFill(filtered .< threshold, -Double.infinity)
        }
        if let p = config.topP, p < 1 {
            // transformers' TopPLogitsWarper: drop the low tail whose cumulative probability is ≤ 1 − p,
            // always keeping the most likely token.
            let (sorted, order) = filtered.sort(dim: -1, descending: false)
            let cumulative = sorted.softmax(dim: -1).cumsum(dim: -1)
            var remove = cumulative .<= (1 - p)
            let n = remove.size(-1)
            remove = Tensor.cat([remove.narrow(dim: -1, start: 0, length: n - 1),
                                 Tensor.zeros([remove.size(0), 1], dtype: .bool)], dim: -1)
            let removeOriginal = Tensor.zeros(remove.shape, dtype: .bool).scatter(dim: -1, index: order, source: remove)
            filtered = filtered.maskedFill(removeOriginal, -Double.infinity)
        }
        let token = filtered.softmax(dim: -1).multinomial(samples: 1, generator: generator).squeeze(1)
        let lp = full.gather(dim: 1, index: token.unsqueeze(1)).squeeze(1).to(.float64)
        return (token, lp)
    }

    /// Per-token log-probabilities (with gradients) of `completions` given `contexts`, under
    /// `log_softmax(logits / temperature)`: `[B, C]` with C the longest completion, and a `[B, C]`
    /// mask (1 for real completion tokens). Sequences are right-padded; padding is masked out of
    /// attention and of the result.
    public func tokenLogProbs(contexts: [[Int]], completions: [[Int]], padId: Int, temperature: Double = 1)
        throws -> (logProbs: Tensor, mask: Tensor)
    {
        let s = try completionScores(contexts: contexts, completions: completions, padId: padId,
                                     temperature: temperature, entropy: false)
        return (s.logProbs, s.mask)
    }

    /// ``tokenLogProbs(contexts:completions:padId:temperature:)`` with an input-embedding hook (LLaVA
    /// splices image features into the right-padded ids `[B, W]`) and, when asked, the entropy of each
    /// position's temperature-scaled distribution (what GRPO logs as `entropy`).
    public func completionScores(contexts: [[Int]], completions: [[Int]], padId: Int, temperature: Double = 1,
                                 entropy: Bool, inputEmbeddings: ((Tensor) throws -> Tensor)? = nil)
        throws -> CompletionScores
    {
        guard contexts.count == completions.count, !contexts.isEmpty else {
            throw VisionLanguageError.invalidArgument("\(contexts.count) contexts for \(completions.count) completions")
        }
        guard contexts.allSatisfy({ !$0.isEmpty }) else {
            throw VisionLanguageError.invalidArgument("every context needs at least one token")
        }
        guard temperature > 0, temperature.isFinite else {
            throw VisionLanguageError.invalidArgument("temperature must be positive, got \(temperature)")
        }
        try checkTokenIds(contexts + completions + [[padId]], what: "scored")
        let b = contexts.count
        let lengths = zip(contexts, completions).map { $0.count + $1.count }
        let width = lengths.max()!
        let c = completions.map(\.count).max() ?? 0
        var ids: [Int64] = []
        var mask: [Int64] = []
        var targetIndex: [Int64] = []
        var targetMask: [Float] = []
        for (ctx, comp) in zip(contexts, completions) {
            let seq = ctx + comp
            ids += seq.map(Int64.init) + Array(repeating: Int64(padId), count: width - seq.count)
            mask += Array(repeating: 1, count: seq.count) + Array(repeating: 0, count: width - seq.count)
            for j in 0..<c {
                // Completion token j sits at position ctx.count + j and is predicted at the one before.
                targetIndex.append(Int64(Swift.min(ctx.count + j - 1, width - 1)))
                targetMask.append(j < comp.count ? 1 : 0)
            }
        }
        let attention = Tensor(mask, shape: [b, width])
        let positions = Tensor.arange(0, Double(width)).reshape([1, width]).expand([b, width])
        let idTensor = Tensor(ids, shape: [b, width])
        let logits = forward(embeddings: try inputEmbeddings?(idTensor) ?? embed(idTensor), positions: positions,
                             attentionMask: attention)
        let index = Tensor(targetIndex, shape: [b, c])
        let stepLogits = logits.gather(dim: 1, index: index.unsqueeze(-1).expand([b, c, logits.size(-1)]))
        let logp = (stepLogits.to(.float32) / temperature).logSoftmax(dim: -1)
        let targets = zip(contexts, completions).flatMap { ctx, comp in
            (0..<c).map { j in Int64(j < comp.count ? comp[j] : padId) }
        }
        let chosen = logp.gather(dim: 2, index: Tensor(targets, shape: [b, c, 1])).squeeze(2)
        let m = Tensor(targetMask, shape: [b, c])
        let h = entropy ? withNoGrad { -(logp.exp() * logp).sum(dims: [-1]) * m } : nil
        return CompletionScores(logProbs: chosen * m, mask: m, entropy: h)
    }
}

/// Scores of completions: per-token log-probabilities `[B, C]` (with gradients), the mask of real
/// tokens, and (when asked) each position's entropy (no gradients).
public struct CompletionScores {
    public var logProbs: Tensor
    public var mask: Tensor
    public var entropy: Tensor?
}

extension SamplingConfig {
    func layers(_ model: CausalLM) -> Int { model.config.numHiddenLayers }
}
