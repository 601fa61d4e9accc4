import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

/// DDPO's sampling on the shipped miniature with a fresh UNet LoRA: the log-probabilities recorded
/// while sampling equal a recomputation with gradients, so the importance ratio is exactly 1 before
/// the first update, and the gradient of the recomputed log-probability reaches the LoRA only.
@Suite struct DDPOSamplingTests {
    @Test func recordedLogProbsEqualARecomputationAndTheRatioIsOne() throws {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Models/shapeworld-sd").standardized.path
        // A trainable LoRA on the attention projections, B drawn non-zero so that it acts.
        let pipe = try StableDiffusionPipeline.load(folder: model, options: LoadOptions(unetLoRA: fixture("unet-lora")))
        pipe.unet.store.unfreeze(adapters: true)
        var c = pipe.scheduler.config
        c.className = "DDIMScheduler"
        let ddim = try DDIMScheduler(c)
        ddim.eta = 1
        let recorder = try RecordingDDIMScheduler(ddim)
        pipe.scheduler = recorder
        let prompts = ["two red circles left of a blue square", "a large green diamond"]
        let options = SamplingOptions(steps: 4, guidance: 5, seed: 11)
        let out = try pipe.sample(prompts: prompts, options: options)
        #expect(recorder.records.count == 4)
        #expect(recorder.records.last!.next.equal(out.latents))
        let context = try pipe.textContext(prompts, guidance: 5)
        var total: Tensor? = nil
        for r in recorder.records {
            let noise = pipe.guidedNoise(r.latents, stepIndex: r.stepIndex, context: context, added: nil, guidance: 5)
            let again = try ddim.stepWithLogProb(modelOutput: noise, stepIndex: r.stepIndex, sample: r.latents, prevSample: r.next)
            let ratio = (again.logProb - r.logProb).exp()
            #expect((ratio - 1).abs().max().item() < 1e-5, "step \(r.stepIndex): ratio \(ratio.toArray(Float.self))")
            total = total.map { $0 + again.logProb.sum() } ?? again.logProb.sum()
        }
        total!.backward()
        let adapters = pipe.unet.store.parameters.filter(\.isAdapter)
        #expect(!adapters.isEmpty && adapters.allSatisfy { ($0.tensor.grad?.abs().sum().item() ?? 0) > 0 })
        #expect(pipe.unet.store.parameters.filter { !$0.isAdapter }.allSatisfy { $0.tensor.grad == nil })
    }
}
