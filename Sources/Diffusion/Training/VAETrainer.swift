import Foundation
import Torch
import TorchNN
import Training

/// Trains an `AutoencoderKL` on images in [-1, 1]: mean-squared reconstruction of a posterior draw
/// plus a small KL term toward N(0, 1) (the SD recipe without its perceptual and adversarial
/// terms, which flat-coloured ShapeWorld images do not need).
public final class VAETrainer {
    public let config: AutoencoderKLConfig
    public let store: ParameterStore
    public let vae: AutoencoderKL
    public let optimizer: AdamW
    /// Draws the posterior noise.
    public let noise: Generator
    public var klWeight: Double
    public var schedule: LRSchedule
    public private(set) var step = 0
    /// Why the last step's update was skipped (a non-finite loss or gradient), or nil.
    public private(set) var lastSkipReason: String?

    public init(config: AutoencoderKLConfig, seed: UInt64, schedule: LRSchedule, klWeight: Double = 1e-4) throws {
        self.config = config
        store = try ParameterStore(seed: seed)
        vae = try AutoencoderKL(config: config, path: store.root)
        optimizer = AdamW(store.trainableTensors, learningRate: schedule.rate(at: 0), betas: (0.9, 0.999),
                          weightDecay: 0)
        noise = try Generator(seed: seed &+ 1)
        self.klWeight = klWeight
        self.schedule = schedule
    }

    /// One optimisation step on `images` `[B, 3, H, W]` in [-1, 1]; returns (loss, reconstruction, KL).
    @discardableResult
    public func trainStep(_ images: Tensor) -> (loss: Double, reconstruction: Double, kl: Double) {
        optimizer.learningRate = schedule.rate(at: step)
        optimizer.zeroGrad()
        let posterior = vae.encode(images)
        let z = posterior.sample(generator: noise)
        let reconstruction = (vae.decode(z) - images).square().mean()
        let kl = ((posterior.mean.square() + posterior.logvar.exp() - 1 - posterior.logvar) * 0.5).mean()
        let loss = reconstruction + kl * klWeight
        let outcome = guardedStep(loss, optimizer: optimizer, maxNorm: 1, step: step + 1)
        lastSkipReason = outcome.skipReason
        step += 1
        return (outcome.loss, reconstruction.item(), kl.item())
    }

    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try TrainingCheckpoint.save(to: path, stores: ["vae": store], optimizer: optimizer,
                                    generators: ["noise": noise], step: step, metadata: metadata)
    }

    public func resume(from path: String) throws {
        step = try TrainingCheckpoint.load(from: path, stores: ["vae": store], optimizer: optimizer,
                                           generators: ["noise": noise]).step
    }

    /// The standard deviation of the posterior means of `images`: `scaling_factor` is its inverse
    /// (how SD chose 0.18215).
    public func latentStd(_ images: Tensor) -> Double {
        withNoGrad { vae.encode(images).mean.std().item() }
    }
}
