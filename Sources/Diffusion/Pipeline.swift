// Mirrors diffusers StableDiffusionPipeline / StableDiffusionXLPipeline (diffusers 0.42.1) for
// text-to-image sampling with classifier-free guidance, plus a prompt that may change at any step.
import Foundation
import Imaging
import Torch
import TorchNN

/// Turns prompt text into token ids for one text encoder.
public protocol PromptTokenizer {
    /// Token ids padded to ``maxLength`` (CLIP: bos … eos, pad), and whether the text was truncated.
    func tokenize(_ text: String) -> (ids: [Int], truncated: Bool)
    var maxLength: Int { get }
}

/// One prompt's conditioning: the cross-attention context `[1, L, D]` and, for SDXL, the pooled
/// embedding `[1, P]` of the second encoder.
public struct PromptEmbedding {
    public let context: Tensor
    public let pooled: Tensor?
    /// The text it encodes, when it came from one (what ``StableDiffusionPipeline/sample`` reports as
    /// the row's final prompt).
    public let prompt: String?

    public init(context: Tensor, pooled: Tensor? = nil, prompt: String? = nil) {
        self.context = context
        self.pooled = pooled
        self.prompt = prompt
    }

    /// Bytes the tensors hold (what the pipeline's cache counts).
    public var byteCount: Int { context.byteCount + (pooled?.byteCount ?? 0) }
}

/// What a step callback asks of one batch row for the following steps.
public enum PromptUpdate {
    /// Keep the row's current conditioning.
    case keep
    /// Switch to this prompt (encoded by the pipeline, through its cache).
    case prompt(String)
    /// Switch to this ready conditioning (e.g. precomputed for an open-loop schedule).
    case conditioning(PromptEmbedding)
}

/// Prompt embeddings by text, least recently used first out once the bytes exceed a budget.
final class EmbeddingCache {
    private var entries: [String: (embedding: PromptEmbedding, tick: Int)] = [:]
    private var tick = 0
    private(set) var bytes = 0
    var budget: Int

    init(budget: Int) { self.budget = budget }

    var count: Int { entries.count }

    func get(_ key: String) -> PromptEmbedding? {
        guard let hit = entries[key] else { return nil }
        tick += 1
        entries[key] = (hit.embedding, tick)
        return hit.embedding
    }

    func put(_ key: String, _ embedding: PromptEmbedding) {
        tick += 1
        if let old = entries[key] { bytes -= old.embedding.byteCount }
        entries[key] = (embedding, tick)
        bytes += embedding.byteCount
        // Evict the least recently used entries, never the one just added.
        while bytes > budget, entries.count > 1,
              let oldest = entries.filter({ $0.key != key }).min(by: { $0.value.tick < $1.value.tick }) {
            bytes -= oldest.value.embedding.byteCount
            entries[oldest.key] = nil
        }
    }

    func removeAll() {
        entries.removeAll()
        bytes = 0
    }
}

/// What the per-step callback sees.
public struct StepState {
    /// 0-based index of the step that just finished.
    public let step: Int
    public let timestep: Double
    /// The denoised estimate x̂₀ of every row, in latent space (`[B, C, h, w]`).
    public let predictedOriginal: Tensor
    /// The latents after this step.
    public let latents: Tensor
}

/// Sampling settings. Defaults follow the SD pipelines.
public struct SamplingOptions: Sendable {
    public var steps = 50
    /// Classifier-free guidance scale; ≤ 1 disables guidance (one UNet pass per step).
    public var guidance = 7.5
    /// `guidance_rescale` (Lin et al. 2023, §3.4); 0 disables.
    public var guidanceRescale = 0.0
    /// Image size in pixels (default: the UNet's sample size × the VAE scale factor).
    public var height: Int? = nil
    public var width: Int? = nil
    public var seed: UInt64 = 0
    /// One seed per row: row i's initial noise is what a one-image run with `rowSeeds[i]` draws, so a
    /// batch reproduces separate runs (for evaluation). Stochastic schedulers still draw their step
    /// noise from `seed`.
    public var rowSeeds: [UInt64]? = nil

    public init(steps: Int = 50, guidance: Double = 7.5, guidanceRescale: Double = 0, height: Int? = nil,
                width: Int? = nil, seed: UInt64 = 0, rowSeeds: [UInt64]? = nil) {
        self.rowSeeds = rowSeeds
        self.steps = steps
        self.guidance = guidance
        self.guidanceRescale = guidanceRescale
        self.height = height
        self.width = width
        self.seed = seed
    }
}

/// A Stable Diffusion (1.x / 2.x) or SDXL pipeline whose prompt can change between steps.
///
/// The prompt of each batch row can be changed by a precomputed schedule (step → prompts) or by a
/// callback that runs after each step with x̂₀, as diffusers' `callback_on_step_end`: a prompt (or a
/// ready conditioning) returned after step k is used from step k + 1 on; no step is recomputed.
/// Whenever a row's conditioning changes, the conditional and unconditional halves of the CFG
/// batch, the SDXL pooled embeddings and the time ids are rebuilt together. Embeddings of prompts
/// seen before come from a cache bounded in bytes (``embeddingCacheBytes``, least recently used
/// out first).
public final class StableDiffusionPipeline {
    public enum Kind: String, Sendable { case sd, sdxl }

    public let kind: Kind
    public let textEncoders: [CLIPTextModel]
    public let tokenizers: [PromptTokenizer]
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public var scheduler: Scheduler
    /// SDXL: an absent negative prompt gives zero embeddings (`force_zeros_for_empty_prompt`).
    public var forceZerosForEmptyPrompt = true
    /// Set by ``load(folder:options:scheduler:tokenizer:)`` when the folder's scheduler class is not
    /// supported and DDIM (same noise schedule) stands in for it.
    public internal(set) var usedFallbackScheduler = false
    private let cache: EmbeddingCache

    /// Bytes of prompt embeddings kept for reuse (default 64 MB: ~270 SD1.5 prompts, ~4,000 of the
    /// miniature's); a GRPO run rewrites thousands of prompts, so the cache must not grow with them.
    public var embeddingCacheBytes: Int {
        get { cache.budget }
        set { cache.budget = Swift.max(0, newValue) }
    }

    /// The folder the pipeline came from (named in errors about its files).
    public let folder: String

    /// Prompt embeddings in the cache and the bytes they hold.
    public var cachedEmbeddings: (count: Int, bytes: Int) { (cache.count, cache.bytes) }

    /// Builds a pipeline from loaded components, checking that they fit together: the kind's number of
    /// text encoders, their width against the UNet's `cross_attention_dim`, and SDXL's added
    /// conditioning (`addition_embed_type` `text_time`) present exactly when the kind is SDXL.
    /// `folder` names the components' folder in errors.
    public init(kind: Kind, textEncoders: [CLIPTextModel], tokenizers: [PromptTokenizer],
                unet: UNet2DConditionModel, vae: AutoencoderKL, scheduler: Scheduler,
                folder: String = "pipeline") throws {
        guard textEncoders.count == tokenizers.count, textEncoders.count == (kind == .sdxl ? 2 : 1) else {
            throw DiffusionError.incompatibleComponents(folder: folder,
                message: "\(kind) needs \(kind == .sdxl ? 2 : 1) text encoder(s) with tokenizers, got \(textEncoders.count)")
        }
        let textTime = unet.config.additionEmbedType == "text_time"
        if kind == .sd && textTime {
            throw DiffusionError.incompatibleComponents(folder: folder,
                message: "model_index.json names an SD pipeline, but unet/config.json has addition_embed_type "
                    + "`text_time` (an SDXL UNet): use StableDiffusionXLPipeline in model_index.json")
        }
        if kind == .sdxl && !textTime {
            throw DiffusionError.incompatibleComponents(folder: folder,
                message: "model_index.json names an SDXL pipeline, but unet/config.json has addition_embed_type "
                    + "\(unet.config.additionEmbedType.map { "`\($0)`" } ?? "null"), not `text_time`")
        }
        let width = textEncoders.map(\.config.hiddenSize).reduce(0, +)
        let crossAttention = unet.config.crossAttentionDim.all
        if let bad = crossAttention.first(where: { $0 != width }) {
            let names = kind == .sdxl ? "text_encoder and text_encoder_2 together give" : "text_encoder gives"
            throw DiffusionError.incompatibleComponents(folder: folder,
                message: "\(names) hidden size \(width), but unet/config.json has cross_attention_dim \(bad)")
        }
        if kind == .sdxl, let projected = unet.config.projectionClassEmbeddingsInputDim,
           let timeDim = unet.config.additionTimeEmbedDim {
            let pooled = textEncoders[1].config.projectionDim
            guard projected == pooled + 6 * timeDim else {
                throw DiffusionError.incompatibleComponents(folder: folder,
                    message: "unet/config.json has projection_class_embeddings_input_dim \(projected), but the pooled "
                        + "text embedding (\(pooled)) and six time ids of \(timeDim) give \(pooled + 6 * timeDim)")
            }
        }
        self.cache = EmbeddingCache(budget: 64 << 20)
        self.folder = folder
        self.kind = kind
        self.textEncoders = textEncoders
        self.tokenizers = tokenizers
        self.unet = unet
        self.vae = vae
        self.scheduler = scheduler
    }

    /// Pixels per latent cell: 2^(VAE blocks − 1).
    public var vaeScaleFactor: Int { 1 << (vae.config.blockOutChannels.count - 1) }

    /// Prompts whose text was cut to the tokenizer's maximum length (for a warning by the caller).
    public private(set) var truncatedPrompts: Set<String> = []

    /// The conditioning of `prompt` (cached). Token ids the text encoder has no embedding for (a
    /// tokenizer that does not belong to the model) are an error, not a libtorch abort.
    public func embed(_ prompt: String) throws -> PromptEmbedding {
        if let hit = cache.get(prompt) { return hit }
        let e = try withNoGrad { try encode(prompt) }
        cache.put(prompt, e)
        return e
    }

    public func clearCache() { cache.removeAll() }

    private func encode(_ prompt: String) throws -> PromptEmbedding {
        var contexts: [Tensor] = []
        var pooled: Tensor? = nil
        for (k, (encoder, tokenizer)) in zip(textEncoders, tokenizers).enumerated() {
            let (ids, truncated) = tokenizer.tokenize(prompt)
            if truncated { truncatedPrompts.insert(prompt) }
            let vocab = encoder.config.vocabSize
            guard ids.count <= encoder.config.maxPositionEmbeddings, !ids.isEmpty else {
                throw DiffusionError.invalidArgument(
                    "tokenizer \(k + 1) gave \(ids.count) ids, text encoder \(k + 1) takes 1…\(encoder.config.maxPositionEmbeddings)")
            }
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
                throw DiffusionError.invalidArgument(
                    "token id \(bad) of \"\(prompt.prefix(40))\" is outside text encoder \(k + 1)'s vocabulary "
                        + "(vocab_size \(vocab)): the tokenizer does not belong to this text encoder")
            }
            let out = encoder(Tensor(ids.map(Int64.init), shape: [1, ids.count]))
            switch kind {
            case .sd:
                contexts.append(out.lastHiddenState)
            case .sdxl:
                contexts.append(out.hiddenStates[out.hiddenStates.count - 2])
                pooled = out.textEmbeds ?? out.pooled
            }
        }
        let context = contexts.count == 1 ? contexts[0] : Tensor.cat(contexts, dim: -1)
        return PromptEmbedding(context: context.to(unet.dtype), pooled: pooled, prompt: prompt)
    }

    /// The unconditional embedding for `negative` (nil: the empty prompt, or zeros for SDXL).
    private func negativeEmbedding(_ negative: String?) throws -> PromptEmbedding {
        if kind == .sdxl && negative == nil && forceZerosForEmptyPrompt {
            let e = try embed("")
            return PromptEmbedding(context: e.context.zerosLike(), pooled: e.pooled?.zerosLike(), prompt: "")
        }
        return try embed(negative ?? "")
    }

    /// Samples latents for `prompts` (one row each).
    ///
    /// - Parameters:
    ///   - negativePrompts: one per row, or nil (empty prompt; SDXL: zeros).
    ///   - schedule: step → one optional prompt per row; the prompt is used from that step on.
    ///   - onStep: runs after each step but the last with x̂₀; returns one ``PromptUpdate`` per row, or
    ///     nil to keep every row. An error it throws ends sampling and is rethrown.
    ///   - progress: called with (finished steps, total steps).
    /// - Returns: the final latents (UNet space) and the prompts each row ended with (a ready
    ///   conditioning without text counts as its `prompt`, or `""`).
    public func sample(prompts: [String], negativePrompts: [String]? = nil, options: SamplingOptions,
                       schedule: [Int: [String?]] = [:], onStep: ((StepState) throws -> [PromptUpdate]?)? = nil,
                       progress: ((Int, Int) -> Void)? = nil) throws -> (latents: Tensor, prompts: [String]) {
        let batch = prompts.count
        guard batch > 0 else { throw DiffusionError.invalidArgument("no prompts to sample") }
        if let n = negativePrompts, n.count != batch {
            throw DiffusionError.invalidArgument("\(n.count) negative prompts for \(batch) prompts")
        }
        for (step, rows) in schedule where rows.count != batch || step < 0 {
            throw DiffusionError.invalidArgument("prompt schedule at step \(step) has \(rows.count) rows for \(batch)")
        }
        let sampleSize = unet.config.sampleSize?.perBlock(1).first ?? 64
        let height = options.height ?? sampleSize * vaeScaleFactor
        let width = options.width ?? sampleSize * vaeScaleFactor
        guard (1...16384).contains(height), (1...16384).contains(width), height % vaeScaleFactor == 0,
              width % vaeScaleFactor == 0 else {
            throw DiffusionError.invalidArgument(
                "height and width must be multiples of \(vaeScaleFactor) in 1…16384, got \(height)×\(width)")
        }
        guard options.steps > 0 else { throw DiffusionError.invalidArgument("steps must be positive") }
        guard options.guidance.isFinite, options.guidanceRescale.isFinite else {
            throw DiffusionError.invalidArgument("guidance must be finite")
        }
        do { try scheduler.setTimesteps(options.steps) } catch {
            throw DiffusionError.invalidArgument("\(error), with the scheduler of \(folder)/scheduler/scheduler_config.json")
        }
        let cfg = options.guidance > 1
        let dtype = unet.dtype
        let generator = try Generator(seed: options.seed)

        let shape = [batch, unet.config.inChannels, height / vaeScaleFactor, width / vaeScaleFactor]
        let noise: Tensor
        if let rowSeeds = options.rowSeeds {
            guard rowSeeds.count == batch else {
                throw DiffusionError.invalidArgument("\(rowSeeds.count) row seeds for \(batch) prompts")
            }
            var rowShape = shape
            rowShape[0] = 1
            noise = Tensor.cat(try rowSeeds.map { Tensor.randn(rowShape, generator: try Generator(seed: $0)) }, dim: 0)
        } else {
            noise = Tensor.randn(shape, generator: generator)
        }
        var latents = (noise * scheduler.initNoiseSigma).to(dtype)

        var initial = prompts
        for (r, p) in (schedule[0] ?? []).enumerated() { if let p { initial[r] = p } }
        var current = try initial.map { try embed($0) }
        let negatives = try (0..<batch).map { try negativeEmbedding(negativePrompts?[$0]) }
        let timeIds: Tensor? = kind == .sdxl
            ? Tensor([Float(height), Float(width), 0, 0, Float(height), Float(width)], shape: [1, 6])
                .expand([batch * (cfg ? 2 : 1), 6]).to(dtype)
            : nil

        func conditioning() throws -> (context: Tensor, added: AddedConditioning?) {
            let rows = cfg ? negatives + current : current
            let context = Tensor.cat(rows.map(\.context), dim: 0)
            var added: AddedConditioning? = nil
            if let timeIds {
                let pooled = try rows.map { row -> Tensor in
                    guard let p = row.pooled else {
                        throw DiffusionError.invalidArgument("an SDXL conditioning needs a pooled embedding")
                    }
                    return p
                }
                added = AddedConditioning(textEmbeds: Tensor.cat(pooled, dim: 0).to(dtype), timeIds: timeIds)
            }
            return (context, added)
        }

        /// The one place a row's conditioning changes; true when any row did.
        func apply(_ updates: [PromptUpdate], source: String) throws -> Bool {
            guard updates.count == batch else {
                throw DiffusionError.invalidArgument("\(source) gave \(updates.count) rows for \(batch)")
            }
            var changed = false
            for (r, update) in updates.enumerated() {
                switch update {
                case .keep: continue
                case .prompt(let text):
                    guard text != current[r].prompt else { continue }
                    current[r] = try embed(text)
                case .conditioning(let e):
                    guard e.context.rank == 3, e.context.size(0) == 1,
                          e.context.size(-1) == current[r].context.size(-1) else {
                        throw DiffusionError.invalidArgument(
                            "\(source): a conditioning is [1, L, \(current[r].context.size(-1))], got \(e.context.shape)")
                    }
                    current[r] = PromptEmbedding(context: e.context.to(dtype), pooled: e.pooled, prompt: e.prompt)
                }
                changed = true
            }
            return changed
        }
        func scheduled(_ rows: [String?]) -> [PromptUpdate] { rows.map { $0.map(PromptUpdate.prompt) ?? .keep } }

        var (context, added) = try conditioning()
        let steps = scheduler.timesteps
        for (i, t) in steps.enumerated() {
            if i > 0, let rows = schedule[i], try apply(scheduled(rows), source: "prompt schedule at step \(i)") {
                (context, added) = try conditioning()
            }
            let result: SchedulerStep = withNoGrad {
                let noise = guidedNoise(latents, stepIndex: i, context: context, added: added, guidance: options.guidance,
                                        guidanceRescale: options.guidanceRescale)
                return scheduler.step(modelOutput: noise, stepIndex: i, sample: latents, generator: generator)
            }
            latents = result.prevSample
            progress?(i + 1, steps.count)
            if let onStep, i + 1 < steps.count,
               let updates = try onStep(StepState(step: i, timestep: t, predictedOriginal: result.predOriginalSample,
                                                  latents: latents)),
               try apply(updates, source: "step callback after step \(i)") {
                (context, added) = try conditioning()
            }
        }
        return (latents, current.map { $0.prompt ?? "" })
    }

    /// The noise prediction the sampling loop steps with at step `i`: the UNet on the scaled latents
    /// (doubled under classifier-free guidance, `context` holding the negatives first), guided and
    /// optionally rescaled. Differentiable when gradients are on (DDPO's recomputation).
    public func guidedNoise(_ latents: Tensor, stepIndex i: Int, context: Tensor, added: AddedConditioning?,
                            guidance: Double, guidanceRescale: Double = 0) -> Tensor {
        let cfg = guidance > 1
        let input = cfg ? Tensor.cat([latents, latents], dim: 0) : latents
        let scaled = scheduler.scaleModelInput(input, stepIndex: i)
        var noise = unet(scaled, timestep: Tensor(scalar: Float(scheduler.timesteps[i])), context: context, added: added)
        if cfg {
            let parts = noise.chunk(2, dim: 0)
            let (uncond, text) = (parts[0], parts[1])
            noise = uncond + (text - uncond) * guidance
            if guidanceRescale > 0 { noise = rescaleNoise(noise, text: text, rescale: guidanceRescale) }
        }
        return noise
    }

    /// The cross-attention context of `prompts` as the sampling loop builds it for an SD pipeline:
    /// the empty prompt's rows first under guidance (> 1), then the prompts'.
    public func textContext(_ prompts: [String], guidance: Double) throws -> Tensor {
        guard kind == .sd else { throw DiffusionError.invalidArgument("textContext is for SD pipelines (SDXL adds pooled embeddings)") }
        let rows = try prompts.map { try embed($0).context }
        let negatives = guidance > 1 ? try prompts.map { _ in try negativeEmbedding(nil).context } : []
        return Tensor.cat(negatives + rows, dim: 0).to(unet.dtype)
    }

    /// Decodes UNet-space latents (or x̂₀) to images in [0, 1], `[B, 3, H, W]` float32.
    public func decode(_ latents: Tensor) -> Tensor {
        withNoGrad { vae.decodeToImage(latents.to(vae.config.forceUpcast ? .float32 : latents.dtype)).to(.float32) }
    }

    /// Decodes UNet-space latents (or x̂₀) to one ``RGBImage`` per row.
    public func decodeImages(_ latents: Tensor) -> [RGBImage] {
        let images = decode(latents)
        return (0..<images.size(0)).map { RGBImage(tensor: images[$0]) }
    }
}

/// `rescale_noise_cfg`: match the guided prediction's std to the text prediction's (per row).
func rescaleNoise(_ cfg: Tensor, text: Tensor, rescale: Double) -> Tensor {
    let dims = Array(1..<text.rank)
    let stdText = text.std(dims: dims, keepDim: true)
    let stdCfg = cfg.std(dims: dims, keepDim: true)
    let rescaled = cfg * (stdText / stdCfg)
    return rescaled * rescale + cfg * (1 - rescale)
}
