import Foundation
import Testing
import Torch
@testable import Diffusion

/// The stochastic DDIM step DDPO trains on: the same draw as the parity-tested `step`, the
/// log-density of a recorded sample recomputed exactly, its value by hand, and gradients to the
/// model output.
@Suite struct DDIMLogProbTests {
    func scheduler() throws -> DDIMScheduler {
        var c = SchedulerConfig()
        (c.betaStart, c.betaEnd, c.betaSchedule, c.clipSample, c.setAlphaToOne, c.stepsOffset) =
            (0.00085, 0.012, "scaled_linear", false, false, 1)
        let s = try DDIMScheduler(c)
        s.eta = 1
        try s.setTimesteps(10)
        return s
    }

    @Test func drawsWhatStepDrawsAndRecomputesItsLogProb() throws {
        let s = try scheduler()
        let g = try Generator(seed: 3)
        let sample = Tensor.randn([2, 4, 8, 8], generator: g)
        let eps = Tensor.randn([2, 4, 8, 8], generator: g)
        for i in [0, 4, 9] {
            let drawn = try s.stepWithLogProb(modelOutput: eps, stepIndex: i, sample: sample, generator: try Generator(seed: 7))
            let plain = s.step(modelOutput: eps, stepIndex: i, sample: sample, generator: try Generator(seed: 7))
            #expect((drawn.prevSample - plain.prevSample).abs().max().item() < 1e-5, "step \(i)")
            let again = try s.stepWithLogProb(modelOutput: eps, stepIndex: i, sample: sample, prevSample: drawn.prevSample)
            #expect(again.logProb.equal(drawn.logProb), "step \(i): recomputed log-prob differs")
            // By hand: mean over elements of −(x−μ)²/(2σ²) − log σ − ½ log 2π.
            let x = drawn.prevSample.toArray(Float.self), mu = drawn.mean.toArray(Float.self)
            let n = x.count / 2
            for row in 0..<2 {
                var sum = 0.0
                for j in (row * n)..<((row + 1) * n) {
                    let d = Double(x[j]) - Double(mu[j])
                    sum += -d * d / (2 * drawn.std * drawn.std) - log(drawn.std) - 0.5 * log(2 * Double.pi)
                }
                let got = Double(drawn.logProb.toArray(Float.self)[row])
                #expect(abs(got - sum / Double(n)) < 1e-4 * max(1, abs(got)), "step \(i) row \(row): \(got) vs \(sum / Double(n))")
            }
        }
    }

    @Test func gradientsReachTheModelOutputAndEtaZeroIsRefused() throws {
        let s = try scheduler()
        let g = try Generator(seed: 1)
        let sample = Tensor.randn([1, 4, 4, 4], generator: g)
        let eps = Tensor.randn([1, 4, 4, 4], generator: g).requiringGrad()
        let recorded = try s.stepWithLogProb(modelOutput: eps.detached(), stepIndex: 3, sample: sample, generator: g).prevSample
        let step = try s.stepWithLogProb(modelOutput: eps, stepIndex: 3, sample: sample, prevSample: recorded)
        step.logProb.sum().backward()
        #expect(eps.grad != nil && eps.grad!.abs().sum().item() > 0)
        s.eta = 0
        #expect(throws: DiffusionError.self) { try s.stepWithLogProb(modelOutput: eps, stepIndex: 3, sample: sample, generator: g) }
    }
}
