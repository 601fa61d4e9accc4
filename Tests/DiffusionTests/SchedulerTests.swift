import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

// Reference loops: scripts/fixtures/schedulers.py (diffusers 0.42.1) runs each scheduler for ten
// steps with the dummy model eps(x, t) = 0.3·x + cos(0.01·t), initial noise from seed 0 and the
// step generator from seed 1, and records x and x̂₀ after every step.
@Suite struct SchedulerParityTests {
    static let configs: [String: [String: AnyCodable]] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: fixture("schedulers.json")))
        return try! JSONDecoder().decode([String: [String: AnyCodable]].self, from: data)
    }()

    @Test(arguments: ["ddim", "ddim_trailing_v_eta", "ddim_linspace_clip", "ddpm", "ddpm_cos_v", "euler",
                      "euler_linspace_v", "euler_a", "dpm", "dpm_trailing_v", "dpm_heun_linspace"])
    func tenStepLoop(name: String) throws {
        let ref = try SafeTensorsFile(path: fixture("schedulers.safetensors"))
        let raw = try #require(Self.configs[name])
        let json = try JSONEncoder().encode(raw)
        let config = try JSONDecoder().decode(SchedulerConfig.self, from: json)
        let scheduler = try makeScheduler(config)
        if let ddim = scheduler as? DDIMScheduler, case .double(let eta)? = raw["eta"] { ddim.eta = eta }
        try scheduler.setTimesteps(10)
        #expect(scheduler.timesteps == (try ref.tensor("\(name).timesteps")).toArray(Double.self), "\(name) timesteps")
        let initial = Tensor.randn([2, 4, 8, 8], generator: try Generator(seed: 0)) * scheduler.initNoiseSigma
        #expect(relativeError(initial, try ref.tensor("\(name).init")) < 1e-6, "\(name) init")
        let generator = try Generator(seed: 1)
        let alphasCumprod = NoiseSchedule(config).alphasCumprod
        var x = initial
        var budget = RoundingBudget()
        for (i, t) in scheduler.timesteps.enumerated() {
            let input = scheduler.scaleModelInput(x, stepIndex: i)
            let eps = input * 0.3 + Foundation.cos(0.01 * t)
            let out = scheduler.step(modelOutput: eps, stepIndex: i, sample: x, generator: generator)
            let refX0 = try ref.tensor("\(name).x0.\(i)")
            let refX = try ref.tensor("\(name).x.\(i)")
            // ᾱ at the timestep rounded up: the smaller ᾱ of a fractional timestep's neighbours.
            let alpha = Double(alphasCumprod[Swift.min(alphasCumprod.count - 1, Int(t.rounded(.up)))])
            budget.step(sample: x, modelOutput: eps, alphaCumprod: alpha, referenceX0: refX0, referenceX: refX)
            x = out.prevSample
            let e0 = relativeError(out.predOriginalSample, refX0)
            #expect(e0 < budget.x0Bound, "\(name) x̂₀ \(i): \(e0) ≥ \(budget.x0Bound)")
            let ex = relativeError(x, refX)
            #expect(ex < budget.sampleBound, "\(name) x \(i): \(ex) ≥ \(budget.sampleBound)")
        }
    }

    /// How far two float32 evaluations of the same scheduler loop may drift apart, as a relative
    /// error (max |a − b| / max |b|), when they differ only in kernels (libtorch picks AVX2, AVX-512 or
    /// scalar code per CPU; `ATEN_CPU_CAPABILITY` selects it).
    ///
    /// Each x̂₀ is formed by a cancellation, (x − √(1−ᾱ)·ε)/√ᾱ for ε-prediction and the like for v and
    /// for the sigma (Euler) scale, whose terms are at most (|x| + |ε|)/√ᾱ. Its condition number is
    /// therefore κ = (|x| + |ε|) / (√ᾱ · |x̂₀|); float32 rounds each operation to u = 2⁻²⁴, a step is a
    /// handful of operations, and errors of earlier steps are carried into later ones, so after step i
    /// the bound is C · u · (i + 1) · max(1, κᵢ) with C = 16 (a few operations, each rounding twice
    /// when two kernels differ). x takes x̂₀'s error at most with coefficient 1, relative to |x|, and
    /// keeps the largest such amplification of the run.
    /// With linear betas and clipping, ᾱ at t = 999 is 4e-5 and κ ≈ 570: there two kernels differ by
    /// 2e-5 while no formula mistake comes near that.
    struct RoundingBudget {
        static let unit = 0x1p-24
        static let operations = 16.0
        private var steps = 0
        private var x0Condition = 1.0
        private var sampleCondition = 1.0

        mutating func step(sample: Tensor, modelOutput: Tensor, alphaCumprod: Double, referenceX0: Tensor,
                           referenceX: Tensor) {
            steps += 1
            let x0 = Swift.max(referenceX0.abs().max().item(), .leastNormalMagnitude)
            let kappa = (sample.abs().max().item() + modelOutput.abs().max().item()) / (alphaCumprod.squareRoot() * x0)
            x0Condition = Swift.max(1, kappa)
            let xn = Swift.max(referenceX.abs().max().item(), .leastNormalMagnitude)
            sampleCondition = Swift.max(sampleCondition, kappa * x0 / xn)
        }

        var x0Bound: Double { Self.operations * Self.unit * Double(steps) * x0Condition }
        var sampleBound: Double { Self.operations * Self.unit * Double(steps) * sampleCondition }
    }

    @Test func unsupportedConfigsNameTheField() throws {
        var c = SchedulerConfig()
        c.predictionType = "flow"
        #expect(throws: ModelError.self) { try DDIMScheduler(c) }
        c = SchedulerConfig()
        c.algorithmType = "sde-dpmsolver++"
        do {
            _ = try DPMSolverMultistepScheduler(c)
            Issue.record("accepted")
        } catch let e as ModelError {
            #expect(e.description.contains("algorithm_type"))
        }
        #expect(throws: ModelError.self) { try makeScheduler(SchedulerConfig(), kind: "lms") }
        #expect(throws: DiffusionError.self) { try DDIMScheduler(SchedulerConfig()).setTimesteps(0) }
    }
}

/// Enough of a JSON value to carry scheduler configs through Codable.
enum AnyCodable: Codable {
    case int(Int), double(Double), string(String), bool(Bool), null, array([AnyCodable])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .array(try c.decode([AnyCodable].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .null: try c.encodeNil()
        case .array(let v): try c.encode(v)
        }
    }
}
