// Mirrors diffusers DDPMScheduler (diffusers 0.42.1); Ho et al., "Denoising Diffusion
// Probabilistic Models" (2020), eq. 6–7.
import Foundation
import Torch

public final class DDPMScheduler: Scheduler {
    public let config: SchedulerConfig
    public private(set) var timesteps: [Double] = []
    public let initNoiseSigma = 1.0
    let schedule: NoiseSchedule

    public init(_ config: SchedulerConfig) throws {
        try config.validateCommon()
        let variance = config.varianceType ?? "fixed_small"
        guard ["fixed_small", "fixed_small_log", "fixed_large"].contains(variance) else {
            throw config.unsupported("variance_type", variance)
        }
        self.config = config
        schedule = NoiseSchedule(config)
    }

    public func setTimesteps(_ count: Int) throws {
        guard count > 0, count <= config.numTrainTimesteps else {
            throw DiffusionError.invalidArgument("steps must be in 1...\(config.numTrainTimesteps), got \(count)")
        }
        timesteps = try Spacing.integer(config.timestepSpacing ?? "leading", train: config.numTrainTimesteps, count: count,
                                    offset: config.stepsOffset).map(Double.init)
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: Generator?) -> SchedulerStep {
        let t = Int(timesteps[stepIndex])
        let prev = stepIndex + 1 < timesteps.count ? Int(timesteps[stepIndex + 1]) : -1
        let alphaProd = schedule.alphasCumprod[t]
        let alphaProdPrev: Float = prev >= 0 ? schedule.alphasCumprod[prev] : 1
        let betaProd = 1 - alphaProd
        let betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProd / alphaProdPrev
        let currentBeta = 1 - currentAlpha
        var x0 = predictOriginal(config.predictionType, modelOutput: modelOutput, sample: sample,
                                 alphaProd: alphaProd).x0
        if config.clipSample ?? true {
            x0 = x0.clamp(min: -config.clipSampleRange, max: config.clipSampleRange)
        }
        let x0Coefficient = torchSqrt(alphaProdPrev) * currentBeta / betaProd
        let sampleCoefficient = torchSqrt(currentAlpha) * betaProdPrev / betaProd
        var prevSample = x0 * Double(x0Coefficient) + sample * Double(sampleCoefficient)
        if t > 0 {
            guard let generator else { fatalError("DDPM sampling needs a generator") }
            let noise = Tensor.randn(modelOutput.shape, dtype: modelOutput.dtype, device: modelOutput.device,
                                     generator: generator)
            let variance = Swift.max((1 - alphaProdPrev) / (1 - alphaProd) * currentBeta, 1e-20)
            let scale: Float
            switch config.varianceType ?? "fixed_small" {
            case "fixed_small_log": scale = Foundation.exp(0.5 * Foundation.log(variance))
            case "fixed_large": scale = torchSqrt(currentBeta)
            default: scale = torchSqrt(variance)
            }
            prevSample = prevSample + noise * Double(scale)
        }
        return SchedulerStep(prevSample: prevSample, predOriginalSample: x0)
    }
}
