// Mirrors diffusers EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (diffusers 0.42.1);
// Karras et al., "Elucidating the Design Space of Diffusion-Based Generative Models" (2022), Alg. 2.
import Foundation
import Torch

/// Sigma tables and timesteps shared by the Euler schedulers.
struct SigmaSchedule {
    var timesteps: [Double] = []
    var sigmas: [Double] = []

    static func make(_ c: SchedulerConfig, schedule: NoiseSchedule, count: Int) -> SigmaSchedule {
        let train = c.numTrainTimesteps
        let spacing = c.timestepSpacing ?? "linspace"
        var steps: [Double]
        switch spacing {
        case "linspace":
            steps = Spacing.linspace(0, Double(train - 1), count).map { Double(Float($0)) }.reversed()
        default:
            steps = Spacing.integer(spacing, train: train, count: count, offset: c.stepsOffset).map(Double.init)
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
        try config.validateCommon()
        if config.useKarrasSigmas { throw config.unsupported("use_karras_sigmas", true) }
        if config.interpolationType != "linear" { throw config.unsupported("interpolation_type", config.interpolationType) }
        if let f = config.finalSigmasType, f != "zero" { throw config.unsupported("final_sigmas_type", f) }
        if config.timestepType != "discrete" { throw config.unsupported("timestep_type", config.timestepType) }
        self.config = config
        schedule = NoiseSchedule(config)
    }

    public func setTimesteps(_ count: Int) throws {
        guard count > 0, count <= config.numTrainTimesteps else {
            throw DiffusionError.invalidArgument("steps must be in 1...\(config.numTrainTimesteps), got \(count)")
        }
        table = SigmaSchedule.make(config, schedule: schedule, count: count)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        let sigma = table.sigmas[stepIndex]
        return sample / Double(Float((sigma * sigma + 1).squareRoot()))
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
        try config.validateCommon()
        self.config = config
        schedule = NoiseSchedule(config)
    }

    public func setTimesteps(_ count: Int) throws {
        guard count > 0, count <= config.numTrainTimesteps else {
            throw DiffusionError.invalidArgument("steps must be in 1...\(config.numTrainTimesteps), got \(count)")
        }
        table = SigmaSchedule.make(config, schedule: schedule, count: count)
    }

    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        let sigma = table.sigmas[stepIndex]
        return sample / Double(Float((sigma * sigma + 1).squareRoot()))
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
