// The scheduler protocol and the shared `scheduler_config.json` (diffusers 0.42.1 field names).
import Foundation
import TorchNN
import Torch

/// `scheduler/scheduler_config.json`: the union of the fields the supported schedulers read.
public struct SchedulerConfig: Codable, Sendable, Equatable {
    public var className: String? = nil
    public var numTrainTimesteps = 1000
    public var betaStart = 0.0001
    public var betaEnd = 0.02
    public var betaSchedule = "linear"
    public var trainedBetas: [Double]? = nil
    public var clipSample: Bool? = nil
    public var clipSampleRange = 1.0
    public var setAlphaToOne = true
    public var stepsOffset = 0
    public var predictionType = "epsilon"
    public var timestepSpacing: String? = nil
    public var varianceType: String? = nil
    public var interpolationType = "linear"
    public var useKarrasSigmas = false
    public var finalSigmasType: String? = nil
    public var timestepType = "discrete"
    public var thresholding = false
    public var rescaleBetasZeroSnr = false
    public var algorithmType = "dpmsolver++"
    public var solverOrder = 2
    public var solverType = "midpoint"
    public var lowerOrderFinal = true
    public var eulerAtFinal = false

    enum CodingKeys: String, CodingKey {
        case className = "_class_name", numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start"
        case betaEnd = "beta_end", betaSchedule = "beta_schedule", trainedBetas = "trained_betas"
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
        case stepsOffset = "steps_offset", predictionType = "prediction_type", timestepSpacing = "timestep_spacing"
        case varianceType = "variance_type", interpolationType = "interpolation_type"
        case useKarrasSigmas = "use_karras_sigmas", finalSigmasType = "final_sigmas_type"
        case timestepType = "timestep_type", thresholding, rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case algorithmType = "algorithm_type", solverOrder = "solver_order", solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final", eulerAtFinal = "euler_at_final"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SchedulerConfig()
        className = try c.decodeIfPresent(String.self, forKey: .className)
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? d.numTrainTimesteps
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart) ?? d.betaStart
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd) ?? d.betaEnd
        betaSchedule = try c.decodeIfPresent(String.self, forKey: .betaSchedule) ?? d.betaSchedule
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample)
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange) ?? d.clipSampleRange
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne) ?? d.setAlphaToOne
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset) ?? d.stepsOffset
        predictionType = try c.decodeIfPresent(String.self, forKey: .predictionType) ?? d.predictionType
        timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing)
        varianceType = try c.decodeIfPresent(String.self, forKey: .varianceType)
        interpolationType = try c.decodeIfPresent(String.self, forKey: .interpolationType) ?? d.interpolationType
        useKarrasSigmas = try c.decodeIfPresent(Bool.self, forKey: .useKarrasSigmas) ?? d.useKarrasSigmas
        finalSigmasType = try c.decodeIfPresent(String.self, forKey: .finalSigmasType)
        timestepType = try c.decodeIfPresent(String.self, forKey: .timestepType) ?? d.timestepType
        thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding) ?? d.thresholding
        rescaleBetasZeroSnr = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr) ?? d.rescaleBetasZeroSnr
        algorithmType = try c.decodeIfPresent(String.self, forKey: .algorithmType) ?? d.algorithmType
        solverOrder = try c.decodeIfPresent(Int.self, forKey: .solverOrder) ?? d.solverOrder
        solverType = try c.decodeIfPresent(String.self, forKey: .solverType) ?? d.solverType
        lowerOrderFinal = try c.decodeIfPresent(Bool.self, forKey: .lowerOrderFinal) ?? d.lowerOrderFinal
        eulerAtFinal = try c.decodeIfPresent(Bool.self, forKey: .eulerAtFinal) ?? d.eulerAtFinal
    }

    func unsupported(_ field: String, _ value: Any) -> ModelError {
        .unsupported(file: "scheduler_config.json", field: field, value: "\(value)")
    }

    /// Checks every number against a range that makes sense for it, naming `file` on failure
    /// (the loaders call it with the file's path; the schedulers again before building their tables).
    public func validate(file: String = "scheduler_config.json") throws {
        let range = ConfigRange(file: file)
        try range.count("num_train_timesteps", numTrainTimesteps, 2...ConfigRange.maxTimesteps)
        try range.real("beta_start", betaStart, above: 0, below: 1)
        try range.real("beta_end", betaEnd, above: 0, below: 1)
        if let trained = trainedBetas {
            try range.count("trained_betas.count", trained.count, numTrainTimesteps...numTrainTimesteps)
            for (i, b) in trained.enumerated() { try range.real("trained_betas[\(i)]", b, above: 0, below: 1) }
        }
        try range.count("steps_offset", stepsOffset, 0...(numTrainTimesteps - 1))
        try range.real("clip_sample_range", clipSampleRange, above: 0, atMost: 1e6)
        try range.count("solver_order", solverOrder, 1...3)
    }

    /// Checks the fields every scheduler shares.
    func validateCommon() throws {
        try validate()
        guard ["epsilon", "v_prediction", "sample"].contains(predictionType) else {
            throw unsupported("prediction_type", predictionType)
        }
        guard ["linear", "scaled_linear", "squaredcos_cap_v2"].contains(betaSchedule) || trainedBetas != nil else {
            throw unsupported("beta_schedule", betaSchedule)
        }
        if thresholding { throw unsupported("thresholding", true) }
        if rescaleBetasZeroSnr { throw unsupported("rescale_betas_zero_snr", true) }
        if let s = timestepSpacing, !["leading", "trailing", "linspace"].contains(s) {
            throw unsupported("timestep_spacing", s)
        }
    }
}

/// What one scheduler step returns: the next latent and the denoised estimate x̂₀ at this step.
public struct SchedulerStep {
    public let prevSample: Tensor
    /// x̂₀ (Tweedie's estimate, in latent space) computed at this step.
    public let predOriginalSample: Tensor
}

/// A sampler over a fixed set of inference timesteps, as diffusers' `SchedulerMixin`.
///
/// Usage mirrors diffusers: `setTimesteps`, then for each `i` in `timesteps.indices`,
/// `scaleModelInput`, the model call at `timesteps[i]`, and `step`.
public protocol Scheduler: AnyObject {
    var config: SchedulerConfig { get }
    /// Inference timesteps, first to last (fractional for sigma-interpolating schedulers).
    var timesteps: [Double] { get }
    /// Standard deviation of the initial noise (multiply unit Gaussian noise by it).
    var initNoiseSigma: Double { get }
    func setTimesteps(_ count: Int) throws
    func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor
    /// Advances from step `stepIndex` to the next; `generator` feeds stochastic samplers.
    func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, generator: Generator?) -> SchedulerStep
}

extension Scheduler {
    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }
}

/// β / ᾱ tables shared by the schedulers (float32 values, as diffusers keeps them).
struct NoiseSchedule {
    let betas: [Float]
    let alphasCumprod: [Float]

    init(_ c: SchedulerConfig) {
        let n = c.numTrainTimesteps
        var betas: [Float]
        if let trained = c.trainedBetas {
            betas = trained.map(Float.init)
        } else {
            switch c.betaSchedule {
            case "scaled_linear":
                betas = Tensor.linspace(c.betaStart.squareRoot(), c.betaEnd.squareRoot(), count: n).square()
                    .toArray(Float.self)
            case "squaredcos_cap_v2":
                // betas_for_alpha_bar with the cosine alpha-bar, max_beta 0.999 (computed in float64).
                func alphaBar(_ t: Double) -> Double { Foundation.pow(Foundation.cos((t + 0.008) / 1.008 * .pi / 2), 2) }
                betas = (0..<n).map { i in
                    let t1 = Double(i) / Double(n), t2 = Double(i + 1) / Double(n)
                    return Float(Swift.min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
                }
            default:
                betas = Tensor.linspace(c.betaStart, c.betaEnd, count: n).toArray(Float.self)
            }
        }
        self.betas = betas
        // torch.cumprod on CPU accumulates float32 in double.
        var acc = 1.0
        alphasCumprod = betas.map { b in
            acc *= Double(Float(1) - b)
            return Float(acc)
        }
    }

    /// `((1 − ᾱ) / ᾱ)^½` in float32, as diffusers' sigma tables.
    var sigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }
}

/// Timestep spacings shared by DDIM, DDPM and the Euler schedulers (numpy arithmetic reproduced).
enum Spacing {
    /// The integer timesteps of a spacing; throws when `steps_offset` pushes one past the table.
    static func integer(_ spacing: String, train: Int, count: Int, offset: Int) throws -> [Int] {
        let steps = unchecked(spacing, train: train, count: count, offset: offset)
        if let bad = steps.first(where: { !(0..<train).contains($0) }) {
            throw DiffusionError.invalidArgument(
                "\(count) steps with steps_offset \(offset) reach timestep \(bad), past num_train_timesteps \(train)")
        }
        return steps
    }

    private static func unchecked(_ spacing: String, train: Int, count: Int, offset: Int) -> [Int] {
        switch spacing {
        case "linspace":
            return linspace(0, Double(train - 1), count).map { Int($0.rounded(.toNearestOrEven)) }.reversed()
        case "trailing":
            // np.round(np.arange(train, 0, -train / count)) - 1
            let ratio = Double(train) / Double(count)
            let n = Int((Double(train) / ratio).rounded(.up))
            return (0..<n).map { Int((Double(train) - Double($0) * ratio).rounded(.toNearestOrEven)) - 1 }
        default:  // leading
            let ratio = train / count
            return (0..<count).map { $0 * ratio + offset }.reversed()
        }
    }

    /// numpy.linspace in float64.
    static func linspace(_ start: Double, _ end: Double, _ n: Int) -> [Double] {
        guard n > 1 else { return [start] }
        let step = (end - start) / Double(n - 1)
        return (0..<n).map { i in i == n - 1 ? end : start + Double(i) * step }
    }

    /// numpy.interp of `x` over the table `fp` at integer abscissae 0, 1, 2, ….
    static func interp(_ x: Double, _ fp: [Float]) -> Double {
        if x <= 0 { return Double(fp[0]) }
        if x >= Double(fp.count - 1) { return Double(fp[fp.count - 1]) }
        let j = Int(x.rounded(.down))
        let slope = (Double(fp[j + 1]) - Double(fp[j])) / 1.0
        return slope * (x - Double(j)) + Double(fp[j])
    }
}

/// `x ** 0.5` as PyTorch computes it on a 0-dim float32 tensor (diffusers' coefficient arithmetic).
/// It can differ from the correctly rounded `squareRoot()` in the last bit, which the x̂₀ of an
/// early step (divided by √ᾱ ≈ 0.006) turns into a visible difference.
func torchSqrt(_ x: Float) -> Float {
    Tensor(scalar: x).pow(0.5).item(Float.self)
}

/// x̂₀ and ε from the model output for ᾱₜ (shared by DDIM and DDPM), coefficients in float32 as diffusers.
func predictOriginal(_ predictionType: String, modelOutput: Tensor, sample: Tensor, alphaProd: Float)
    -> (x0: Tensor, eps: Tensor)
{
    let a = torchSqrt(alphaProd)
    let b = torchSqrt(1 - alphaProd)
    switch predictionType {
    case "v_prediction":
        return (sample * Double(a) - modelOutput * Double(b), modelOutput * Double(a) + sample * Double(b))
    case "sample":
        return (modelOutput, (sample - modelOutput * Double(a)) / Double(b))
    default:
        return ((sample - modelOutput * Double(b)) / Double(a), modelOutput)
    }
}

/// Builds the scheduler a config names (`_class_name`), or `kind` when given.
public func makeScheduler(_ config: SchedulerConfig, kind: String? = nil) throws -> Scheduler {
    let name = kind ?? config.className ?? "DDIMScheduler"
    switch name {
    case "ddim", "DDIMScheduler": return try DDIMScheduler(config)
    case "ddpm", "DDPMScheduler": return try DDPMScheduler(config)
    case "euler", "EulerDiscreteScheduler": return try EulerDiscreteScheduler(config)
    case "euler-a", "EulerAncestralDiscreteScheduler": return try EulerAncestralDiscreteScheduler(config)
    case "dpm", "DPMSolverMultistepScheduler": return try DPMSolverMultistepScheduler(config)
    default:
        throw ModelError.unsupported(file: "scheduler_config.json", field: "_class_name", value: name)
    }
}

extension SchedulerConfig {
    /// ᾱ_t for t = 0…num_train_timesteps−1 (float32 values, as diffusers keeps them): for noising
    /// training inputs to a chosen t and forming x̂₀ outside a sampling loop.
    public var alphasCumprod: [Float] { NoiseSchedule(self).alphasCumprod }
}
