// Mirrors diffusers DPMSolverMultistepScheduler (diffusers 0.42.1) for algorithm "dpmsolver++",
// solver order ≤ 2, midpoint/heun: DPM-Solver++(2M), Lu et al. (2022), Alg. 2.
import Foundation
import Torch

public final class DPMSolverMultistepScheduler: Scheduler {
    public let config: SchedulerConfig
    public private(set) var timesteps: [Double] = []
    public let initNoiseSigma = 1.0
    public private(set) var sigmas: [Double] = []
    let schedule: NoiseSchedule
    private var modelOutputs: [Tensor?] = []
    private var lowerOrderCount = 0

    public init(_ config: SchedulerConfig) throws {
        try config.validateCommon()
        if config.algorithmType != "dpmsolver++" { throw config.unsupported("algorithm_type", config.algorithmType) }
        if !(1...2).contains(config.solverOrder) { throw config.unsupported("solver_order", config.solverOrder) }
        if !["midpoint", "heun"].contains(config.solverType) { throw config.unsupported("solver_type", config.solverType) }
        if config.useKarrasSigmas { throw config.unsupported("use_karras_sigmas", true) }
        if let f = config.finalSigmasType, f != "zero" { throw config.unsupported("final_sigmas_type", f) }
        self.config = config
        schedule = NoiseSchedule(config)
    }

    public func setTimesteps(_ count: Int) throws {
        guard count > 0, count <= config.numTrainTimesteps else {
            throw DiffusionError.invalidArgument("steps must be in 1...\(config.numTrainTimesteps), got \(count)")
        }
        let last = config.numTrainTimesteps
        let steps: [Int]
        switch config.timestepSpacing ?? "linspace" {
        case "linspace":
            steps = Array(Spacing.linspace(0, Double(last - 1), count + 1).map { Int($0.rounded(.toNearestOrEven)) }
                .reversed().dropLast())
        case "leading":
            let ratio = last / (count + 1)
            steps = Array((0...count).map { $0 * ratio + config.stepsOffset }.reversed().dropLast())
        default:
            steps = try Spacing.integer("trailing", train: last, count: count, offset: 0)
        }
        if let bad = steps.first(where: { !(0..<last).contains($0) }) {
            throw DiffusionError.invalidArgument(
                "\(count) steps with steps_offset \(config.stepsOffset) reach timestep \(bad), past num_train_timesteps \(last)")
        }
        timesteps = steps.map(Double.init)
        let table = schedule.sigmas
        sigmas = steps.map { Double(table[$0]) } + [0]
        modelOutputs = Array(repeating: nil, count: config.solverOrder)
        lowerOrderCount = 0
    }

    private func alphaSigma(_ sigma: Double) -> (alpha: Double, sigma: Double) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    private func lambda(_ sigma: Double) -> Double {
        let (a, s) = alphaSigma(sigma)
        return Foundation.log(a) - Foundation.log(s)
    }

    public func step(modelOutput: Tensor, stepIndex i: Int, sample: Tensor, generator: Generator?) -> SchedulerStep {
        let n = timesteps.count
        let lowerOrderFinal = i == n - 1 && (config.eulerAtFinal || (config.lowerOrderFinal && n < 15)
                                             || (config.finalSigmasType ?? "zero") == "zero")
        // convert_model_output: the data prediction x̂₀.
        let (alphaS0, sigmaS0) = alphaSigma(sigmas[i])
        let x0: Tensor
        switch config.predictionType {
        case "v_prediction": x0 = sample * alphaS0 - modelOutput * sigmaS0
        case "sample": x0 = modelOutput
        default: x0 = (sample - modelOutput * sigmaS0) / alphaS0
        }
        modelOutputs.removeFirst()
        modelOutputs.append(x0)
        let x = sample.to(.float32)
        let (alphaT, sigmaT) = alphaSigma(sigmas[i + 1])
        let h = lambda(sigmas[i + 1]) - lambda(sigmas[i])
        let prev: Tensor
        if config.solverOrder == 1 || lowerOrderCount < 1 || lowerOrderFinal {
            prev = x * (sigmaT / sigmaS0) - x0 * (alphaT * (Foundation.exp(-h) - 1))
        } else {
            let m0 = modelOutputs[modelOutputs.count - 1]!
            let m1 = modelOutputs[modelOutputs.count - 2]!
            let h0 = lambda(sigmas[i]) - lambda(sigmas[i - 1])
            let r0 = h0 / h
            let d1 = (m0 - m1) * (1 / r0)
            let e = alphaT * (Foundation.exp(-h) - 1)
            if config.solverType == "heun" {
                prev = x * (sigmaT / sigmaS0) - m0 * e + d1 * (alphaT * ((Foundation.exp(-h) - 1) / h + 1))
            } else {
                prev = x * (sigmaT / sigmaS0) - m0 * e - d1 * (0.5 * e)
            }
        }
        if lowerOrderCount < config.solverOrder { lowerOrderCount += 1 }
        return SchedulerStep(prevSample: prev.to(modelOutput.dtype), predOriginalSample: x0)
    }
}
