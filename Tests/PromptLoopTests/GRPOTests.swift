import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Testing
import Torch
import Training
import VisionLanguage
@testable import PromptLoop

/// A tiny run on the embedded models: 4 denoising steps, 2 queries × 2 trajectories.
func tinyConfig() -> GRPOConfig {
    var c = GRPOConfig()
    c.diffusion = repository + "/Models/shapeworld-sd"
    c.policy = repository + "/Models/shapeworld-policy"
    c.trainSet = repository + "/Data/shapeworld/v1/train.jsonl"
    c.steps = 4
    c.groupSize = 2
    c.queriesPerIteration = 2
    c.nRRange = [1, 2]
    c.iterations = 3
    c.maxNewTokens = 12
    c.evalEvery = 0
    c.evalQueries = 6
    c.saveEvery = 1
    c.microBatch = 3
    c.warmup = 0
    return c
}

/// A reward that gives fixed numbers in turn (NaN included).
struct FixedReward: Reward {
    var values: [Double]
    var name: String { "fixed" }
    func score(_ inputs: [RewardInput]) throws -> [RewardScore] {
        inputs.indices.map { RewardScore(value: values[$0 % values.count]) }
    }
}

func adapterState(_ trainer: GRPOTrainer) -> [String: Tensor] { trainer.decoder.store.state(.adapters) }

@Suite struct GRPOMathTests {
    /// Found by the fuzzer: a run file whose values are out of range said "run configuration"
    /// without naming the file.
    @Test func anOutOfRangeRunFileIsNamed() throws {
        let path = NSTemporaryDirectory() + "grpo-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"mu": 2147483648}"#.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try GRPOConfig.loadValidated(path: path)
            Issue.record("mu = 2^31 accepted")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("mu"), "\(error)")
        }
    }

    @Test func advantagesOfKnownGroups() {
        // Group 1: mean 0.25, unbiased std √((0.75² + 3·0.25²)/3) = 0.5. Group 2: no variance.
        let rewards = [1.0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5]
        let (a, zero) = GRPO.advantages(rewards, groupSize: 4, scale: .group)
        #expect(zero == 1)
        #expect(a[0] == 0.75 / 0.5001 && a[1] == -0.25 / 0.5001 && a[3] == -0.25 / 0.5001)
        #expect(a[4...].allSatisfy { $0 == 0 })
        let (none, _) = GRPO.advantages(rewards, groupSize: 4, scale: .none)
        #expect(none == [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0])
        // Batch scaling: the std of all eight rewards (unbiased), as TRL's scale_rewards="batch".
        let batchStd = GRPO.unbiasedStd(rewards)
        let (batch, _) = GRPO.advantages(rewards, groupSize: 4, scale: .batch)
        #expect(batch[0] == 0.75 / (batchStd + 1e-4) && batch[5] == 0)
        #expect(abs(GRPO.unbiasedStd([1, 2, 3, 4]) - 1.2909944487358056) < 1e-15)
    }

    @Test func lossOfAHandComputedCase() {
        // Two tokens, one row, advantage +1: ratios e^0 = 1 and e^0.5 ≈ 1.6487 → clipped at 1.2;
        // the surrogate takes min(ρA, clip(ρ)A) = (1, 1.2), so the loss is −(1, 1.2) without KL.
        let logp = Tensor([Float(-1), -2], shape: [1, 2])
        let old = Tensor([Float(-1), -2.5], shape: [1, 2])
        let plus = Tensor([Float(1)], shape: [1])
        let (l, kl, ratio) = GRPO.tokenLoss(logp: logp, old: old, ref: nil, advantages: plus, beta: 0.04,
                                            epsilonLow: 0.2, epsilonHigh: 0.2)
        #expect(kl == nil)
        #expect(abs(ratio.toArray(Double.self)[1] - Foundation.exp(0.5)) < 1e-6)
        let v = l.toArray(Double.self)
        #expect(abs(v[0] + 1) < 1e-6 && abs(v[1] + 1.2) < 1e-6)
        // Advantage −1: min(−ρ, −clip(ρ)) = (−1, −1.6487): the loss pushes the ratio down, unclipped.
        let minus = Tensor([Float(-1)], shape: [1])
        let (ln, _, _) = GRPO.tokenLoss(logp: logp, old: old, ref: nil, advantages: minus, beta: 0,
                                        epsilonLow: 0.2, epsilonHigh: 0.2)
        let n = ln.toArray(Double.self)
        #expect(abs(n[0] - 1) < 1e-6 && abs(n[1] - Foundation.exp(0.5)) < 1e-5)
        // KL k3 with ref − logp = (0, 1): (0, e − 2); β = 0.5 adds half of it.
        let ref = Tensor([Float(-1), -1], shape: [1, 2])
        let (lk, k3, _) = GRPO.tokenLoss(logp: logp, old: logp.detached(), ref: ref, advantages: plus, beta: 0.5,
                                         epsilonLow: 0.2, epsilonHigh: 0.2)
        let k = k3!.toArray(Double.self)
        #expect(k[0] == 0 && abs(k[1] - (Foundation.exp(1) - 2)) < 1e-6)
        let withKL = lk.toArray(Double.self)
        #expect(abs(withKL[1] - (-1 + 0.5 * (Foundation.exp(1) - 2))) < 1e-6)
    }

    @Test func rowWeightsAverageTrajectoriesOrTokens() {
        // Trajectory 0: rows of 2 and 3 tokens; trajectory 1: one row of 5; trajectory 2 has no tokens.
        let grpo = GRPO.rowWeights(tokens: [2, 3, 5], trajectory: [0, 0, 1], trajectories: 3, type: .grpo)
        let fifteenth: Double = 1.0 / 15
        #expect(grpo == [fifteenth, fifteenth, fifteenth])
        let dapo = GRPO.rowWeights(tokens: [2, 3, 5], trajectory: [0, 0, 1], trajectories: 3, type: .dapo)
        let tenth: Double = 0.1
        #expect(dapo == [tenth, tenth, tenth])
    }

    @Test func configurationRejectsNonsenseAndUnknownKeys() throws {
        var c = GRPOConfig()
        c.nRRange = [3, 1]
        #expect(throws: EvaluationError.self) { try c.validate() }
        c = GRPOConfig()
        c.groupSize = 1
        #expect(throws: EvaluationError.self) { try c.validate() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grpo-config-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("run.json").path
        try Data(#"{"mode": "open", "group_sise": 4}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: EvaluationError.self) { try GRPOConfig.load(path: path) }
        do { _ = try GRPOConfig.load(path: path) } catch { #expect("\(error)".contains("group_sise")) }
        try Data(#"{"mode": "open", "n_r_range": [5, 5]}"#.utf8).write(to: URL(fileURLWithPath: path))
        let loaded = try GRPOConfig.load(path: path)
        #expect(loaded.mode == .open && loaded.nRRange == [5, 5] && loaded.groupSize == 8)
        // The resolved config round-trips.
        #expect(try JSONDecoder().decode(GRPOConfig.self, from: try loaded.json()) == loaded)
    }
}

@Suite struct GRPOSamplerTests {
    @Test func plansAreBalancedGroupedAndReproducible() throws {
        let records = try PromptSets.readJSONLines(path: repository + "/Data/shapeworld/v1/train.jsonl")
        let sampler = try GRPOSampler(records: records, withheldCount: 48)
        #expect(sampler.withheld.count == 48)
        let pooled = Set(sampler.pools.flatMap(\.records).map(\.id))
        #expect(sampler.withheld.allSatisfy { !pooled.contains($0.id) })
        #expect(Set(sampler.withheld.map(\.category)).count == 6)
        var c = GRPOConfig()
        c.groupSize = 4
        c.queriesPerIteration = 6
        let plan = sampler.plan(iteration: 3, config: c)
        #expect(Set(plan.records.map(\.category)).count == 6)
        for g in 0..<6 {
            let rows = (g * 4)..<(g * 4 + 4)
            #expect(Set(rows.map { plan.records[$0].id }).count == 1)
            #expect(Set(rows.map { plan.refinements[$0] }).count == 1)
            let r = plan.refinements[g * 4]
            #expect((1...8).contains(r.count) && r == r.sorted() && r.allSatisfy { (0...18).contains($0) })
            #expect(Set(rows.map { plan.rowSeeds[$0] }).count == 4)
        }
        let again = sampler.plan(iteration: 3, config: c)
        #expect(again.records.map(\.id) == plan.records.map(\.id) && again.rowSeeds == plan.rowSeeds)
        #expect(sampler.plan(iteration: 4, config: c).rowSeeds != plan.rowSeeds)
        c.sameNoise = true
        let same = sampler.plan(iteration: 3, config: c)
        #expect(Set(same.rowSeeds[0..<4]).count == 1)
    }

    @Test func anEvalSetReplacesTheWithheldSliceInEvaluationOnly() throws {
        let train = try PromptSets.readJSONLines(path: repository + "/Data/shapeworld/v1/train.jsonl")
        let sampler = try GRPOSampler(records: train, withheldCount: 12)
        #expect(try heldOutQueries(evalSet: nil, count: 12, withheld: sampler.withheld).map(\.id)
            == sampler.withheld.map(\.id))
        let evalPath = repository + "/Data/shapeworld/v1/eval.jsonl"
        let evalIDs = Set(try PromptSets.readJSONLines(path: evalPath).map(\.id))
        let heldOut = try heldOutQueries(evalSet: evalPath, count: 12, withheld: sampler.withheld)
        #expect(heldOut.count == 12 && heldOut.allSatisfy { evalIDs.contains($0.id) })
        #expect(Set(heldOut.map(\.category)).count == 6)
        #expect(try heldOutQueries(evalSet: evalPath, count: 12, withheld: []).map(\.id) == heldOut.map(\.id))
        #expect(throws: (any Error).self) { try heldOutQueries(evalSet: "/nonexistent/eval.jsonl", count: 12, withheld: []) }
    }
}

/// The closed-loop rollout of `trainer`'s first iteration (tiny config: 4 steps), without gradients.
func firstRollout(_ trainer: GRPOTrainer) throws -> RolloutResult {
    let plan = trainer.sampler.plan(iteration: 0, config: trainer.config)
    return try withNoGrad {
        try RolloutEngine(pipeline: trainer.pipeline, policy: trainer.trainingPolicy(seed: plan.policySeed), mode: .closed)
            .run(queries: plan.records.map(\.prompt), refinements: plan.refinements,
                 options: SamplingOptions(steps: 4, guidance: 5, seed: plan.noiseSeed, rowSeeds: plan.rowSeeds))
    }
}

@Suite(.serialized) struct GRPOTrainerTests {
    @Test func onPolicyRatioIsOneAndKLIsZeroFromAFreshAdapter() throws {
        let trainer = try GRPOTrainer.load(config: tinyConfig())
        let rollout = try firstRollout(trainer)
        let rows = trainer.rows(trajectories: rollout.trajectories, advantages: [1, -1, 0.5, -0.5])
        #expect(rows.count == rollout.trajectories.map(\.actions.count).reduce(0, +))
        #expect(rows.allSatisfy { $0.image?.width == 64 })
        let s = try trainer.score(rows[...], entropy: true)
        let ref = try withNoGrad { try trainer.decoder.withAdaptersDisabled { try trainer.score(rows[...], entropy: false) } }
        let (_, kl, ratio) = GRPO.tokenLoss(
            logp: s.logProbs, old: s.logProbs.detached(), ref: ref.logProbs,
            advantages: Tensor(rows.map { Float($0.advantage) }, shape: [rows.count]), beta: 0.04,
            epsilonLow: 0.2, epsilonHigh: 0.2)
        // Exactly: exp(x − x) = 1, and with LoRA B = 0 the adapted logits are the base logits.
        #expect((ratio * s.mask).sum().item() == s.mask.sum().item())
        #expect((kl! * s.mask).abs().max().item() == 0)
        // For μ > 1 the trainer keeps these first-epoch log-probs as π_old instead of a separate
        // no-gradient pass: that pass gives the same numbers (the same kernels without the graph).
        let noGrad = try withNoGrad { try trainer.score(rows[...], entropy: false) }
        #expect(((noGrad.logProbs - s.logProbs.detached()) * s.mask).abs().max().item()
            <= 64 * 0x1p-24 * Swift.max(1, (s.logProbs * s.mask).abs().max().item()))

        // Log-probs recorded while sampling (left-padded batch, KV cache) equal the scoring pass
        // (right-padded, no cache) within float32 rounding: 64 units (u = 2⁻²⁴) of the largest |logit|.
        let actions = rollout.trajectories.flatMap(\.actions)
        let scored = s.logProbs.toArray(Double.self)
        let width = s.logProbs.size(1)
        for (i, action) in actions.enumerated() {
            let context = try trainer.chat.promptIds(user: action.state.text, hasImage: true).ids + action.tokens
            let pixels = try trainer.chat.pixels([action.state.image!])
            let logits = try withNoGrad {
                try trainer.chat.model(Tensor(context.map(Int64.init), shape: [1, context.count]), pixels: pixels)
            }
            let tolerance = 64 * 0x1p-24 * Swift.max(1, logits.abs().max().item())
            for (j, recorded) in action.logProbs.enumerated() {
                #expect(abs(scored[i * width + j] - recorded) < tolerance, "action \(i) token \(j)")
            }
        }

        // One backward pass: gradients reach LoRA parameters only (B gets a signal, A none yet as B = 0).
        let loss = (s.logProbs * s.mask).sum()
        loss.backward()
        let store = trainer.decoder.store
        let base = store.parameters.filter { !$0.isAdapter }
        #expect(base.allSatisfy { $0.tensor.grad == nil })
        let bs = store.parameters.filter { $0.name.hasSuffix("lora_B.weight") }
        #expect(!bs.isEmpty && bs.contains { ($0.tensor.grad?.abs().max().item() ?? 0) > 0 })
        #expect(Set(trainer.optimizer.parameters.map { ObjectIdentifier($0) })
            == Set(store.parameters.filter(\.isAdapter).map { ObjectIdentifier($0.tensor) }))
    }

    /// Training rollouts run with the adapters folded into the base weights; the update scores the
    /// replies unfolded. With a trained (non-zero) adapter both give the same log-probs within float32
    /// rounding, and the frozen weights are untouched afterwards.
    @Test func foldedRolloutsScoreAsTheUnfoldedPolicy() throws {
        let trainer = try GRPOTrainer.load(config: tinyConfig())
        withNoGrad {
            for (i, layer) in trainer.decoder.adapters.enumerated() {
                layer.loraB.copy_(Tensor.randn(layer.loraB.shape, generator: try! Generator(seed: UInt64(i))) * 0.05)
            }
        }
        let base = trainer.decoder.store.state(.base)
        let rollout = try trainer.decoder.withAdaptersMerged { try firstRollout(trainer) }
        for (key, t) in trainer.decoder.store.state(.base) { #expect(t.equal(base[key]!), "\(key) changed") }
        let rows = trainer.rows(trajectories: rollout.trajectories, advantages: [1, -1, 0.5, -0.5])
        let s = try withNoGrad { try trainer.score(rows[...], entropy: false) }
        let scored = s.logProbs.toArray(Double.self), width = s.logProbs.size(1)
        let largest = Swift.max(1, (s.logProbs * s.mask).abs().max().item())
        let actions = rollout.trajectories.flatMap(\.actions)
        #expect(actions.count == rows.count && !actions.isEmpty)
        var worst = 0.0
        for (i, action) in actions.enumerated() {
            for (j, recorded) in action.logProbs.enumerated() { worst = Swift.max(worst, abs(scored[i * width + j] - recorded)) }
        }
        #expect(worst <= 1e-4 * largest, "largest difference \(worst)")
    }

    /// Identical rows (a group sharing its noise whose trajectories reply alike) are scored once with
    /// their weights added: the gradient and the logged statistics are those of the rows one by one.
    @Test func mergingIdenticalRowsLeavesTheUpdateUnchanged() throws {
        let one = try GRPOTrainer.load(config: tinyConfig()), merged = try GRPOTrainer.load(config: tinyConfig())
        let rollout = try firstRollout(one)
        let rows = one.rows(trajectories: rollout.trajectories, advantages: [1, -1, 0.5, -0.5])
        let repeated = rows + [rows[0], rows[0], rows[rows.count - 1]]
        let distinct = merged.merged(repeated)
        #expect(distinct.count == rows.count)
        #expect(distinct[0].count == 3 && abs(distinct[0].weight - 3 * rows[0].weight) < 1e-12)
        #expect(distinct[rows.count - 1].count == 2)

        let a = try one.update(rows: repeated), b = try merged.update(rows: distinct)
        for key in ["loss", "grad_norm", "kl", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean"] {
            let x = try #require(a[key]), y = try #require(b[key])
            #expect(abs(x - y) <= 1e-5 * Swift.max(1, abs(x)), "\(key): \(x) one by one, \(y) merged")
        }
        // The gradients of the (single) epoch, left on the parameters by the update.
        let grads = { (t: GRPOTrainer) in t.decoder.store.parameters.filter(\.isAdapter).map { $0.tensor.grad } }
        let ga = grads(one), gb = grads(merged)
        #expect(ga.count == gb.count && ga.contains { ($0?.abs().max().item() ?? 0) > 0 })
        for (x, y) in zip(ga, gb) {
            guard let x, let y else { #expect(x == nil && y == nil); continue }
            #expect((x - y).abs().max().item() <= 1e-4 * Swift.max(1e-8, x.abs().max().item()))
        }
    }

    /// A policy may write the image token itself (it is in its vocabulary): scored, it is a word of
    /// the reply, not a slot for image features (a run once stopped at iteration 34 on it).
    @Test func aReplyContainingTheImageTokenScoresAsText() throws {
        let chat = try LlavaChat.load(folder: repository + "/Models/shapeworld-policy")
        let image = RGBImage(width: 64, height: 64, bytes: [UInt8](repeating: 200, count: 64 * 64 * 3))
        let imageId = chat.model.config.imageTokenId
        let end = try #require(chat.tokenizer.tokenToId("<|im_end|>"))
        let word = try #require(chat.tokenizer.tokenToId("red"))
        let users = ["query: a red circle\nprompt: a red circle\np3", "query: a red circle\nprompt: a red circle\np3"]
        let s = try chat.scoreReplies(users: users, images: [image, image], replies: [[imageId, word, end], [word, end]])
        let v = s.logProbs.toArray(Double.self)
        #expect(v.allSatisfy(\.isFinite) && v[0] < 0)
        // The second row, whose reply has no image token, scores as it does alone.
        // (Batched vs alone differ by float32 rounding of other matmul shapes, ~1e-6 here; a row that
        // took the other row's image features would be off by O(0.1).)
        let alone = try chat.scoreReplies(users: [users[1]], images: [image], replies: [[word, end]])
        #expect(abs(alone.logProbs.toArray(Double.self)[0] - v[3]) < 1e-4 * Swift.max(1, abs(v[3])))
    }

    @Test func aResumedRunEqualsAnUninterruptedOneBitForBit() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("grpo-resume-\(getpid())").path
        try? FileManager.default.removeItem(atPath: base)
        var config = tinyConfig()
        config.mu = 2  // two epochs per batch, so the π_old kept from the first is on this path too
        let straight = try GRPORun(folder: base + "/straight", config: config).run()
        // k = 1 iteration, a fresh process-like trainer, then the remaining N − k.
        let first = try GRPORun(folder: base + "/split", config: config, until: 1).run()
        #expect(first.iteration == 1)
        let resumed = try GRPORun(folder: base + "/split", config: config).run()
        #expect(resumed.iteration == 3)
        let a = adapterState(straight), b = adapterState(resumed)
        #expect(a.count == b.count && !a.isEmpty)
        for (key, t) in a { #expect(t.equal(b[key]!), "\(key) differs after resume") }
        // Training moved the adapters, and the logs hold one line per iteration.
        #expect(a.contains { $0.key.hasSuffix("lora_B.weight") && $0.value.abs().max().item() > 0 })
        let rows = MetricsLog(path: base + "/split/metrics.jsonl").rows()
        #expect(rows.compactMap { $0["iteration"] } == [1, 2, 3])
        for key in ["reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "clip_ratio/low_mean",
                    "clip_ratio/high_mean", "completions/mean_length", "invalid_actions", "rollout/strict",
                    "time/sampling", "time/decode", "time/policy", "time/reward", "time/update"] {
            #expect(rows.allSatisfy { $0[key] != nil }, "metrics.jsonl lacks \(key)")
        }
        #expect(FileManager.default.fileExists(atPath: base + "/split/adapter/adapter_model.safetensors"))
        #expect(FileManager.default.fileExists(atPath: base + "/split/config.json"))
        // Another configuration does not resume this run's checkpoint.
        var other = config
        other.learningRate = 0.5
        #expect(throws: TrainingError.self) { try GRPORun(folder: base + "/split", config: other).run() }
        try? FileManager.default.removeItem(atPath: base)
    }

    @Test func nonFiniteRewardsNeverReachTheWeights() throws {
        var config = tinyConfig()
        config.maxNonfinite = 2
        let loaded = try GRPOTrainer.load(config: config)
        let trainer = try GRPOTrainer(config: config, pipeline: loaded.pipeline, chat: loaded.chat,
                                      reward: FixedReward(values: [1, .nan, 0]), records: loaded.sampler.pools
                                          .flatMap(\.records) + loaded.sampler.withheld)
        let before = adapterState(trainer).mapValues { $0.clone() }
        let m = try trainer.step()
        #expect(m.skipped && m.skipReason?.contains("fixed") == true && trainer.skipped == 1)
        for (key, t) in adapterState(trainer) { #expect(t.equal(before[key]!), "\(key) changed on a NaN reward") }
        #expect(throws: TrainingError.self) { try trainer.step() }
    }
}
