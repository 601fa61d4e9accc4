import Foundation
import Testing
import Torch
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
        var x = initial
        for (i, t) in scheduler.timesteps.enumerated() {
            let input = scheduler.scaleModelInput(x, stepIndex: i)
            let eps = input * 0.3 + Foundation.cos(0.01 * t)
            let out = scheduler.step(modelOutput: eps, stepIndex: i, sample: x, generator: generator)
            x = out.prevSample
            let e0 = relativeError(out.predOriginalSample, try ref.tensor("\(name).x0.\(i)"))
            #expect(e0 < 1e-5, "\(name) x̂₀ \(i): \(e0)")
            #expect(relativeError(x, try ref.tensor("\(name).x.\(i)")) < 1e-5, "\(name) x \(i)")
        }
    }

    @Test func unsupportedConfigsNameTheField() throws {
        var c = SchedulerConfig()
        c.predictionType = "flow"
        #expect(throws: DiffusionError.self) { try DDIMScheduler(c) }
        c = SchedulerConfig()
        c.algorithmType = "sde-dpmsolver++"
        do {
            _ = try DPMSolverMultistepScheduler(c)
            Issue.record("accepted")
        } catch let e as DiffusionError {
            #expect(e.description.contains("algorithm_type"))
        }
        #expect(throws: DiffusionError.self) { try makeScheduler(SchedulerConfig(), kind: "lms") }
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
