import Diffusion
import Foundation
import Miniature
import Rewards
import ShapeWorld
import Testing
import Torch
import Training
import TorchNN
@testable import PromptLoop

/// An untrained proxy (random weights: the trainer's mechanics, not its reward, are under test).
let untrainedProxy: String = {
    let folder = NSTemporaryDirectory() + "promptloop-untrained-proxy-\(getpid())"
    try? MiniatureProxy.writeFolder(to: folder, tokenizerFrom: repository + "/Models/shapeworld-sd")
    let trainer = try? ProxyTrainer(folder: folder, seed: 3, schedule: .warmupCosine(peak: 1e-3, warmup: 0, total: 1, minimum: 1e-4))
    try? trainer?.exportWeights(to: folder)
    return folder
}()

/// A tiny ReFL run: 3 denoising steps, the gradient step at 1 or 2, two images per iteration.
func tinyReFLConfig() -> ReFLConfig {
    var c = ReFLConfig()
    c.diffusion = repository + "/Models/shapeworld-sd"
    c.trainSet = repository + "/Data/shapeworld/v1/train.jsonl"
    c.proxy = untrainedProxy
    c.steps = 3
    c.stopRange = [1, 2]
    c.queriesPerIteration = 2
    c.iterations = 3
    c.evalEvery = 0
    c.evalQueries = 6
    c.saveEvery = 1
    c.learningRate = 1e-2
    return c
}

@Suite(.serialized) struct ReFLTrainerTests {
    /// The black-box trainers' `reward: "proxy"` is the shipped proxy's cosine, with ShapeEval's verdict
    /// beside it in the details (the log's true score) and never in the value.
    @Test func theProxyRewardIsTheCosineMonitoredByShapeEval() throws {
        let reward = try EmbeddedModels.reward("proxy")
        #expect(reward.name == "proxy")
        let proxy = try LearnedProxyReward.load(folder: repository + "/Models/shapeworld-proxy")
        var rng = SplitMix64(seed: 3)
        let constraints = PromptParser().parse("two red circles").constraints
        let image = Renderer().render(try SceneSampler().scene(for: constraints, rng: &rng))
        let inputs = [RewardInput(image: image, query: "two red circles"), RewardInput(image: image, query: "a blue square")]
        let scores = try reward.checkedScore(inputs)
        #expect(scores.map(\.value) == (try proxy.checkedScore(inputs)).map(\.value))
        #expect(scores.map { $0.details["strict"] } == [1, 0])
        #expect(try EmbeddedModels.reward("shapeeval_soft") is ShapeEvalReward)
    }

    @Test func runFilesNameTheFileAndTheKey() throws {
        let path = NSTemporaryDirectory() + "refl-config-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"stop_range": [19, 15]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try ReFLConfig.load(path: path)
            Issue.record("a reversed stop range loaded")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("stop_range"), "\(error)")
        }
        var c = tinyReFLConfig()
        c.proxy = "/nonexistent/proxy"
        do {
            _ = try ReFLTrainer.load(config: c)
            Issue.record("a missing proxy loaded")
        } catch {
            #expect("\(error)".contains("/nonexistent/proxy"), "\(error)")
        }
    }

    /// ImageReward's loss ReLU(λ − r)·grad_scale on the logged rewards: with λ = 2 > 1 ≥ r it is
    /// exactly (2 − mean r)·1e-3. From a fresh LoRA (B = 0) the adapted noise prediction equals the
    /// base's (Δε = 0); the step moves the LoRA and nothing else; the next iteration's prediction differs.
    @Test func lossByHandAndOnlyTheLoRAMoves() throws {
        let trainer = try ReFLTrainer.load(config: tinyReFLConfig())
        let base = trainer.store.state(.base).mapValues { $0.clone() }
        let m = try trainer.step()
        #expect(!m.skipped, "\(m.skipReason ?? "")")
        let reward = try #require(m.values["reward"]), loss = try #require(m.values["loss"])
        #expect(abs(loss - (2 - reward) * 1e-3) < 1e-9, "\(m.values)")
        #expect(m.values["delta_eps"] == 0 && m.values["rollout/strict"] != nil, "\(m.values)")
        for (key, t) in trainer.store.state(.base) { #expect(t.equal(base[key]!), "\(key) moved") }
        #expect(trainer.store.state(.adapters).contains {
            $0.key.hasSuffix("lora_B.weight") && $0.value.abs().max().item() > 0
        })
        #expect((try trainer.step().values["delta_eps"] ?? 0) > 0)
    }

    @Test func aResumedRunEqualsAnUninterruptedOneBitForBit() throws {
        let base = NSTemporaryDirectory() + "refl-resume-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let config = tinyReFLConfig()
        let straight = try IterativeRun(folder: base + "/straight").run(make: { try ReFLTrainer.load(config: config) })
        _ = try IterativeRun(folder: base + "/split", until: 1).run(make: { try ReFLTrainer.load(config: config) })
        var run = IterativeRun(folder: base + "/split")
        run.adapterName = "lora"
        let resumed = try run.run(make: { try ReFLTrainer.load(config: config) })
        #expect(resumed.iteration == 3)
        let a = straight.store.state(.adapters), b = resumed.store.state(.adapters)
        #expect(a.count == b.count && !a.isEmpty)
        for (key, t) in a { #expect(t.equal(b[key]!), "\(key) differs after resume") }
        let rows = MetricsLog(path: base + "/split/metrics.jsonl").rows()
        for key in ["reward", "loss", "delta_eps", "rollout/strict", "stop_step", "time/sampling", "time/update"] {
            #expect(rows.count == 3 && rows.allSatisfy { $0[key] != nil }, "metrics.jsonl lacks \(key)")
        }
        let pipe = try StableDiffusionPipeline.load(folder: config.diffusion!, options: LoadOptions(unetLoRA: base + "/split/lora"))
        let loaded = pipe.unet.store.state(.adapters)
        for (key, t) in b { #expect(loaded[key].map { $0.equal(t) } == true, "\(key) not exported") }
    }
}
