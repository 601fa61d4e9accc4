import Foundation
import Testing
import Torch
import TorchNN

// Reference: torch.optim.AdamW(lr=0.01, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1) for five
// steps on fixed gradients, and torch.nn.utils.clip_grad_norm_(max_norm=0.5)
// (scripts/fixtures/torch_ops.py writes Fixtures/adamw.safetensors).
@Suite struct OptimizerTests {
    let f: SafeTensorsFile

    init() throws { f = try SafeTensorsFile(path: fixturePath("adamw.safetensors")) }

    /// Sets `p.grad` to exactly `g` through autograd: d/dp sum(p·g) = g.
    func setGrad(_ p: Tensor, _ g: Tensor) {
        p.zeroGrad()
        (p * g).sum().backward()
    }

    func makeOptimizer(_ w: Tensor, _ b: Tensor) -> AdamW {
        AdamW([w, b], learningRate: 0.01, betas: (0.9, 0.98), eps: 1e-8, weightDecay: 0.1)
    }

    @Test func adamWStepsEqualPyTorch() throws {
        let w = try f.tensor("w0").requiringGrad()
        let b = try f.tensor("b0").requiringGrad()
        let opt = makeOptimizer(w, b)
        for i in 0..<5 {
            setGrad(w, try f.tensor("gw.\(i)"))
            setGrad(b, try f.tensor("gb.\(i)"))
            opt.step()
            #expect(relativeError(w, try f.tensor("w.\(i + 1)")) < 1e-6, "step \(i + 1)")
            #expect(relativeError(b, try f.tensor("b.\(i + 1)")) < 1e-6, "step \(i + 1)")
        }
        #expect(opt.stepCount == 5)
    }

    @Test func resumingFromSavedStateContinuesExactly() throws {
        let w = try f.tensor("w0").requiringGrad()
        let b = try f.tensor("b0").requiringGrad()
        let opt = makeOptimizer(w, b)
        for i in 0..<2 {
            setGrad(w, try f.tensor("gw.\(i)"))
            setGrad(b, try f.tensor("gb.\(i)"))
            opt.step()
        }
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try SafeTensors.write(opt.state().merging(["w": w, "b": b]) { a, _ in a }, to: folder + "/ckpt.safetensors")
        let saved = try SafeTensorsFile(path: folder + "/ckpt.safetensors").all()
        let w2 = saved["w"]!.requiringGrad()
        let b2 = saved["b"]!.requiringGrad()
        let resumed = makeOptimizer(w2, b2)
        try resumed.load(state: saved.filter { $0.key != "w" && $0.key != "b" })
        for i in 2..<5 {
            setGrad(w2, try f.tensor("gw.\(i)"))
            setGrad(b2, try f.tensor("gb.\(i)"))
            resumed.step()
        }
        #expect(relativeError(w2, try f.tensor("w.5")) < 1e-6)
        #expect(resumed.stepCount == 5)
        #expect(throws: NNError.self) { try makeOptimizer(w2, b2).load(state: [:]) }
    }

    @Test func parametersWithoutGradientsAreSkipped() throws {
        let w = Tensor([1, 2] as [Float]).requiringGrad()
        let frozen = Tensor([3, 4] as [Float]).requiringGrad()
        let opt = AdamW([w, frozen], learningRate: 0.1)
        setGrad(w, Tensor([1, 1] as [Float]))
        opt.step()
        #expect(frozen.toArray(Float.self) == [3, 4])
        #expect(w.toArray(Float.self) != [1, 2])
    }

    @Test func clipGradNormEqualsPyTorch() throws {
        let w = Tensor.zeros([5, 3]).requiringGrad()
        let b = Tensor.zeros([3]).requiringGrad()
        setGrad(w, try f.tensor("gw.4"))
        setGrad(b, try f.tensor("gb.4"))
        let total = clipGradNorm([w, b], maxNorm: 0.5)
        #expect(abs(total - (try f.tensor("clip_total")).item()) < 1e-5)
        #expect(relativeError(w.grad!, try f.tensor("clip_gw")) < 1e-6)
        #expect(relativeError(b.grad!, try f.tensor("clip_gb")) < 1e-6)
        // Below the limit nothing changes.
        let small = Tensor.zeros([2]).requiringGrad()
        setGrad(small, Tensor([0.1, 0.1] as [Float]))
        clipGradNorm([small], maxNorm: 10)
        #expect(small.grad!.toArray(Float.self) == [0.1, 0.1])
    }
}

@Suite struct ScheduleTests {
    @Test func learningRateSchedules() {
        #expect(LRSchedule.constant(0.1).rate(at: 1000) == 0.1)
        let warm = LRSchedule.warmupConstant(peak: 1, warmup: 4)
        #expect([0, 1, 2, 4, 9].map(warm.rate) == [0, 0.25, 0.5, 1, 1])
        let linear = LRSchedule.warmupLinear(peak: 1, warmup: 2, total: 10)
        #expect([0, 1, 2, 6, 10, 12].map(linear.rate) == [0, 0.5, 1, 0.5, 0, 0])
        let cosine = LRSchedule.warmupCosine(peak: 2, warmup: 10, total: 110)
        #expect(cosine.rate(at: 5) == 1)
        #expect(cosine.rate(at: 10) == 2)
        #expect(abs(cosine.rate(at: 60) - 1) < 1e-12)           // half way down: cos(π/2) = 0
        #expect(abs(cosine.rate(at: 110)) < 1e-12)
        let floor = LRSchedule.warmupCosine(peak: 1, warmup: 0, total: 10, minimum: 0.1)
        #expect(abs(floor.rate(at: 10) - 0.1) < 1e-12 && floor.rate(at: 0) == 1)
    }

    @Test func emaFollowsDiffusersDecay() {
        let p = Tensor([0] as [Double])
        let ema = EMA([p], decay: 0.5)
        withNoGrad { p.fill_(10) }
        ema.update()                       // step 1: decay 0 → shadow = 10
        #expect(ema.shadow[0].item() == 10)
        withNoGrad { p.fill_(20) }
        ema.update()                       // step 2: min(0.5, 2/11) = 2/11
        let d = 2.0 / 11
        #expect(abs(ema.shadow[0].item() - (10 * d + 20 * (1 - d))) < 1e-12)
        withNoGrad { p.fill_(0) }
        ema.copyToParameters()
        #expect(p.item() == ema.shadow[0].item())
    }
}
