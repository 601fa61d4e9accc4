// Mirrors diffusers DDIMScheduler (diffusers 0.42.1); Song et al., "Denoising Diffusion Implicit
// Models" (2020), eq. 12.
import Foundation
import Torch

public final class DDIMScheduler: Scheduler {
    public let config: SchedulerConfig
    public private(set) var timesteps: [Double] = []
    public let initNoiseSigma = 1.0
    /// η in eq. 12: 0 is deterministic DDIM, 1 is DDPM-like.
    public var eta = 0.0
    let schedule: NoiseSchedule
    let finalAlphaCumprod: Float
    private var stepCount = 0

    public init(_ config: SchedulerConfig) throws {
        try config.validateCommon()
        self.config = config
        schedule = NoiseSchedule(config)
        finalAlphaCumprod = config.setAlphaToOne ? 1 : schedule.alphasCumprod[0]
    }

    public func setTimesteps(_ count: Int) throws {
        guard count > 0, count <= config.numTrainTimesteps else {
            throw DiffusionError.invalidArgument("steps must be in 1...\(config.numTrainTimesteps), got \(count)")
        }
        stepCount = count
        timesteps = try Spacing.integer(config.timestepSpacing ?? "leading", train: config.numTrainTimesteps, count: count,
                                    offset: config.stepsOffset).map(Double.init)
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: Generator?) -> SchedulerStep {
        let t = Int(timesteps[stepIndex])
        let prev = t - config.numTrainTimesteps / stepCount
        // Coefficients in float32, operation for operation as diffusers computes them on 0-dim tensors.
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
        let direction = eps * Double(torchSqrt(1 - alphaProdPrev - std * std))
        var prevSample = x0 * Double(torchSqrt(alphaProdPrev)) + direction
        if eta > 0 {
            guard let generator else { fatalError("DDIM with eta > 0 needs a generator") }
            let noise = Tensor.randn(modelOutput.shape, dtype: modelOutput.dtype, device: modelOutput.device,
                                     generator: generator)
            prevSample = prevSample + noise * Double(std)
        }
        return SchedulerStep(prevSample: prevSample, predOriginalSample: x0)
    }
}
