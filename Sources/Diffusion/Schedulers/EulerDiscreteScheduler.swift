// Mirrors diffusers EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (diffusers 0.42.1);
// Karras et al., "Elucidating the Design Space of Diffusion-Based Generative Models" (2022), Alg. 2.
import Foundation
import Torch

/// Sigma tables and timesteps shared by the Euler schedulers.
struct SigmaSchedule {
    var timesteps: [Double] = []
    var sigmas: [Double] = []

    /// The configuration fields both Euler schedulers support.
    static func validate(_ c: SchedulerConfig) throws {
        try c.validateCommon()
        if c.useKarrasSigmas { throw c.unsupported("use_karras_sigmas", true) }
        if c.interpolationType != "linear" { throw c.unsupported("interpolation_type", c.interpolationType) }
        if let f = c.finalSigmasType, f != "zero" { throw c.unsupported("final_sigmas_type", f) }
        if c.timestepType != "discrete" { throw c.unsupported("timestep_type", c.timestepType) }
    }

    static func make(_ c: SchedulerConfig, schedule: NoiseSchedule, checkedCount count: Int) throws -> SigmaSchedule {
        guard count > 0, count <= c.numTrainTimesteps else {
            throw DiffusionError.invalidArgument("steps must be in 1...\(c.numTrainTimesteps), got \(count)")
        }
        return try make(c, schedule: schedule, count: count)
    }

    /// `sample / √(σ² + 1)` at step `i`.
    func scaleModelInput(_ sample: Tensor, stepIndex i: Int) -> Tensor {
        sample / Double(Float((sigmas[i] * sigmas[i] + 1).squareRoot()))
    }

    static func make(_ c: SchedulerConfig, schedule: NoiseSchedule, count: Int) throws -> SigmaSchedule {
        let train = c.numTrainTimesteps
        let spacing = c.timestepSpacing ?? "linspace"
        var steps: [Double]
        switch spacing {
        case "linspace":
            steps = Spacing.linspace(0, Double(train - 1), count).map { Double(Float($0)) }.reversed()
        default:
            steps = try Spacing.integer(spacing, train: train, count: count, offset: c.stepsOffset).map(Double.init)
        }
        let table = schedule.sigmas
        var sigmas = steps.map { Double(Float(Spacing.interp($0, table))) }
        sigmas.append(0)
        return SigmaSchedule(timesteps: steps, sigmas: sigmas)
    }

    func initNoiseSigma(_ c: SchedulerConfig) -> Double {
        let maxSigma = sigmas.max() ?? 1
        let spacing = c.timestepSpacing ?? "linspace"
        return ["linspace", "trailing"].contains(spacing)
            ? maxSigma : Double(Float((maxSigma * maxSigma + 1).squareRoot()))
    }
}

/// x̂₀ for a sigma-parameterised sampler.
func sigmaPredictOriginal(_ type: String, modelOutput: Tensor, sample: Tensor, sigma: Double) -> Tensor {
    switch type {
    case "v_prediction":
        return modelOutput * (-sigma / (sigma * sigma + 1).squareRoot()) + sample / (sigma * sigma + 1)
    case "sample":
        return modelOutput
    default:
        return sample - modelOutput * sigma
    }
}

public final class EulerDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public var timesteps: [Double] { table.timesteps }
    public var initNoiseSigma: Double { table.initNoiseSigma(config) }
    public var sigmas: [Double] { table.sigmas }
    let schedule: NoiseSchedule
    var table = SigmaSchedule()

    public init(_ config: SchedulerConfig) throws {
        try SigmaSchedule.validate(config)
        self.config = config
        schedule = NoiseSchedule(config)
    }

    public func setTimesteps(_ count: Int) throws {
        table = try SigmaSchedule.make(config, schedule: schedule, checkedCount: count)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        table.scaleModelInput(sample, stepIndex: stepIndex)
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: Generator?) -> SchedulerStep {
        let sigma = table.sigmas[stepIndex]
        let x = sample.to(.float32)
        let x0 = sigmaPredictOriginal(config.predictionType, modelOutput: modelOutput, sample: x, sigma: sigma)
        let derivative = (x - x0) / sigma
        let dt = table.sigmas[stepIndex + 1] - sigma
        let prev = (x + derivative * dt).to(modelOutput.dtype)
        return SchedulerStep(prevSample: prev, predOriginalSample: x0)
    }
}

public final class EulerAncestralDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public var timesteps: [Double] { table.timesteps }
    public var initNoiseSigma: Double { table.initNoiseSigma(config) }
    let schedule: NoiseSchedule
    var table = SigmaSchedule()

    public init(_ config: SchedulerConfig) throws {
        try SigmaSchedule.validate(config)
        self.config = config
        schedule = NoiseSchedule(config)
    }

    public func setTimesteps(_ count: Int) throws {
        table = try SigmaSchedule.make(config, schedule: schedule, checkedCount: count)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        table.scaleModelInput(sample, stepIndex: stepIndex)
    }

    public func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: Generator?) -> SchedulerStep {
        guard let generator else { fatalError("Euler ancestral sampling needs a generator") }
        let sigma = table.sigmas[stepIndex]
        let x = sample.to(.float32)
        let x0 = sigmaPredictOriginal(config.predictionType, modelOutput: modelOutput, sample: x, sigma: sigma)
        let sigmaTo = table.sigmas[stepIndex + 1]
        let sigmaUp = (sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo) / (sigma * sigma)).squareRoot()
        let sigmaDown = (sigmaTo * sigmaTo - sigmaUp * sigmaUp).squareRoot()
        let derivative = (x - x0) / sigma
        var prev = x + derivative * (sigmaDown - sigma)
        let noise = Tensor.randn(modelOutput.shape, dtype: modelOutput.dtype, device: modelOutput.device,
                                 generator: generator)
        prev = prev + noise * sigmaUp
        return SchedulerStep(prevSample: prev.to(modelOutput.dtype), predOriginalSample: x0)
    }
}
