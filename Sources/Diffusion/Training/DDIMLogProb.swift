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
        return DDIMLogProbStep(prevSample: sampled, mean: mean, std: s, logProb: perElement.mean(dims: dims))
    }
}
