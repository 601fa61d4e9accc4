import Foundation
import Torch
import TorchNN
import Training

/// Trains a `CLIPTextModel` and a `UNet2DConditionModel` together on (latent, caption) pairs with the
/// DDPM ε-prediction objective (Ho et al. 2020, eq. 14): `‖ε − ε_θ(√ᾱ_t·x₀ + √(1−ᾱ_t)·ε, t, c)‖²`
/// with t uniform over the training timesteps. A fraction of captions is replaced by the empty
/// prompt so that classifier-free guidance works.
public final class TextToImageTrainer {
    public let textStore: ParameterStore
    public let unetStore: ParameterStore
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let tokenizer: PromptTokenizer
    public let optimizer: AdamW
    public let schedule: LRSchedule
    /// Timesteps, noise and caption dropout.
    public let generator: Generator
    public var emptyCaptionProbability: Double
    public private(set) var step = 0
    /// Why the last step's update was skipped (a non-finite loss or gradient), or nil.
    public private(set) var lastSkipReason: String?
    let alphasCumprod: Tensor

    public init(textConfig: CLIPTextConfig, unetConfig: UNet2DConditionConfig, scheduler: SchedulerConfig,
                tokenizer: PromptTokenizer, seed: UInt64, schedule: LRSchedule,
                emptyCaptionProbability: Double = 0.1) throws {
        textStore = try ParameterStore(seed: seed)
        unetStore = try ParameterStore(seed: seed &+ 1)
        textEncoder = try CLIPTextModel(config: textConfig, path: textStore.root)
        unet = try UNet2DConditionModel(config: unetConfig, path: unetStore.root)
        self.tokenizer = tokenizer
        optimizer = AdamW(textStore.trainableTensors + unetStore.trainableTensors, learningRate: schedule.rate(at: 0),
                          betas: (0.9, 0.999), weightDecay: 0.01)
        self.schedule = schedule
        generator = try Generator(seed: seed &+ 2)
        self.emptyCaptionProbability = emptyCaptionProbability
        alphasCumprod = Tensor(NoiseSchedule(scheduler).alphasCumprod)
    }

    /// Token ids `[B, L]` for `captions`, each replaced by "" with probability `emptyCaptionProbability`.
    func tokenIds(_ captions: [String]) -> Tensor {
        let drop = Tensor.rand([captions.count], generator: generator).toArray(Float.self)
        let rows = zip(captions, drop).map { caption, u in
            tokenizer.tokenize(Double(u) < emptyCaptionProbability ? "" : caption).ids.map(Int64.init)
        }
        return Tensor(rows.flatMap { $0 }, shape: [rows.count, tokenizer.maxLength])
    }

    /// One optimisation step on UNet-space latents `[B, C, h, w]` and their captions; returns the loss.
    @discardableResult
    public func trainStep(latents: Tensor, captions: [String]) -> Double {
        optimizer.learningRate = schedule.rate(at: step)
        optimizer.zeroGrad()
        let b = latents.size(0)
        let ids = tokenIds(captions)
        let t = Tensor.randint(0, alphasCumprod.count, [b], generator: generator)
        let noise = Tensor.randn(latents.shape, generator: generator)
        let ab = alphasCumprod.indexSelect(dim: 0, index: t).reshape([b, 1, 1, 1])
        let noisy = latents * ab.sqrt() + noise * (1 - ab).sqrt()
        let context = textEncoder(ids).lastHiddenState
        let prediction = unet(noisy, timestep: t, context: context)
        let loss = (prediction - noise).square().mean()
        let outcome = guardedStep(loss, optimizer: optimizer, maxNorm: 1, step: step + 1)
        lastSkipReason = outcome.skipReason
        step += 1
        return outcome.loss
    }

    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try TrainingCheckpoint.save(to: path, stores: ["text_encoder": textStore, "unet": unetStore],
                                    optimizer: optimizer, generators: ["train": generator], step: step,
                                    metadata: metadata)
    }

    public func resume(from path: String) throws {
        step = try TrainingCheckpoint.load(from: path, stores: ["text_encoder": textStore, "unet": unetStore],
                                           optimizer: optimizer, generators: ["train": generator]).step
    }
}
