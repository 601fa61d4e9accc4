// Mirrors diffusers StableDiffusionPipeline / StableDiffusionXLPipeline (diffusers 0.42.1) for
// text-to-image sampling with classifier-free guidance, plus a prompt that may change at any step.
import Foundation
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
/// callback that runs after each step with x̂₀, as diffusers' `callback_on_step_end`: a prompt
/// returned after step k is used from step k + 1 on; no step is recomputed. Whenever a row's prompt
/// changes, the conditional and unconditional halves of the CFG batch, the SDXL pooled embeddings
/// and the time ids are rebuilt together. Embeddings of prompts seen before come from a cache.
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
    private var cache: [String: PromptEmbedding] = [:]

    public init(kind: Kind, textEncoders: [CLIPTextModel], tokenizers: [PromptTokenizer],
                unet: UNet2DConditionModel, vae: AutoencoderKL, scheduler: Scheduler) throws {
        guard textEncoders.count == tokenizers.count, textEncoders.count == (kind == .sdxl ? 2 : 1) else {
            throw DiffusionError.invalidArgument(
                "\(kind) needs \(kind == .sdxl ? 2 : 1) text encoder(s) with tokenizers, got \(textEncoders.count)")
        }
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

    /// The conditioning of `prompt` (cached).
    public func embed(_ prompt: String) -> PromptEmbedding {
        if let hit = cache[prompt] { return hit }
        let e = withNoGrad { encode(prompt) }
        cache[prompt] = e
        return e
    }

    public func clearCache() { cache.removeAll() }

    private func encode(_ prompt: String) -> PromptEmbedding {
        var contexts: [Tensor] = []
        var pooled: Tensor? = nil
        for (encoder, tokenizer) in zip(textEncoders, tokenizers) {
            let (ids, truncated) = tokenizer.tokenize(prompt)
            if truncated { truncatedPrompts.insert(prompt) }
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
        return PromptEmbedding(context: context.to(unet.dtype), pooled: pooled)
    }

    /// The unconditional embedding for `negative` (nil: the empty prompt, or zeros for SDXL).
    private func negativeEmbedding(_ negative: String?) -> PromptEmbedding {
        if kind == .sdxl && negative == nil && forceZerosForEmptyPrompt {
            let e = embed("")
            return PromptEmbedding(context: e.context.zerosLike(), pooled: e.pooled?.zerosLike())
        }
        return embed(negative ?? "")
    }

    /// Samples latents for `prompts` (one row each).
    ///
    /// - Parameters:
    ///   - negativePrompts: one per row, or nil (empty prompt; SDXL: zeros).
    ///   - schedule: step → one optional prompt per row; the prompt is used from that step on.
    ///   - onStep: runs after each step with x̂₀; returns one optional new prompt per row (nil keeps it).
    ///   - progress: called with (finished steps, total steps).
    /// - Returns: the final latents (UNet space) and the prompts each row ended with.
    public func sample(prompts: [String], negativePrompts: [String]? = nil, options: SamplingOptions,
                       schedule: [Int: [String?]] = [:], onStep: ((StepState) -> [String?]?)? = nil,
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
        guard height > 0, width > 0, height % vaeScaleFactor == 0, width % vaeScaleFactor == 0 else {
            throw DiffusionError.invalidArgument(
                "height and width must be positive multiples of \(vaeScaleFactor), got \(height)×\(width)")
        }
        guard options.steps > 0 else { throw DiffusionError.invalidArgument("steps must be positive") }
        guard options.guidance.isFinite, options.guidanceRescale.isFinite else {
            throw DiffusionError.invalidArgument("guidance must be finite")
        }
        try scheduler.setTimesteps(options.steps)
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

        var current = prompts
        if let first = schedule[0] { for (i, p) in first.enumerated() { if let p { current[i] = p } } }
        let negatives = (0..<batch).map { negativeEmbedding(negativePrompts?[$0]) }
        let timeIds: Tensor? = kind == .sdxl
            ? Tensor([Float(height), Float(width), 0, 0, Float(height), Float(width)], shape: [1, 6])
                .expand([batch * (cfg ? 2 : 1), 6]).to(dtype)
            : nil

        func conditioning() -> (context: Tensor, added: AddedConditioning?) {
            let positives = current.map { embed($0) }
            let rows = cfg ? negatives + positives : positives
            let context = Tensor.cat(rows.map(\.context), dim: 0)
            var added: AddedConditioning? = nil
            if let timeIds {
                added = AddedConditioning(textEmbeds: Tensor.cat(rows.map { $0.pooled! }, dim: 0).to(dtype),
                                          timeIds: timeIds)
            }
            return (context, added)
        }

        var (context, added) = conditioning()
        let steps = scheduler.timesteps
        for (i, t) in steps.enumerated() {
            if i > 0, let rows = schedule[i] {
                var changed = false
                for (r, p) in rows.enumerated() where p != nil && p != current[r] {
                    current[r] = p!
                    changed = true
                }
                if changed { (context, added) = conditioning() }
            }
            let result: SchedulerStep = withNoGrad {
                let input = cfg ? Tensor.cat([latents, latents], dim: 0) : latents
                let scaled = scheduler.scaleModelInput(input, stepIndex: i)
                var noise = unet(scaled, timestep: Tensor(scalar: Float(t)), context: context, added: added)
                if cfg {
                    let parts = noise.chunk(2, dim: 0)
                    let (uncond, text) = (parts[0], parts[1])
                    noise = uncond + (text - uncond) * options.guidance
                    if options.guidanceRescale > 0 {
                        noise = rescaleNoise(noise, text: text, rescale: options.guidanceRescale)
                    }
                }
                return scheduler.step(modelOutput: noise, stepIndex: i, sample: latents, generator: generator)
            }
            latents = result.prevSample
            progress?(i + 1, steps.count)
            if let onStep, i + 1 < steps.count,
               let rows = onStep(StepState(step: i, timestep: t, predictedOriginal: result.predOriginalSample,
                                           latents: latents)) {
                guard rows.count == batch else {
                    throw DiffusionError.invalidArgument("step callback returned \(rows.count) prompts for \(batch) rows")
                }
                var changed = false
                for (r, p) in rows.enumerated() where p != nil && p != current[r] {
                    current[r] = p!
                    changed = true
                }
                if changed { (context, added) = conditioning() }
            }
        }
        return (latents, current)
    }

    /// Decodes UNet-space latents (or x̂₀) to images in [0, 1], `[B, 3, H, W]` float32.
    public func decode(_ latents: Tensor) -> Tensor {
        withNoGrad { vae.decodeToImage(latents.to(vae.config.forceUpcast ? .float32 : latents.dtype)).to(.float32) }
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
