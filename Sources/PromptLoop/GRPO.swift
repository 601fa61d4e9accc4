// GRPO for PromptLoop: the policy's LoRA adapters trained against a black-box reward; the diffusion
// model and the reward are frozen and never differentiated.
//
// The variant implemented, exactly:
//
// - A *group* is G trajectories of one query. A trajectory is one sampling run of the frozen
//   diffusion model in which the policy acts N_R times (closed loop: seeing x̂₀; open loop: writing all
//   prompts before sampling; feed-forward: one rewrite, N_R = 1). N_R is uniform in `n_r_range` and
//   the steps R uniform without replacement from 0…T−2, drawn once per group and shared by its
//   trajectories (the paper samples R per trajectory; sharing it keeps the group's reward spread a
//   property of the policy, not of the layout). Initial noise differs within a group by default
//   (Flow-GRPO); `same_noise` gives every trajectory of a group the same noise (DanceGRPO).
// - Reward r(x₀, q) against the user's query only. Advantage A = (r − mean_g) / (std_g + 1e-4) with
//   the unbiased std (TRL); `scale_rewards` group | batch | none as TRL. A group whose rewards are
//   all equal gets A = 0 exactly and is counted (`frac_reward_zero_std`).
// - The trajectory's advantage applies to every token of every action of the trajectory — the
//   paper's terminal reward has no per-step credit. Invalid actions (empty or cut replies) are
//   trained on like the others; `invalid_penalty` subtracts a per-invalid-action penalty from the
//   reward, and `mask_truncated_completions` drops the tokens of replies cut at `max_new_tokens`.
// - Per token: ρ = exp(log π_θ − log π_old), surrogate min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A),
//   loss = −surrogate + β·KL with the k3 estimator KL = exp(log π_ref − log π_θ) − (log π_ref −
//   log π_θ) − 1 (Schulman; TRL). π_ref is the same model with its adapters off — no second copy.
//   π_old is π_θ as it was before the iteration's first update: in the first of the μ epochs it is
//   π_θ detached (ρ ≡ 1, as TRL at μ = 1), and those detached log-probs are kept for epochs 2…μ
//   (TRL scores them in a separate no-gradient pass; the numbers are the same, the pass is saved).
// - `loss_type` grpo: each trajectory's token losses averaged over its tokens (all its actions
//   together, as TRL averages a completion), then averaged over trajectories; dapo: summed over every
//   token of the batch and divided by their number.
// - One AdamW step per inner epoch on the whole batch (gradients accumulated over micro-batches of
//   actions), global-norm clipping, only LoRA parameters trainable. Identical actions (context,
//   x̂₀, reply and advantage) are scored once with their weights added, and micro-batches are
//   formed in order of length: the same sums in another order. Rollouts run the policy with its
//   adapters folded into the base weights (restored bit for bit after); the update scores unfolded.
// - A non-finite reward, loss or gradient never reaches the weights: the iteration is skipped and
//   counted (`skipped`), and `max_nonfinite` skips in a row stop the run with the error that caused
//   the last one.
//
// Where it departs from TRL's GRPOTrainer: a "completion" is a trajectory of several replies, each
// scored in its own context (state and image); no vLLM / reference-model syncing; the reference is
// the adapter-off model; rewards come from images produced by a second model.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training
import VisionLanguage

// MARK: - Configuration

/// Every knob of a GRPO run, one documented field each (JSON keys as in `run.json`).
public struct GRPOConfig: Codable, Sendable, Equatable {
    public enum LossType: String, Codable, Sendable, CaseIterable { case grpo, dapo }
    public enum ScaleRewards: String, Codable, Sendable, CaseIterable { case group, batch, none }

    /// Diffusers pipeline folder (nil: the embedded miniature).
    public var diffusion: String? = nil
    /// The policy: a transformers LLaVA folder (nil: the embedded pretrained policy).
    public var policy: String? = nil
    /// Training queries, a ShapeWorld prompt file (nil: `Data/shapeworld/v1/train.jsonl`).
    public var trainSet: String? = nil

    /// closed | open | feed-forward (which rollout the policy is trained in).
    public var mode: RolloutMode = .closed
    /// N_R is drawn uniformly from this closed range per group (feed-forward: always one action).
    public var nRRange: [Int] = [1, 8]
    /// Denoising steps T (the evaluation protocol's 20) and guidance (5).
    public var steps = 20
    public var guidance = 5.0
    /// Every trajectory of a group starts from the same noise (DanceGRPO) instead of its own (Flow-GRPO).
    public var sameNoise = false

    /// Trajectories per query, G (TRL `num_generations`).
    public var groupSize = 8
    /// Queries per iteration, drawn balanced over the six categories (train.jsonl is 80% position
    /// and colour attribution).
    public var queriesPerIteration = 8
    /// Iterations of the run (one generation batch and μ updates each).
    public var iterations = 150
    /// Inner epochs μ over each batch (TRL `num_iterations`; 1: on-policy, ρ ≡ 1).
    public var mu = 1
    /// KL coefficient β (TRL's former default 0.04; DeepSeekMath used 0.04).
    public var beta = 0.04
    /// Clip range: ρ ∈ [1 − ε_low, 1 + ε_high] (TRL `epsilon`, `epsilon_high`; DAPO raises the high side).
    public var epsilonLow = 0.2
    public var epsilonHigh = 0.2
    public var lossType: LossType = .grpo
    public var scaleRewards: ScaleRewards = .group
    /// Subtracted from a trajectory's reward per invalid action (empty or cut reply).
    public var invalidPenalty = 0.0
    /// Leave the tokens of replies cut at `max_new_tokens` out of the loss (DAPO's overlong filtering).
    public var maskTruncatedCompletions = false
    /// Reward specification (`shapeeval_soft`, `0.5*shapeeval_soft+0.5*shapeeval_strict`, …). Soft is
    /// dense: at the plain model's ≈ 6% strict pass rate on hard categories most groups of 8 would
    /// have no variance under strict.
    public var reward = "shapeeval_soft"
    /// Sampling temperature of the policy during training rollouts (log-probs are taken under it).
    public var temperature = 1.0
    /// Tokens per reply at most.
    public var maxNewTokens = 32

    /// AdamW learning rate, linear warm-up iterations, then constant.
    public var learningRate = 1e-3
    public var warmup = 5
    public var weightDecay = 0.0
    public var maxGradNorm = 1.0
    /// LoRA on every decoder projection.
    public var loraRank = 8
    public var loraAlpha = 16.0
    public var loraTargets: [String] = LoRASettings.projections.sorted()
    /// Actions per forward/backward pass (gradients accumulate; the update is one step).
    public var microBatch = 96

    /// Seed of everything random in the run (queries, R, noise, the policy's sampling, LoRA init).
    public var seed: UInt64 = 0
    /// A checkpoint every this many iterations (and at the end).
    public var saveEvery = 5
    /// Evaluate the withheld training queries every this many iterations (0: never), and at 0 and the end.
    public var evalEvery = 10
    /// Training queries withheld from training and evaluated (a fixed slice, balanced over categories;
    /// never eval or novel prompts).
    public var evalQueries = 48
    /// Refinements in the withheld evaluation (equal intervals, greedy policy).
    public var evalRefinements = 5
    /// A prompt file to evaluate instead of the withheld training slice (`eval_queries` of its prompts,
    /// balanced over categories): the reward-hacking study's held-out prompts, whose samples the proxy
    /// never saw. nil: the withheld training queries.
    public var evalSet: String?
    /// Skipped iterations in a row (non-finite reward, loss or gradient) before the run stops.
    public var maxNonfinite = 3

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case diffusion, policy, trainSet = "train_set", mode, nRRange = "n_r_range", steps, guidance
        case sameNoise = "same_noise", groupSize = "group_size", queriesPerIteration = "queries_per_iteration"
        case iterations, mu, beta, epsilonLow = "epsilon", epsilonHigh = "epsilon_high", lossType = "loss_type"
        case scaleRewards = "scale_rewards", invalidPenalty = "invalid_penalty"
        case maskTruncatedCompletions = "mask_truncated_completions", reward, temperature
        case maxNewTokens = "max_new_tokens", learningRate = "learning_rate", warmup, weightDecay = "weight_decay"
        case maxGradNorm = "max_grad_norm", loraRank = "lora_rank", loraAlpha = "lora_alpha"
        case loraTargets = "lora_targets", microBatch = "micro_batch", seed, saveEvery = "save_every"
        case evalEvery = "eval_every", evalQueries = "eval_queries", evalRefinements = "eval_refinements", evalSet = "eval_set"
        case maxNonfinite = "max_nonfinite"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GRPOConfig.init()
        func v<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        diffusion = try c.decodeIfPresent(String.self, forKey: .diffusion)
        policy = try c.decodeIfPresent(String.self, forKey: .policy)
        trainSet = try c.decodeIfPresent(String.self, forKey: .trainSet)
        mode = try v(.mode, d.mode)
        nRRange = try v(.nRRange, d.nRRange)
        steps = try v(.steps, d.steps)
        guidance = try v(.guidance, d.guidance)
        sameNoise = try v(.sameNoise, d.sameNoise)
        groupSize = try v(.groupSize, d.groupSize)
        queriesPerIteration = try v(.queriesPerIteration, d.queriesPerIteration)
        iterations = try v(.iterations, d.iterations)
        mu = try v(.mu, d.mu)
        beta = try v(.beta, d.beta)
        epsilonLow = try v(.epsilonLow, d.epsilonLow)
        epsilonHigh = try v(.epsilonHigh, d.epsilonHigh)
        lossType = try v(.lossType, d.lossType)
        scaleRewards = try v(.scaleRewards, d.scaleRewards)
        invalidPenalty = try v(.invalidPenalty, d.invalidPenalty)
        maskTruncatedCompletions = try v(.maskTruncatedCompletions, d.maskTruncatedCompletions)
        reward = try v(.reward, d.reward)
        temperature = try v(.temperature, d.temperature)
        maxNewTokens = try v(.maxNewTokens, d.maxNewTokens)
        learningRate = try v(.learningRate, d.learningRate)
        warmup = try v(.warmup, d.warmup)
        weightDecay = try v(.weightDecay, d.weightDecay)
        maxGradNorm = try v(.maxGradNorm, d.maxGradNorm)
        loraRank = try v(.loraRank, d.loraRank)
        loraAlpha = try v(.loraAlpha, d.loraAlpha)
        loraTargets = try v(.loraTargets, d.loraTargets)
        microBatch = try v(.microBatch, d.microBatch)
        seed = try v(.seed, d.seed)
        saveEvery = try v(.saveEvery, d.saveEvery)
        evalEvery = try v(.evalEvery, d.evalEvery)
        evalQueries = try v(.evalQueries, d.evalQueries)
        evalRefinements = try v(.evalRefinements, d.evalRefinements)
        evalSet = try c.decodeIfPresent(String.self, forKey: .evalSet)
        maxNonfinite = try v(.maxNonfinite, d.maxNonfinite)
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
    }

    /// Reads a `run.json`; unknown keys and wrong types are errors naming the file and key.
    public static func load(path: String) throws -> GRPOConfig { try decodeRunFile(path: path) }

    /// Reads a `run.json` and checks its values on their own; every error names the file.
    public static func loadValidated(path: String) throws -> GRPOConfig {
        let c = try load(path: path)
        do { try c.validate() } catch { throw EvaluationError.badFile(path: path, line: nil, message: "\(error)") }
        return c
    }

    /// The resolved configuration as JSON (sorted keys), for the run folder.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Rejects settings no run can use, naming the key.
    public func validate() throws {
        func bad(_ message: String) -> EvaluationError { .invalidArgument("run configuration: " + message) }
        guard nRRange.count == 2, nRRange[0] >= 1, nRRange[0] <= nRRange[1], nRRange[1] <= 1000 else {
            throw bad("`n_r_range` must be [low, high] with 1 ≤ low ≤ high, got \(nRRange)")
        }
        guard (2...1000).contains(steps) else { throw bad("`steps` must be in 2…1000, got \(steps)") }
        guard guidance.isFinite else { throw bad("`guidance` must be finite") }
        guard (2...4096).contains(groupSize) else { throw bad("`group_size` must be in 2…4096, got \(groupSize)") }
        guard (1...4096).contains(queriesPerIteration) else {
            throw bad("`queries_per_iteration` must be in 1…4096, got \(queriesPerIteration)")
        }
        guard (1...1_000_000).contains(iterations) else { throw bad("`iterations` must be in 1…1000000, got \(iterations)") }
        guard (1...100).contains(mu) else { throw bad("`mu` must be in 1…100, got \(mu)") }
        guard beta.isFinite, beta >= 0 else { throw bad("`beta` must be ≥ 0, got \(beta)") }
        guard epsilonLow.isFinite, epsilonHigh.isFinite, epsilonLow > 0, epsilonLow < 1, epsilonHigh > 0 else {
            throw bad("`epsilon` must be in (0, 1) and `epsilon_high` positive")
        }
        guard invalidPenalty.isFinite, invalidPenalty >= 0 else { throw bad("`invalid_penalty` must be ≥ 0") }
        guard temperature.isFinite, temperature > 0 else { throw bad("`temperature` must be positive") }
        guard (1...4096).contains(maxNewTokens) else { throw bad("`max_new_tokens` must be in 1…4096") }
        guard learningRate.isFinite, learningRate > 0, learningRate < 1 else {
            throw bad("`learning_rate` must be in (0, 1), got \(learningRate)")
        }
        guard warmup >= 0, weightDecay.isFinite, weightDecay >= 0, maxGradNorm.isFinite, maxGradNorm > 0 else {
            throw bad("`warmup` and `weight_decay` must be ≥ 0 and `max_grad_norm` positive")
        }
        guard (1...1024).contains(loraRank), loraAlpha.isFinite, loraAlpha > 0 else {
            throw bad("`lora_rank` must be in 1…1024 and `lora_alpha` positive")
        }
        guard !loraTargets.isEmpty, Set(loraTargets).isSubset(of: LoRASettings.projections) else {
            throw bad("`lora_targets` must be among \(LoRASettings.projections.sorted()), got \(loraTargets)")
        }
        guard microBatch > 0 else { throw bad("`micro_batch` must be positive") }
        guard saveEvery > 0 else { throw bad("`save_every` must be positive") }
        guard evalEvery >= 0, evalQueries >= 0, evalRefinements >= 0 else {
            throw bad("`eval_every`, `eval_queries` and `eval_refinements` must not be negative")
        }
        guard maxNonfinite > 0 else { throw bad("`max_nonfinite` must be positive") }
        guard mode != .none else { throw bad("`mode` must be closed, open or feed-forward (none has no policy)") }
        _ = try RewardSpec.terms(reward)
    }

    var lora: LoRASettings { LoRASettings(rank: loraRank, alpha: loraAlpha, targets: Set(loraTargets)) }

    /// What a checkpoint is tagged with: only the settings that change the trajectory of training
    /// (not `iterations`, so a run can be extended; not the eval or save cadence).
    var signature: String {
        var c = self
        (c.iterations, c.saveEvery, c.evalEvery, c.maxNonfinite) = (0, 0, 0, 0)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(c), as: UTF8.self)) ?? ""
    }
}

/// Reads a run file (`run.json`) as `T`; unreadable files, wrong types and unknown keys are errors
/// naming the file and the key.
func decodeRunFile<T: Decodable>(path: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw EvaluationError.badFile(path: path, line: nil, message: "cannot read the run configuration")
    }
    func describe(_ context: DecodingError.Context) -> String {
        let key = context.codingPath.map(\.stringValue).joined(separator: ".")
        return key.isEmpty ? context.debugDescription : "`\(key)`: \(context.debugDescription)"
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let DecodingError.dataCorrupted(context) {
        throw EvaluationError.badFile(path: path, line: nil, message: describe(context))
    } catch let DecodingError.typeMismatch(_, context) {
        throw EvaluationError.badFile(path: path, line: nil, message: "wrong type: " + describe(context))
    } catch let DecodingError.valueNotFound(_, context) {
        throw EvaluationError.badFile(path: path, line: nil, message: "missing value: " + describe(context))
    } catch {
        throw EvaluationError.badFile(path: path, line: nil, message: "not a run configuration: \(error)")
    }
}

/// Throws for the first key (sorted) of the decoder's object that is not in `known`.
func rejectUnknownKeys(_ decoder: Decoder, known: [String]) throws {
    let known = Set(known)
    let extra = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter { !known.contains($0) }
    if let key = extra.sorted().first {
        throw DecodingError.dataCorrupted(.init(codingPath: [AnyKey(stringValue: key)],
                                                debugDescription: "unknown key `\(key)`"))
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

// MARK: - The math

/// GRPO's arithmetic, separate from models so that tests can check it on fixed numbers.
public enum GRPO {
    /// Advantages of rewards laid out group after group (`groupSize` each) and the number of
    /// groups whose rewards are all equal (their advantages are exactly 0).
    public static func advantages(_ rewards: [Double], groupSize: Int, scale: GRPOConfig.ScaleRewards)
        -> (advantages: [Double], zeroStdGroups: Int)
    {
        precondition(groupSize > 0 && rewards.count % groupSize == 0, "rewards must fill whole groups")
        let groups = rewards.count / groupSize
        var out = [Double](repeating: 0, count: rewards.count)
        var zero = 0
        let batchStd = unbiasedStd(rewards)
        for g in 0..<groups {
            let slice = Array(rewards[(g * groupSize)..<((g + 1) * groupSize)])
            let mean = slice.reduce(0, +) / Double(groupSize)
            let std = unbiasedStd(slice)
            if slice.allSatisfy({ $0 == slice[0] }) {
                zero += 1
                continue
            }
            for (j, r) in slice.enumerated() {
                let centred = r - mean
                switch scale {
                case .group: out[g * groupSize + j] = centred / (std + 1e-4)
                case .batch: out[g * groupSize + j] = centred / (batchStd + 1e-4)
                case .none: out[g * groupSize + j] = centred
                }
            }
        }
        return (out, zero)
    }

    /// `torch.std` (Bessel-corrected); 0 for fewer than two values.
    public static func unbiasedStd(_ x: [Double]) -> Double {
        guard x.count > 1 else { return 0 }
        let mean = x.reduce(0, +) / Double(x.count)
        return (x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.count - 1)).squareRoot()
    }

    /// The per-token loss `[N, C]`, `−min(ρA, clip(ρ)A) + β·KL₃`, and its parts, for log-probs
    /// `logp` (with gradients), `old` and `ref` (no gradients; `ref` nil when β = 0) and one
    /// advantage per row `[N]`.
    public static func tokenLoss(logp: Tensor, old: Tensor, ref: Tensor?, advantages: Tensor, beta: Double,
                                 epsilonLow: Double, epsilonHigh: Double)
        -> (loss: Tensor, kl: Tensor?, ratio: Tensor)
    {
        let a = advantages.unsqueeze(1)
        let ratio = (logp - old).exp()
        let clipped = ratio.clamp(min: 1 - epsilonLow, max: 1 + epsilonHigh)
        var loss = -(ratio * a).minimum(clipped * a)
        var kl: Tensor?
        if let ref, beta != 0 {
            let d = ref - logp
            let k3 = d.exp() - d - 1
            loss = loss + k3 * beta
            kl = k3
        }
        return (loss, kl, ratio)
    }

    /// Per-row token weights that turn Σ weight·mask·loss into the batch loss: grpo — each
    /// trajectory's tokens averaged, then trajectories averaged (1 / (trajectories · its tokens));
    /// dapo — every token of the batch alike (1 / all tokens). `tokens[i]` is row i's loss-token
    /// count, `trajectory[i]` its trajectory.
    public static func rowWeights(tokens: [Int], trajectory: [Int], trajectories: Int, type: GRPOConfig.LossType)
        -> [Double]
    {
        switch type {
        case .grpo:
            var perTrajectory = [Int](repeating: 0, count: trajectories)
            for (n, t) in zip(tokens, trajectory) { perTrajectory[t] += n }
            return trajectory.map { t in
                perTrajectory[t] > 0 ? 1 / (Double(trajectories) * Double(perTrajectory[t])) : 0
            }
        case .dapo:
            let total = tokens.reduce(0, +)
            return tokens.map { _ in total > 0 ? 1 / Double(total) : 0 }
        }
    }
}
