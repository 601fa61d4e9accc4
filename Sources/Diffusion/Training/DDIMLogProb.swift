// The stochastic DDIM step and the log-density of its sample, as DDPO trains on it (Black et al.,
// "Training Diffusion Models with Reinforcement Learning"; ddpo-pytorch's `ddim_step_with_logprob`):
// with η > 0 each step draws x_{t−1} ~ N(μ_θ(x_t, t), σ_t²) and the policy-gradient ratio compares
// the log-densities of the recorded x_{t−1} under the current and the sampling-time parameters.
import Foundation
import Torch

/// One stochastic DDIM step: the sample, the Gaussian's mean and standard deviation, and the
/// log-density of the sample under it (mean over every dimension but the batch, `[B]`).
public struct DDIMLogProbStep {
    public let prevSample: Tensor
    /// x̂₀ of this step (clipped as the config says).
    public let predOriginalSample: Tensor
    public let mean: Tensor
    public let std: Double
    public let logProb: Tensor
}

extension DDIMScheduler {
    /// The step from `sample` at `stepIndex` with η = ``eta`` (> 0), differentiable in `modelOutput`.
    /// With `prevSample` nil, x_{t−1} is drawn (noise from `generator`); given, its log-density is
    /// computed — what a DDPO update does with the trajectory it recorded.
    public func stepWithLogProb(modelOutput: Tensor, stepIndex: Int, sample: Tensor, prevSample given: Tensor? = nil,
                                generator: Generator? = nil) throws -> DDIMLogProbStep {
        guard eta > 0 else { throw DiffusionError.invalidArgument("a log-probability needs eta > 0, got \(eta)") }
        guard timesteps.indices.contains(stepIndex) else {
            throw DiffusionError.invalidArgument("step \(stepIndex) outside the \(timesteps.count) timesteps")
        }
        let t = Int(timesteps[stepIndex])
        let prev = t - config.numTrainTimesteps / timesteps.count
        let alphaProd = schedule.alphasCumprod[t]
        let alphaProdPrev = prev >= 0 ? schedule.alphasCumprod[prev] : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        var (x0, eps) = predictOriginal(config.predictionType, modelOutput: modelOutput, sample: sample,
                                        alphaProd: alphaProd)
        if config.clipSample ?? true {
            x0 = x0.clamp(min: -config.clipSampleRange, max: config.clipSampleRange)
        }
        let variance = ((1 - alphaProdPrev) / betaProd) * (1 - alphaProd / alphaProdPrev)
        let std = Float(eta) * torchSqrt(variance)
        let mean = x0 * Double(torchSqrt(alphaProdPrev)) + eps * Double(torchSqrt(1 - alphaProdPrev - std * std))
        let sampled: Tensor
        if let given {
            guard given.shape == mean.shape else {
                throw DiffusionError.invalidArgument("recorded sample \(given.shape) for a step of shape \(mean.shape)")
            }
            sampled = given
        } else {
            guard let generator else { throw DiffusionError.invalidArgument("drawing a stochastic DDIM step needs a generator") }
            let noise = Tensor.randn(modelOutput.shape, dtype: modelOutput.dtype, device: modelOutput.device,
                                     generator: generator)
            sampled = (mean + noise * Double(std)).detached()
        }
        let s = Double(std)
        // log N(x; μ, σ²) per element, averaged over all but the batch dimension.
        let perElement = (sampled.detached() - mean).square() * (-1 / (2 * s * s)) - (Foundation.log(s) + 0.5 * Foundation.log(2 * Double.pi))
        let dims = Array(1..<perElement.rank)
        return DDIMLogProbStep(prevSample: sampled, predOriginalSample: x0, mean: mean, std: s,
                               logProb: perElement.mean(dims: dims))
    }
}

/// DDIM with η > 0 that records every step it takes — the latents before, the drawn latents after,
/// and the log-density of the draw — so that a pipeline's ordinary sampling loop yields the
/// trajectory DDPO trains on. Hand it to a pipeline as its scheduler.
public final class RecordingDDIMScheduler: Scheduler {
    /// One recorded step.
    public struct Record {
        public let stepIndex: Int
        public let latents: Tensor
        public let next: Tensor
        public let logProb: Tensor
    }

    public let base: DDIMScheduler
    public private(set) var records: [Record] = []

    /// `base` must have η > 0.
    public init(_ base: DDIMScheduler) throws {
        guard base.eta > 0 else { throw DiffusionError.invalidArgument("a recording DDIM scheduler needs eta > 0") }
        self.base = base
    }

    public var config: SchedulerConfig { base.config }
    public var timesteps: [Double] { base.timesteps }
    public var initNoiseSigma: Double { base.initNoiseSigma }

    /// Also clears the records (a new trajectory starts).
    public func setTimesteps(_ count: Int) throws {
        records = []
        try base.setTimesteps(count)
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: Generator?) -> SchedulerStep {
        // The pipeline's loop calls in order with a generator; eta > 0 was checked at init.
        guard let r = try? base.stepWithLogProb(modelOutput: modelOutput, stepIndex: stepIndex, sample: sample,
                                                generator: generator) else {
            preconditionFailure("RecordingDDIMScheduler: step \(stepIndex) without a generator or outside the timesteps")
        }
        records.append(Record(stepIndex: stepIndex, latents: sample, next: r.prevSample, logProb: r.logProb))
        return SchedulerStep(prevSample: r.prevSample, predOriginalSample: r.predOriginalSample)
    }
}
