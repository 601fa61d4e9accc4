import Diffusion
import Foundation
import Rewards
import ShapeWorld
import Testing
import Torch
import Training
import TorchNN
@testable import PromptLoop

/// A tiny Diffusion-DPO run on the embedded miniature: 2 denoising steps, 2 queries × 3 images.
func tinyDPOConfig() -> DPOConfig {
    var c = DPOConfig()
    c.diffusion = repository + "/Models/shapeworld-sd"
    c.trainSet = repository + "/Data/shapeworld/v1/train.jsonl"
    c.steps = 2
    c.queriesPerIteration = 2
    c.imagesPerQuery = 3
    c.trainBatchSize = 2
    c.microBatch = 1
    c.iterations = 3
    c.evalEvery = 0
    c.evalQueries = 6
    c.saveEvery = 1
    return c
}

@Suite struct DiffusionDPOLossTests {
    /// One pair, two latent elements, target 0: the winner's error is mean(1², 0²) = 0.5, the loser's 0,
    /// the reference's 0 and 0. inside = −½·β·(0.5 − 0) = −0.5 at β = 2, loss = −log σ(−0.5)
    /// = log(1 + e^0.5); ∂loss/∂(winner's first element) = σ(0.5)·½β·(2·1/2) = σ(0.5).
    @Test func oneHandComputedPair() throws {
        let prediction = Tensor([Float(1), 0, 0, 0], shape: [2, 1, 1, 2]).requiringGrad()
        let reference = Tensor.zeros([2, 1, 1, 2])
        let target = Tensor.zeros([2, 1, 1, 2])
        let out = DiffusionDPO.loss(modelPrediction: prediction, referencePrediction: reference, target: target, beta: 2)
        #expect(abs(out.loss.item() - log(1 + exp(0.5))) < 1e-6)
        #expect(out.implicitAccuracy == 0 && abs(out.modelMSE - 0.25) < 1e-7 && out.referenceMSE == 0)
        out.loss.backward()
        let grad = prediction.grad!.toArray(Float.self).map(Double.init)
        let sigma = 1 / (1 + exp(-0.5))
        #expect(abs(grad[0] - sigma) < 1e-6 && grad[1] == 0 && grad[2] == 0 && grad[3] == 0, "\(grad)")
    }

    /// Two pairs, averaged: one where the model prefers the winner more than the reference (inside > 0),
    /// one where it equals the reference (inside = 0, loss log 2).
    @Test func twoPairsAveragedWithTheReference() throws {
        // Rows: winner 1, winner 2, loser 1, loser 2 (one element each), target 0.
        let model = Tensor([Float(0), 1, 2, 1], shape: [4, 1, 1, 1])
        let reference = Tensor([Float(1), 1, 1, 1], shape: [4, 1, 1, 1])
        let out = DiffusionDPO.loss(modelPrediction: model, referencePrediction: reference,
                                    target: Tensor.zeros([4, 1, 1, 1]), beta: 1)
        // Pair 1: model diff 0 − 4 = −4, reference diff 0: inside = −½·(−4) = 2. Pair 2: inside 0.
        let expected = (log(1 + exp(-2.0)) + log(2.0)) / 2
        #expect(abs(out.loss.item() - expected) < 1e-6)
        #expect(out.implicitAccuracy == 0.5 && abs(out.modelMSE - 1.5) < 1e-7 && out.referenceMSE == 1)
    }

    @Test func pairsNeedAStrictlyBetterWinner() {
        let pairs = DiffusionDPO.pairs(scores: [0.5, 1, 0.5, 0]).map { [$0.winner, $0.loser] }
        #expect(pairs == [[0, 3], [1, 0], [1, 2], [1, 3], [2, 3]])
        #expect(DiffusionDPO.pairs(scores: [0.25, 0.25]).isEmpty)
    }
}

@Suite(.serialized) struct DPOTrainerTests {
    @Test func runFilesNameTheFileAndTheKey() throws {
        let path = NSTemporaryDirectory() + "dpo-config-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"iterations": 3, "betta": 10}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try DPOConfig.load(path: path)
            Issue.record("an unknown key loaded")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("betta"), "\(error)")
        }
        try #"{"images_per_query": 1}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try DPOConfig.load(path: path)
            Issue.record("one image per query loaded")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("images_per_query"), "\(error)")
        }
    }

    /// From a fresh LoRA (B = 0) the trained model is the reference: every pair's inside term is exactly
    /// 0, the first step's loss is log 2, no pair counts as preferred, ε_θ = ε_ref. The update moves the
    /// LoRA and nothing else, and the next step's model differs from the reference.
    @Test func firstStepEqualsTheReferenceAndOnlyTheLoRAMoves() throws {
        var config = tinyDPOConfig()
        config.trainBatchSize = 64  // one optimiser step per pass
        let loaded = try DPOTrainer.load(config: config)
        // Scores that always make pairs: 1, 0.5, 0 for each query's three images.
        let trainer = try DPOTrainer(config: config, pipeline: loaded.pipeline, reward: FixedReward(values: [1, 0.5, 0]),
                                     records: loaded.sampler.pools.flatMap(\.records) + loaded.sampler.withheld)
        let base = trainer.store.state(.base).mapValues { $0.clone() }
        let m = try trainer.step()
        #expect(!m.skipped, "\(m.skipReason ?? "")")
        #expect(m.values["pairs"] == 6 && m.values["optimizer_steps"] == 1, "\(m.values)")
        #expect(abs((m.values["loss"] ?? 0) - log(2.0)) < 1e-6 && m.values["implicit_acc"] == 0, "\(m.values)")
        #expect(m.values["delta_eps"] == 0 && m.values["model_mse"] == m.values["ref_mse"], "\(m.values)")
        for (key, t) in trainer.store.state(.base) { #expect(t.equal(base[key]!), "\(key) moved") }
        #expect(trainer.store.state(.adapters).contains {
            $0.key.hasSuffix("lora_B.weight") && $0.value.abs().max().item() > 0
        })
        let second = try trainer.step()
        #expect((second.values["delta_eps"] ?? 0) > 0 && second.values["loss"] != log(2.0), "\(second.values)")
    }

    @Test func aResumedRunEqualsAnUninterruptedOneBitForBit() throws {
        let base = NSTemporaryDirectory() + "dpo-resume-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let config = tinyDPOConfig()
        func make() throws -> DPOTrainer {
            let loaded = try DPOTrainer.load(config: config)
            return try DPOTrainer(config: config, pipeline: loaded.pipeline, reward: FixedReward(values: [0, 1, 0.5, 0.5]),
                                  records: loaded.sampler.pools.flatMap(\.records) + loaded.sampler.withheld)
        }
        let straight = try IterativeRun(folder: base + "/straight").run(make: make)
        let first = try IterativeRun(folder: base + "/split", until: 1).run(make: make)
        #expect(first.iteration == 1)
        var run = IterativeRun(folder: base + "/split")
        run.adapterName = "lora"
        let resumed = try run.run(make: make)
        #expect(resumed.iteration == 3)
        let a = straight.store.state(.adapters), b = resumed.store.state(.adapters)
        #expect(a.count == b.count && !a.isEmpty)
        for (key, t) in a { #expect(t.equal(b[key]!), "\(key) differs after resume") }
        let rows = MetricsLog(path: base + "/split/metrics.jsonl").rows()
        #expect(rows.compactMap { $0["iteration"] } == [1, 2, 3])
        for key in ["loss", "implicit_acc", "model_mse", "ref_mse", "delta_eps", "pairs", "time/sampling", "time/update"] {
            #expect(rows.allSatisfy { $0[key] != nil }, "metrics.jsonl lacks \(key)")
        }
        // The exported LoRA is a diffusers folder the pipeline loads, with the trained values.
        let pipe = try StableDiffusionPipeline.load(folder: config.diffusion!, options: LoadOptions(unetLoRA: base + "/split/lora"))
        let loaded = pipe.unet.store.state(.adapters)
        for (key, t) in b { #expect(loaded[key].map { $0.equal(t) } == true, "\(key) not exported") }
        var other = config
        other.beta = 10
        #expect(throws: TrainingError.self) {
            try IterativeRun(folder: base + "/split").run(make: { try DPOTrainer.load(config: other) })
        }
    }

    @Test func nonFiniteRewardsNeverReachTheLoRA() throws {
        var config = tinyDPOConfig()
        config.maxNonfinite = 2
        let loaded = try DPOTrainer.load(config: config)
        let trainer = try DPOTrainer(config: config, pipeline: loaded.pipeline, reward: FixedReward(values: [1, .nan, 0]),
                                     records: loaded.sampler.pools.flatMap(\.records) + loaded.sampler.withheld)
        let before = trainer.store.state(.adapters).mapValues { $0.clone() }
        let m = try trainer.step()
        #expect(m.skipped && m.skipReason?.contains("fixed") == true && trainer.skipped == 1)
        for (key, t) in trainer.store.state(.adapters) { #expect(t.equal(before[key]!), "\(key) changed on a NaN reward") }
        #expect(throws: TrainingError.self) { try trainer.step() }
    }
}
