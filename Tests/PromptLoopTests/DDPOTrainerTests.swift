import Diffusion
import Foundation
import Rewards
import ShapeWorld
import Testing
import Torch
import Training
import TorchNN
@testable import PromptLoop

/// A tiny DDPO run on the embedded miniature: 2 denoising steps, 2 queries × 2 images, two optimiser
/// steps per pass.
func tinyDDPOConfig() -> DDPOConfig {
    var c = DDPOConfig()
    c.diffusion = repository + "/Models/shapeworld-sd"
    c.trainSet = repository + "/Data/shapeworld/v1/train.jsonl"
    c.steps = 2
    c.queriesPerIteration = 2
    c.imagesPerQuery = 2
    c.trainBatchSize = 2
    c.microBatch = 1
    c.statBuffer = 4
    c.statMinCount = 2
    c.iterations = 3
    c.evalEvery = 0
    c.evalQueries = 6
    c.saveEvery = 1
    return c
}

func loraState(_ t: DDPOTrainer) -> [String: Tensor] { t.pipeline.unet.store.state(.adapters) }

@Suite(.serialized) struct DDPOTrainerTests {
    @Test func runFilesNameTheFileAndTheKey() throws {
        let path = NSTemporaryDirectory() + "ddpo-config-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"iterations": 3, "clip_rnage": 0.1}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try DDPOConfig.load(path: path)
            Issue.record("an unknown key loaded")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("clip_rnage"), "\(error)")
        }
        try #"{"eta": 0}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try DDPOConfig.load(path: path)
            Issue.record("eta 0 loaded")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("eta"), "\(error)")
        }
        var c = DDPOConfig()
        c.statMinCount = c.statBuffer + 1
        #expect(throws: EvaluationError.self) { try c.validate() }
    }

    /// From a fresh LoRA (B = 0) the first optimiser step of the first pass has ρ = 1 (up to the float
    /// rounding of a recomputation at another batch size: no clipping) and the adapted kernel equals
    /// the base's exactly (B = 0 adds exact zeros: KL 0); the update moves
    /// the LoRA and nothing else; a second optimiser step of the same pass sees ρ ≠ 1.
    @Test func firstStepIsOnPolicyAndOnlyTheLoRAMoves() throws {
        var config = tinyDDPOConfig()
        config.trainBatchSize = 4  // one optimiser step per pass
        let trainer = try DDPOTrainer.load(config: config)
        let base = trainer.pipeline.unet.store.state(.base).mapValues { $0.clone() }
        let m = try trainer.step()
        #expect(!m.skipped, "\(m.skipReason ?? "")")
        #expect((m.values["approx_kl"] ?? 1) < 1e-10 && m.values["clipfrac"] == 0 && m.values["kl"] == 0, "\(m.values)")
        #expect(m.values["optimizer_steps"] == 1)
        for (key, t) in trainer.pipeline.unet.store.state(.base) { #expect(t.equal(base[key]!), "\(key) moved") }
        #expect(loraState(trainer).contains { $0.key.hasSuffix("lora_B.weight") && $0.value.abs().max().item() > 0 })
        // Two optimiser steps per pass: after the first, the second batch's ratio leaves 1.
        var two = config
        two.trainBatchSize = 2
        two.clipRange = 0.2
        let second = try DDPOTrainer.load(config: two).step()
        #expect(second.values["optimizer_steps"] == 2 && (second.values["approx_kl"] ?? 0) > 0, "\(second.values)")
    }

    @Test func aResumedRunEqualsAnUninterruptedOneBitForBit() throws {
        let base = NSTemporaryDirectory() + "ddpo-resume-\(getpid())"
        try? FileManager.default.removeItem(atPath: base)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let config = tinyDDPOConfig()
        let straight = try IterativeRun(folder: base + "/straight").run(make: { try DDPOTrainer.load(config: config) })
        let first = try IterativeRun(folder: base + "/split", until: 1).run(make: { try DDPOTrainer.load(config: config) })
        #expect(first.iteration == 1)
        var run = IterativeRun(folder: base + "/split")
        run.adapterName = "lora"
        let resumed = try run.run(make: { try DDPOTrainer.load(config: config) })
        #expect(resumed.iteration == 3 && resumed.tracker == straight.tracker)
        let a = loraState(straight), b = loraState(resumed)
        #expect(a.count == b.count && !a.isEmpty)
        for (key, t) in a { #expect(t.equal(b[key]!), "\(key) differs after resume") }
        let rows = MetricsLog(path: base + "/split/metrics.jsonl").rows()
        #expect(rows.compactMap { $0["iteration"] } == [1, 2, 3])
        for key in ["reward", "reward_std", "approx_kl", "clipfrac", "kl", "loss", "rollout/strict", "time/sampling",
                    "time/reward", "time/update"] {
            #expect(rows.allSatisfy { $0[key] != nil }, "metrics.jsonl lacks \(key)")
        }
        // The exported LoRA is a diffusers folder the pipeline loads, with the trained values.
        let lora = base + "/split/lora"
        let pipe = try StableDiffusionPipeline.load(folder: config.diffusion!, options: LoadOptions(unetLoRA: lora))
        let loaded = pipe.unet.store.state(.adapters)
        for (key, t) in b { #expect(loaded[key].map { $0.equal(t) } == true, "\(key) not exported") }
        var other = config
        other.clipRange = 0.5
        #expect(throws: TrainingError.self) {
            try IterativeRun(folder: base + "/split").run(make: { try DDPOTrainer.load(config: other) })
        }
    }

    @Test func nonFiniteRewardsNeverReachTheLoRA() throws {
        var config = tinyDDPOConfig()
        config.maxNonfinite = 2
        let loaded = try DDPOTrainer.load(config: config)
        let trainer = try DDPOTrainer(config: config, pipeline: loaded.pipeline, reward: FixedReward(values: [1, .nan, 0]),
                                      records: loaded.sampler.pools.flatMap(\.records) + loaded.sampler.withheld)
        let before = loraState(trainer).mapValues { $0.clone() }
        let m = try trainer.step()
        #expect(m.skipped && m.skipReason?.contains("fixed") == true && trainer.skipped == 1)
        for (key, t) in loraState(trainer) { #expect(t.equal(before[key]!), "\(key) changed on a NaN reward") }
        #expect(throws: TrainingError.self) { try trainer.step() }
    }
}
