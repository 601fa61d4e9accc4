// The GRPO trainer of PromptLoop (the variant is stated at the top of GRPO.swift): rollouts of the
// frozen diffusion model with the policy acting, rewards against the query, advantages per group,
// and the clipped token-level update of the policy's LoRA adapters.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training
import VisionLanguage

// MARK: - What each iteration draws

/// One iteration's draw: the query of every row (group after group), each row's refinement steps
/// and initial-noise seed, and the seeds of the sampler and of the policy's sampling. A pure
/// function of the run's seed and the iteration, so a resumed run draws what the first would have.
public struct IterationPlan: Sendable {
    public var records: [PromptRecord]
    public var refinements: [[Int]]
    public var rowSeeds: [UInt64]
    public var noiseSeed: UInt64
    public var policySeed: UInt64
}

/// Draws queries balanced over the categories, and the layouts, for each iteration; keeps a fixed
/// slice of the training queries out of training for evaluation.
public struct GRPOSampler: Sendable {
    /// Training queries by category (the withheld slice removed), in the categories' order.
    public let pools: [(category: PromptCategory, records: [PromptRecord])]
    /// Training queries never trained on, evaluated during the run (balanced over categories).
    public let withheld: [PromptRecord]

    /// `withheldCount` queries are set aside round-robin over the categories by a fixed seed that
    /// does not depend on the run's, so every run withholds the same slice.
    public init(records: [PromptRecord], withheldCount: Int) throws {
        var byCategory: [PromptCategory: [PromptRecord]] = [:]
        for r in records { byCategory[r.category, default: []].append(r) }
        let order = PromptCategory.allCases.filter { byCategory[$0] != nil }
        guard !order.isEmpty else { throw EvaluationError.invalidArgument("no training queries") }
        var rng = SplitMix64(seed: 0x57E1_DBAC_C0DE)
        var shuffled = order.map { rng.shuffled(byCategory[$0]!) }
        var withheld: [PromptRecord] = []
        var i = 0
        while withheld.count < withheldCount {
            let c = i % order.count
            // Keep at least one training query per category.
            if shuffled[c].count > 1 { withheld.append(shuffled[c].removeLast()) }
            i += 1
            if i > withheldCount * order.count + order.count { break }
        }
        pools = zip(order, shuffled).map { ($0, $1) }
        self.withheld = withheld
    }

    /// The draw of `iteration` for `config`.
    public func plan(iteration: Int, config: GRPOConfig) -> IterationPlan {
        var rng = SplitMix64(seed: config.seed, stream: UInt64(iteration) &+ 1)
        var records: [PromptRecord] = []
        var refinements: [[Int]] = []
        var rowSeeds: [UInt64] = []
        let usable = Swift.max(1, config.steps - 1)
        for q in 0..<config.queriesPerIteration {
            let pool = pools[(iteration * config.queriesPerIteration + q) % pools.count].records
            let record = rng.pick(pool)
            let n = Swift.min(rng.int(in: config.nRRange[0]...config.nRRange[1]), usable)
            let steps = Array(rng.shuffled(Array(0..<usable)).prefix(n)).sorted()
            let groupSeed = rng.next()
            for j in 0..<config.groupSize {
                records.append(record)
                refinements.append(config.mode == .feedForward ? [] : steps)
                rowSeeds.append(config.sameNoise ? groupSeed : groupSeed &+ UInt64(j) &* 0x9E37_79B9)
            }
        }
        return IterationPlan(records: records, refinements: refinements, rowSeeds: rowSeeds, noiseSeed: rng.next(),
                             policySeed: rng.next())
    }
}

/// A policy whose sampling seed changes at every call (from a stream fixed by the iteration), so
/// the replies at two refinement steps do not reuse one random stream.
final class ReseededPolicy: RefinementPolicy {
    let inner: LlavaPolicy
    var rng: SplitMix64

    init(_ inner: LlavaPolicy, seed: UInt64) {
        self.inner = inner
        rng = SplitMix64(seed: seed)
    }

    func act(_ states: [RefinementState]) throws -> [RefinementAction] {
        inner.sampling.seed = rng.next()
        return try inner.act(states)
    }
}

// MARK: - Metrics

/// What one iteration measured, under TRL's names where TRL has them.
public struct GRPOIterationMetrics: Sendable {
    public var iteration: Int
    public var values: [String: Double]
    /// The iteration was skipped (non-finite reward, loss or gradient): nothing was updated.
    public var skipped: Bool
    /// Why it was skipped.
    public var skipReason: String?

    public init(iteration: Int, values: [String: Double], skipped: Bool, skipReason: String?) {
        self.iteration = iteration
        self.values = values
        self.skipped = skipped
        self.skipReason = skipReason
    }

    /// An iteration's metrics from its outcome: the update's statistics merged in, or the iteration
    /// counted as skipped (`skipped`, `streak`); `maxNonfinite` skips in a row throw with the cause.
    init(iteration: Int, values: [String: Double], outcome: Result<[String: Double], Error>, skipped: inout Int,
         streak: inout Int, maxNonfinite: Int) throws {
        self.init(iteration: iteration, values: values, skipped: false, skipReason: nil)
        switch outcome {
        case .success(let stats):
            self.values.merge(stats) { $1 }
            streak = 0
        case .failure(let error):
            skipped += 1
            streak += 1
            self.skipped = true
            skipReason = "\(error)"
            if streak >= maxNonfinite {
                throw TrainingError.diverged("\(streak) iterations in a row skipped for a non-finite value "
                    + "(max_nonfinite \(maxNonfinite)); the last: \(error)")
            }
        }
        self.values["skipped"] = Double(skipped)
    }
}

/// A non-finite value that stopped an update; the trainer skips the iteration.
struct NonFiniteValue: Error, CustomStringConvertible {
    var description: String
}

// MARK: - The trainer

/// GRPO on the policy's LoRA adapters (GRPO.swift states the variant).
///
/// ```swift
/// let trainer = try GRPOTrainer.load(config: config)
/// let m = try trainer.step()          // one iteration: rollouts, rewards, advantages, update
/// try trainer.save(to: "run/checkpoint.safetensors")
/// ```
public final class GRPOTrainer {
    public let config: GRPOConfig
    public let pipeline: StableDiffusionPipeline
    /// The policy with LoRA adapters (the only trainable parameters).
    public let chat: LlavaChat
    public let reward: any Reward
    public let sampler: GRPOSampler
    /// The queries of the periodic evaluation (``GRPOConfig/evalSet`` or the withheld slice).
    public let heldOut: [PromptRecord]
    public let optimizer: AdamW
    public private(set) var iteration = 0
    /// Iterations skipped for a non-finite value, in all and in a row.
    public private(set) var skipped = 0
    public private(set) var nonfiniteStreak = 0
    /// The system turn the policy was trained with (nil for the miniature's policy).
    public var systemPrompt: String?

    var decoder: CausalLM { chat.model.languageModel }

    public init(config: GRPOConfig, pipeline: StableDiffusionPipeline, chat: LlavaChat, reward: any Reward,
                records: [PromptRecord]) throws {
        try config.validate()
        guard chat.model.languageModel.lora != nil, !chat.model.languageModel.adapters.isEmpty else {
            throw EvaluationError.invalidArgument("the policy has no LoRA adapters to train")
        }
        self.config = config
        self.pipeline = pipeline
        self.chat = chat
        self.reward = reward
        sampler = try GRPOSampler(records: records, withheldCount: config.evalQueries)
        heldOut = try heldOutQueries(evalSet: config.evalSet, count: config.evalQueries, withheld: sampler.withheld)
        let store = chat.model.languageModel.store
        guard store.parameters.filter(\.trainable).allSatisfy(\.isAdapter) else {
            throw EvaluationError.invalidArgument("only LoRA parameters may be trainable")
        }
        optimizer = AdamW(store.trainableTensors, learningRate: config.learningRate, betas: (0.9, 0.999),
                          weightDecay: config.weightDecay)
    }

    /// Loads the diffusion model, the policy (with fresh adapters: LoRA B = 0, A from the run's
    /// seed), the reward and the training queries that `config` names (embedded defaults otherwise).
    public static func load(config: GRPOConfig, device: Device = .cpu) throws -> GRPOTrainer {
        try config.validate()
        guard let diffusion = config.diffusion ?? EmbeddedModels.diffusion else {
            throw EvaluationError.invalidArgument("no `diffusion` folder given and Models/shapeworld-sd is not here")
        }
        guard let policy = config.policy ?? EmbeddedModels.policy else {
            throw EvaluationError.invalidArgument("no `policy` folder given and Models/shapeworld-policy is not here")
        }
        guard let trainSet = config.trainSet ?? EmbeddedModels.locate("Data/shapeworld/v1/train.jsonl", present: {
            FileManager.default.fileExists(atPath: $0)
        }) else {
            throw EvaluationError.invalidArgument("no `train_set` given and Data/shapeworld/v1/train.jsonl is not here")
        }
        let pipeline = try StableDiffusionPipeline.load(folder: diffusion, options: LoadOptions(device: device),
                                                        scheduler: "ddim")
        let chat = try LlavaChat.load(folder: policy, device: device, lora: config.lora)
        try reinitialiseAdapters(chat.model.languageModel, seed: config.seed)
        return try GRPOTrainer(config: config, pipeline: pipeline, chat: chat, reward: try EmbeddedModels.reward(config.reward),
                               records: try PromptSets.readJSONLines(path: trainSet))
    }

    /// LoRA A drawn from `seed` (Kaiming-uniform, as PEFT), B = 0: the adapted policy starts as the base.
    static func reinitialiseAdapters(_ model: CausalLM, seed: UInt64) throws {
        let generator = try Generator(seed: seed &+ 0x10_2A)
        withNoGrad {
            for layer in model.adapters {
                let fanIn = Double(layer.loraA.size(1))
                let bound = 1 / fanIn.squareRoot()
                let u = Tensor.rand(layer.loraA.shape, generator: generator)
                layer.loraA.copy_((u * (2 * bound) - bound).to(layer.loraA.dtype))
                layer.loraB.copy_(layer.loraB.zerosLike())
            }
        }
    }

    var schedule: LRSchedule { .warmupConstant(peak: config.learningRate, warmup: config.warmup) }

    /// The learning rate of the update at `iteration` (0-based): the warm-up's rate after the update,
    /// so that the first iteration does not spend its rollouts on a zero step.
    func learningRate(at iteration: Int) -> Double { schedule.rate(at: iteration + 1) }

    // MARK: Rollouts

    /// The policy as it acts in training rollouts: sampling at the configured temperature.
    func trainingPolicy(seed: UInt64) -> ReseededPolicy {
        let agent = LlavaPolicy(chat: chat, sampling: SamplingConfig(temperature: config.temperature,
                                                                      maxNewTokens: config.maxNewTokens),
                                systemPrompt: systemPrompt)
        return ReseededPolicy(agent, seed: seed)
    }

    /// One iteration: draw, roll out, score, update. A non-finite reward, loss or gradient skips the
    /// update (counted); `max_nonfinite` skips in a row throw.
    public func step() throws -> GRPOIterationMetrics {
        let plan = sampler.plan(iteration: iteration, config: config)
        var values: [String: Double] = [:]
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9 }

        let engine = RolloutEngine(pipeline: pipeline, policy: trainingPolicy(seed: plan.policySeed), mode: config.mode)
        // The policy acts with its adapters folded in (the update scores the replies unmerged).
        let rollout = try withNoGrad {
            try decoder.withAdaptersMerged {
                try engine.run(queries: plan.records.map(\.prompt), refinements: plan.refinements,
                               options: SamplingOptions(steps: config.steps, guidance: config.guidance,
                                                        seed: plan.noiseSeed, rowSeeds: plan.rowSeeds))
            }
        }
        let rolloutSeconds = seconds(since: start)
        values["time/decode"] = rollout.decodeSeconds
        values["time/policy"] = rollout.policySeconds
        values["time/sampling"] = rolloutSeconds - rollout.decodeSeconds - rollout.policySeconds

        let rewardStart = DispatchTime.now().uptimeNanoseconds
        let inputs = zip(rollout.images, plan.records).map {
            RewardInput(image: $0, query: $1.prompt, constraints: $1.constraints)
        }
        let trajectories = rollout.trajectories
        var outcome: Result<[String: Double], Error>
        do {
            let scores = try reward.checkedScore(inputs)
            if let poison = Faults.poison("reward", at: iteration + 1) {
                // As checkedScore would report a reward that returned it.
                throw RewardError.nonFinite(reward: reward.name, index: 0, value: poison)
            }
            let rewards = zip(scores, trajectories).map { $0.value - config.invalidPenalty * Double($1.invalidActions) }
            values["time/reward"] = seconds(since: rewardStart)
            values["reward"] = mean(rewards)
            values["reward_std"] = groupStdMean(rewards, groupSize: config.groupSize)
            for key in ["strict", "soft", "strict_exact"] {
                let detail = scores.compactMap { $0.details[key] }
                if detail.count == scores.count { values["rollout/\(key)"] = mean(detail) }
            }
            let (advantages, zero) = GRPO.advantages(rewards, groupSize: config.groupSize, scale: config.scaleRewards)
            values["frac_reward_zero_std"] = Double(zero) / Double(config.queriesPerIteration)
            let updateStart = DispatchTime.now().uptimeNanoseconds
            let stats = try update(trajectories: trajectories, advantages: advantages)
            values["time/update"] = seconds(since: updateStart)
            outcome = .success(stats)
        } catch let error as RewardError {
            outcome = .failure(error)
        } catch let error as NonFiniteValue {
            outcome = .failure(error)
        }

        let actions = trajectories.flatMap(\.actions)
        values["completions/mean_length"] = mean(actions.map { Double($0.tokens.count) })
        values["completions/clipped_ratio"] = mean(actions.map { $0.truncated ? 1 : 0 })
        values["invalid_actions"] = mean(actions.map { $0.valid ? 0 : 1 })
        values["actions_per_trajectory"] = Double(actions.count) / Double(Swift.max(1, trajectories.count))
        values["lr"] = learningRate(at: iteration)
        iteration += 1
        values["images"] = Double(iteration * plan.records.count)
        var metrics = try GRPOIterationMetrics(iteration: iteration, values: values, outcome: outcome, skipped: &skipped,
                                               streak: &nonfiniteStreak, maxNonfinite: config.maxNonfinite)
        metrics.values["seconds"] = seconds(since: start)
        return metrics
    }

    // MARK: Update

    /// One scored row: an action's context, reply tokens, image, advantage and weight in the loss;
    /// `count` identical actions stand behind it (``merged(_:)``).
    struct ScoredRow {
        var user: String
        var image: RGBImage?
        var tokens: [Int]
        var advantage: Double
        var weight: Double
        var count = 1
    }

    /// What makes two rows' token losses and gradients identical: the same context, image, reply and
    /// advantage (π_ref and π_old are functions of the first three).
    struct RowKey: Hashable {
        var user: String
        var image: RGBImage?
        var tokens: [Int]
        var advantage: UInt64
    }

    /// The rows with identical ones merged into the first of them, weights added and counted: the
    /// loss Σ w·ℓ is the same sum, computed once per distinct row. (Trajectories of a group that
    /// shares its noise repeat a row when their replies agree; ≈ 10% of the rows in the runs of
    /// grpo.md point 8.)
    func merged(_ rows: [ScoredRow]) -> [ScoredRow] {
        var out: [ScoredRow] = []
        var index: [RowKey: Int] = [:]
        for row in rows {
            let key = RowKey(user: row.user, image: row.image, tokens: row.tokens, advantage: row.advantage.bitPattern)
            if let i = index[key] {
                out[i].weight += row.weight
                out[i].count += row.count
            } else {
                index[key] = out.count
                out.append(row)
            }
        }
        return out
    }

    /// Micro-batches of `rows` in order of sequence length (context and reply), so that a batch's
    /// right padding is short.
    func microBatches(_ rows: [ScoredRow]) throws -> [ArraySlice<ScoredRow>] {
        let lengths = try rows.map {
            try chat.promptIds(user: $0.user, hasImage: $0.image != nil, system: systemPrompt).ids.count + $0.tokens.count
        }
        let sorted = rows.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }.map { rows[$0] }
        return stride(from: 0, to: sorted.count, by: config.microBatch).map {
            sorted[$0..<Swift.min($0 + config.microBatch, sorted.count)]
        }
    }

    /// Rows of the batch, one per action, with the trajectory's advantage and the row's weight.
    func rows(trajectories: [Trajectory], advantages: [Double]) -> [ScoredRow] {
        var flat: [(t: Int, action: RefinementAction)] = []
        for (t, trajectory) in trajectories.enumerated() {
            for action in trajectory.actions where !action.tokens.isEmpty { flat.append((t, action)) }
        }
        let counts = flat.map { config.maskTruncatedCompletions && $0.action.truncated ? 0 : $0.action.tokens.count }
        let weights = GRPO.rowWeights(tokens: counts, trajectory: flat.map(\.t), trajectories: trajectories.count,
                                      type: config.lossType)
        return flat.indices.map { i in
            ScoredRow(user: flat[i].action.state.text, image: flat[i].action.state.image, tokens: flat[i].action.tokens,
                      advantage: advantages[flat[i].t], weight: counts[i] > 0 ? weights[i] : 0)
        }
    }

    func score(_ rows: ArraySlice<ScoredRow>, entropy: Bool, features: Tensor? = nil) throws -> CompletionScores {
        try chat.scoreReplies(users: rows.map(\.user), images: rows.map(\.image), replies: rows.map(\.tokens),
                              system: systemPrompt, temperature: config.temperature, entropy: entropy,
                              features: features)
    }

    /// μ AdamW steps on the batch; returns the loss statistics. Throws ``NonFiniteValue`` (nothing
    /// applied) when the loss or the gradient is not finite.
    func update(trajectories: [Trajectory], advantages: [Double]) throws -> [String: Double] {
        let all = rows(trajectories: trajectories, advantages: advantages)
        let distinct = merged(all)
        var stats = try update(rows: distinct)
        if !all.isEmpty { stats["update/distinct_rows"] = Double(distinct.count) / Double(all.count) }
        return stats
    }

    /// μ AdamW steps on `rows`, each standing for `count` actions in the statistics.
    func update(rows: [ScoredRow]) throws -> [String: Double] {
        guard !rows.isEmpty else { return [:] }
        let chunks = try microBatches(rows)
        // The frozen vision tower's features, once per chunk for every pass below.
        let features = try chunks.map { chunk in try chat.imageFeatures(chunk.compactMap(\.image)) }
        // π_ref (adapters off): no gradients, once per batch.
        let refs: [Tensor?] = try chunks.indices.map { c in
            config.beta == 0 ? nil : try withNoGrad {
                try decoder.withAdaptersDisabled { try score(chunks[c], entropy: false, features: features[c]).logProbs }
            }
        }
        // π_old: the first epoch's own log-probs, detached (the weights have not moved yet), kept
        // for epochs 2…μ — the same numbers as a separate no-gradient pass, one pass fewer.
        var olds = [Tensor?](repeating: nil, count: chunks.count)
        var stats: [String: Double] = [:]
        for epoch in 0..<config.mu {
            optimizer.learningRate = learningRate(at: iteration)
            optimizer.zeroGrad()
            var loss = 0.0
            var tokens = 0.0, klSum = 0.0, entropySum = 0.0, low = 0.0, high = 0.0
            for (c, chunk) in chunks.enumerated() {
                let s = try score(chunk, entropy: epoch == 0, features: features[c])
                if epoch == 0 && config.mu > 1 { olds[c] = s.logProbs.detached() }
                let advantage = Tensor(chunk.map { Float($0.advantage) }, shape: [chunk.count])
                let weight = Tensor(chunk.map { Float($0.weight) }, shape: [chunk.count, 1])
                let included = s.mask * Tensor(chunk.map { Float($0.weight > 0 ? 1 : 0) }, shape: [chunk.count, 1])
                let count = Tensor(chunk.map { Float($0.count) }, shape: [chunk.count, 1])
                let (perToken, kl, ratio) = GRPO.tokenLoss(
                    logp: s.logProbs, old: olds[c] ?? s.logProbs.detached(), ref: refs[c], advantages: advantage,
                    beta: config.beta, epsilonLow: config.epsilonLow, epsilonHigh: config.epsilonHigh)
                let chunkLoss = (perToken * included * weight).sum()
                chunkLoss.backward()
                loss += chunkLoss.item()
                withNoGrad {
                    // Statistics per action: a merged row counts `count` times.
                    let counted = included * count
                    tokens += counted.sum().item()
                    if let kl { klSum += (kl * counted).sum().item() }
                    if let h = s.entropy { entropySum += (h * s.mask * count).sum().item() }
                    let a = advantage.unsqueeze(1)
                    low += ((ratio .< (1 - config.epsilonLow)).logicalAnd(a .< 0).to(.float32) * counted).sum().item()
                    high += ((ratio .> (1 + config.epsilonHigh)).logicalAnd(a .> 0).to(.float32) * counted).sum().item()
                }
            }
            let outcome = guardedAccumulatedStep(loss: loss, optimizer: optimizer, maxNorm: config.maxGradNorm,
                                                 step: iteration + 1)
            if let reason = outcome.skipReason {
                throw NonFiniteValue(description: "GRPO update: " + reason.replacingOccurrences(of: "step", with: "iteration"))
            }
            let norm = outcome.gradNorm
            if epoch == 0 {
                let n = Swift.max(tokens, 1)
                let all = Swift.max(rows.reduce(0.0) { $0 + Double($1.tokens.count * $1.count) }, 1)
                stats = ["loss": loss, "grad_norm": norm, "kl": klSum / n, "entropy": entropySum / all,
                         "clip_ratio/low_mean": low / n, "clip_ratio/high_mean": high / n,
                         "clip_ratio/region_mean": (low + high) / n]
            }
        }
        return stats
    }

    // MARK: Evaluation of the withheld queries

    /// The withheld training queries under the run's mode, greedy policy, `eval_refinements` equal
    /// intervals, fixed noise: strict / soft / strict-exact means (with `adapters` false, the policy
    /// without its adapters).
    public func evaluate(adapters: Bool, plain: Bool = false) throws -> [String: Double] {
        let records = heldOut
        guard !records.isEmpty else { return [:] }
        let agent = LlavaPolicy(chat: chat, sampling: SamplingConfig(greedy: true, maxNewTokens: config.maxNewTokens),
                                systemPrompt: systemPrompt)
        let mode: RolloutMode = plain ? .none : config.mode
        let engine = RolloutEngine(pipeline: pipeline, policy: plain ? nil : agent, mode: mode)
        let refinements = RefinementSteps.equalIntervals(count: config.evalRefinements, steps: config.steps)
        let options = SamplingOptions(steps: config.steps, guidance: config.guidance, seed: 0,
                                      rowSeeds: records.indices.map { UInt64(1000 + $0) })
        let previous = decoder.adaptersEnabled
        decoder.adaptersEnabled = adapters
        defer { decoder.adaptersEnabled = previous }
        let rollout = try withNoGrad {
            try engine.run(queries: records.map(\.prompt), refinements: [refinements], options: options)
        }
        var out = try heldOutScores(images: rollout.images, records: records, reward: reward)
        out["invalid_actions"] = mean(rollout.trajectories.flatMap(\.actions).map { $0.valid ? 0 : 1 })
        return out
    }

    // MARK: Checkpoints

    public var signature: String { "grpo " + config.signature }

    /// Writes adapters, optimizer moments, the iteration and the skip counters, atomically. The
    /// random state is the run's seed and the iteration: every draw is a pure function of both.
    public func save(to path: String) throws {
        try TrainingCheckpoint.save(
            to: path, stores: ["policy": decoder.store], optimizer: optimizer, generators: [:], step: iteration,
            metadata: ["run": signature, "skipped": String(skipped), "nonfinite_streak": String(nonfiniteStreak),
                       "seed": String(config.seed)],
            selection: .adapters)
    }

    /// Restores a checkpoint written by ``save(to:)`` with the same settings.
    public func resume(from path: String) throws {
        _ = try TrainingCheckpoint.resumeCheck(path: path, signature: signature)
        let (step, metadata) = try TrainingCheckpoint.load(from: path, stores: ["policy": decoder.store],
                                                           optimizer: optimizer, generators: [:], selection: .adapters)
        iteration = step
        skipped = Int(metadata["skipped"] ?? "") ?? 0
        nonfiniteStreak = Int(metadata["nonfinite_streak"] ?? "") ?? 0
    }

    /// The adapters in PEFT's format.
    public func saveAdapter(to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try decoder.saveAdapter(to: folder)
    }
}

func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }

/// TRL's `reward_std`: the mean over groups of each group's unbiased std.
func groupStdMean(_ rewards: [Double], groupSize: Int) -> Double {
    let groups = stride(from: 0, to: rewards.count, by: groupSize).map {
        GRPO.unbiasedStd(Array(rewards[$0..<Swift.min($0 + groupSize, rewards.count)]))
    }
    return mean(groups)
}

extension GRPOTrainer: IterativeTrainer {
    public var runLength: (iterations: Int, saveEvery: Int, evalEvery: Int) {
        (config.iterations, config.saveEvery, config.evalEvery)
    }
    public var imagesPerIteration: Int { config.queriesPerIteration * config.groupSize }
    public var curveTitle: String { "GRPO (\(config.mode.rawValue), \(config.reward))" }
    public func configJSON() throws -> Data { try config.json() }
    public func evaluate() throws -> [String: Double] { try evaluate(adapters: true, plain: false) }
    public func evaluatePlain() throws -> [String: Double]? { try evaluate(adapters: true, plain: true) }
}
