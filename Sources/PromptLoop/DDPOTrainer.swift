// DDPO, the weight-level baseline (Black et al. 2023, "Training Diffusion Models with Reinforcement
// Learning"), with kvablack/ddpo-pytorch's semantics, on a LoRA of the miniature UNet's attention
// projections. The variant, exactly:
//
// - Sampling: DDIM with η (default 1) through the pipeline's own loop with a recording scheduler, the
//   protocol's 20 steps and guidance 5; each step's x_t, x_{t−1} and log N(x_{t−1}; μ_θ, σ_t²) (mean
//   over the latent's elements, as ddpo-pytorch) are kept. Queries: `queries_per_iteration` training
//   queries balanced over the six categories (as GRPO draws them), `images_per_query` images each,
//   every image its own initial noise.
// - Advantages: a per-prompt stat tracker (`stat_buffer` last rewards per prompt, population std
//   + 1e-6); a prompt with fewer than `stat_min_count` rewards is normalised by the batch's mean and
//   std (ddpo-pytorch's fallback), then clipped to ±`adv_clip_max`.
// - Update: `inner_epochs` passes over the batch; in each the rows are shuffled and a
//   `timestep_fraction` of the denoising steps is trained. ddpo-pytorch draws a timestep permutation
//   per image; here one permutation per pass serves every image, so one UNet call covers a micro-batch
//   (a departure: the same steps for every image of a pass). Per trained step the clipped surrogate
//   max(−A·ρ, −A·clamp(ρ, 1 ± `clip_range`)) over the micro-batch; gradients accumulate over every
//   step and micro-batch of a train batch (the loss averaged over them) and AdamW takes one step per
//   `train_batch_size` images, as ddpo-pytorch accumulates over the timesteps and its
//   gradient-accumulation batches: the first step of a pass has ρ = 1, later ones do not.
//   Classifier-free guidance is recomputed with gradients in the update, as ddpo-pytorch does.
// - Only the LoRA (rank `lora_rank`, α `lora_alpha`, on `to_q`, `to_k`, `to_v`, `to_out.0`) trains;
//   it starts with B = 0, so iteration 1 samples the base model. Saved in diffusers' format.
// - Logged: ddpo-pytorch's `approx_kl` (½·mean (log ρ)²) and `clipfrac`, and the divergence from the
//   start on DDPO's own scale: the per-step KL of the η-kernel between the adapted and the base UNet,
//   ‖μ_θ − μ_base‖² / (2σ_t²) averaged over the latent, on the first trained step of the pass.
// - A non-finite reward, loss or gradient skips the iteration (counted); `max_nonfinite` in a row stop.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training

/// The settings of a DDPO run (`promptloop train-weights ddpo --config run.json`).
public struct DDPOConfig: WeightRunConfiguration {
    /// Diffusion model folder (default: the embedded miniature) and training queries (train.jsonl).
    public var diffusion: String?
    public var trainSet: String?
    public var steps = 20
    public var guidance = 5.0
    /// η of the sampling DDIM (> 0: a log-density needs noise).
    public var eta = 1.0
    public var queriesPerIteration = 8
    public var imagesPerQuery = 4
    public var iterations = 100
    public var innerEpochs = 1
    /// PPO clip range of the ratio (ddpo-pytorch: 1e-4).
    public var clipRange = 1e-4
    /// Advantages are clipped to ±this (ddpo-pytorch: 5).
    public var advClipMax = 5.0
    /// Share of the denoising steps trained in each pass (ddpo-pytorch: 1).
    public var timestepFraction = 1.0
    /// Per-prompt stat tracking: rewards kept per prompt, and the fewest before a prompt's own stats
    /// replace the batch's (ddpo-pytorch: 16 and 16).
    public var statBuffer = 16
    public var statMinCount = 16
    public var reward = "shapeeval_soft"
    /// AdamW (ddpo-pytorch: 3e-4, weight decay 1e-4), gradient norm ≤ `max_grad_norm`.
    public var learningRate = 3e-4
    public var weightDecay = 1e-4
    public var maxGradNorm = 1.0
    /// UNet LoRA (ddpo-pytorch: rank 4; diffusers' alpha default = rank).
    public var loraRank = 4
    public var loraAlpha = 4.0
    /// Images per optimiser step: each pass over the batch takes batch / `train_batch_size` steps
    /// (ddpo-pytorch's train batch × gradient accumulation; its ratio ρ leaves 1 after the first).
    public var trainBatchSize = 16
    /// Images per UNet call in the update (gradients accumulate; the sampling takes the whole batch).
    public var microBatch = 16
    public var seed: UInt64 = 0
    public var saveEvery = 5
    public var evalEvery = 10
    /// Training queries withheld and evaluated under the protocol (DDIM η = 0) every `eval_every`.
    public var evalQueries = 48
    /// A prompt file to evaluate instead of the withheld training slice (`eval_queries` of its prompts,
    /// balanced over categories): the reward-hacking study's held-out prompts, whose samples the proxy
    /// never saw. nil: the withheld training queries.
    public var evalSet: String?
    public var maxNonfinite = 3

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case diffusion, trainSet = "train_set", steps, guidance, eta
        case queriesPerIteration = "queries_per_iteration", imagesPerQuery = "images_per_query", iterations
        case innerEpochs = "inner_epochs", clipRange = "clip_range", advClipMax = "adv_clip_max"
        case timestepFraction = "timestep_fraction", statBuffer = "stat_buffer", statMinCount = "stat_min_count"
        case reward, learningRate = "learning_rate", weightDecay = "weight_decay", maxGradNorm = "max_grad_norm"
        case loraRank = "lora_rank", loraAlpha = "lora_alpha", trainBatchSize = "train_batch_size"
        case microBatch = "micro_batch", seed
        case saveEvery = "save_every", evalEvery = "eval_every", evalQueries = "eval_queries", evalSet = "eval_set"
        case maxNonfinite = "max_nonfinite"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DDPOConfig()
        func v<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        diffusion = try c.decodeIfPresent(String.self, forKey: .diffusion)
        trainSet = try c.decodeIfPresent(String.self, forKey: .trainSet)
        steps = try v(.steps, d.steps)
        guidance = try v(.guidance, d.guidance)
        eta = try v(.eta, d.eta)
        queriesPerIteration = try v(.queriesPerIteration, d.queriesPerIteration)
        imagesPerQuery = try v(.imagesPerQuery, d.imagesPerQuery)
        iterations = try v(.iterations, d.iterations)
        innerEpochs = try v(.innerEpochs, d.innerEpochs)
        clipRange = try v(.clipRange, d.clipRange)
        advClipMax = try v(.advClipMax, d.advClipMax)
        timestepFraction = try v(.timestepFraction, d.timestepFraction)
        statBuffer = try v(.statBuffer, d.statBuffer)
        statMinCount = try v(.statMinCount, d.statMinCount)
        reward = try v(.reward, d.reward)
        learningRate = try v(.learningRate, d.learningRate)
        weightDecay = try v(.weightDecay, d.weightDecay)
        maxGradNorm = try v(.maxGradNorm, d.maxGradNorm)
        loraRank = try v(.loraRank, d.loraRank)
        loraAlpha = try v(.loraAlpha, d.loraAlpha)
        trainBatchSize = try v(.trainBatchSize, d.trainBatchSize)
        microBatch = try v(.microBatch, d.microBatch)
        seed = try v(.seed, d.seed)
        saveEvery = try v(.saveEvery, d.saveEvery)
        evalEvery = try v(.evalEvery, d.evalEvery)
        evalQueries = try v(.evalQueries, d.evalQueries)
        evalSet = try c.decodeIfPresent(String.self, forKey: .evalSet)
        maxNonfinite = try v(.maxNonfinite, d.maxNonfinite)
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
    }

    /// Trained denoising steps per pass.
    public var trainedSteps: Int { Swift.max(1, Int((Double(steps) * timestepFraction).rounded(.down))) }

    public func validate() throws {
        try requireSetting((1...1000).contains(steps), "steps", "must be in 1…1000, got \(steps)")
        try requireSetting(guidance.isFinite && guidance >= 0 && guidance <= 100, "guidance", "must be in 0…100, got \(guidance)")
        try requireSetting(eta.isFinite && eta > 0 && eta <= 10, "eta", "must be in (0, 10] (a log-density needs noise), got \(eta)")
        try requireSetting((1...4096).contains(queriesPerIteration), "queries_per_iteration", "must be in 1…4096")
        try requireSetting((1...4096).contains(imagesPerQuery), "images_per_query", "must be in 1…4096")
        try requireSetting(queriesPerIteration * imagesPerQuery <= 4096, "images_per_query",
                         "× queries_per_iteration must be at most 4096")
        try requireSetting((1...100).contains(innerEpochs), "inner_epochs", "must be in 1…100")
        try requireSetting(clipRange.isFinite && clipRange > 0 && clipRange < 1, "clip_range", "must be in (0, 1)")
        try requireSetting(advClipMax.isFinite && advClipMax > 0, "adv_clip_max", "must be positive")
        try requireSetting(timestepFraction.isFinite && timestepFraction > 0 && timestepFraction <= 1, "timestep_fraction",
                         "must be in (0, 1]")
        try requireSetting((1...1_000_000).contains(statBuffer), "stat_buffer", "must be in 1…1,000,000")
        try requireSetting(statMinCount >= 0 && statMinCount <= statBuffer, "stat_min_count", "must be in 0…stat_buffer")
        try requireSetting((1...4096).contains(trainBatchSize), "train_batch_size", "must be in 1…4096")
        try requireSetting((1...4096).contains(microBatch), "micro_batch", "must be in 1…4096")
        _ = try RewardSpec.terms(reward)
        try validateLoRARun(iterations: iterations, learningRate: learningRate, weightDecay: weightDecay,
                            maxGradNorm: maxGradNorm, loraRank: loraRank, loraAlpha: loraAlpha, saveEvery: saveEvery,
                            evalEvery: evalEvery, evalQueries: evalQueries, maxNonfinite: maxNonfinite)
    }

    public var resumable: DDPOConfig {
        var c = self
        (c.iterations, c.saveEvery, c.evalEvery, c.maxNonfinite) = (0, 0, 0, 0)
        return c
    }

    public static let kind = "ddpo"
}

/// DDPO on the UNet's LoRA (the variant is stated at the top of this file).
public final class DDPOTrainer {
    public let config: DDPOConfig
    public let pipeline: StableDiffusionPipeline
    public let reward: any Reward
    public let sampler: GRPOSampler
    /// The queries of the periodic evaluation (``DDPOConfig/evalSet`` or the withheld slice).
    public let heldOut: [PromptRecord]
    public let optimizer: AdamW
    public private(set) var tracker: PerPromptStatTracker
    public private(set) var iteration = 0
    public private(set) var skipped = 0
    public private(set) var nonfiniteStreak = 0
    let ddim: DDIMScheduler
    let recorder: RecordingDDIMScheduler

    var store: ParameterStore { pipeline.unet.store }

    /// `pipeline`'s UNet must carry the LoRA to train (``load(config:)`` builds one).
    public init(config: DDPOConfig, pipeline: StableDiffusionPipeline, reward: any Reward, records: [PromptRecord]) throws {
        try config.validate()
        self.config = config
        self.pipeline = pipeline
        self.reward = reward
        let adapters = pipeline.unet.store.parameters.filter(\.isAdapter)
        guard !adapters.isEmpty else { throw EvaluationError.invalidArgument("the UNet has no LoRA adapters to train") }
        pipeline.unet.store.freeze()
        pipeline.unet.store.unfreeze(adapters: true)
        sampler = try GRPOSampler(records: records, withheldCount: config.evalQueries)
        heldOut = try heldOutQueries(evalSet: config.evalSet, count: config.evalQueries, withheld: sampler.withheld)
        tracker = PerPromptStatTracker(bufferSize: config.statBuffer, minCount: config.statMinCount)
        var c = pipeline.scheduler.config
        c.className = "DDIMScheduler"
        ddim = try DDIMScheduler(c)
        ddim.eta = config.eta
        try ddim.setTimesteps(config.steps)
        recorder = try RecordingDDIMScheduler(ddim)
        optimizer = AdamW(pipeline.unet.store.trainableTensors, learningRate: config.learningRate, betas: (0.9, 0.999),
                          weightDecay: config.weightDecay)
    }

    /// Loads the diffusion model with a fresh LoRA (B = 0, A from the run's seed), the reward and the
    /// training queries that `config` names (embedded defaults otherwise).
    public static func load(config: DDPOConfig, device: Device = .cpu) throws -> DDPOTrainer {
        try config.validate()
        let (pipeline, records) = try loadWithLoRA(diffusion: config.diffusion, trainSet: config.trainSet,
                                                   lora: config.lora, seed: config.seed &+ 0xDD90, device: device)
        return try DDPOTrainer(config: config, pipeline: pipeline, reward: try EmbeddedModels.reward(config.reward),
                               records: records)
    }

    /// One iteration's draw: queries (balanced), one initial-noise seed per image, the seeds of the
    /// η-noise and of the update's shuffles. A pure function of the run's seed and the iteration.
    func plan(iteration: Int) -> (records: [PromptRecord], rowSeeds: [UInt64], noiseSeed: UInt64, shuffleSeed: UInt64) {
        var rng = SplitMix64(seed: config.seed, stream: UInt64(iteration) &+ 1)
        let (records, rowSeeds) = sampler.balancedDraw(iteration: iteration, count: config.queriesPerIteration,
                                                       repeats: config.imagesPerQuery, rng: &rng)
        return (records, rowSeeds, rng.next(), rng.next())
    }

    /// One iteration: sample with recorded log-densities, score, advantages, `inner_epochs` updates.
    public func step() throws -> GRPOIterationMetrics {
        let plan = plan(iteration: iteration)
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9 }
        var values: [String: Double] = [:]

        let original = pipeline.scheduler
        pipeline.scheduler = recorder
        defer { pipeline.scheduler = original }
        let prompts = plan.records.map(\.prompt)
        let images = try withNoGrad { () -> [RGBImage] in
            let out = try pipeline.sample(prompts: prompts, options: SamplingOptions(
                steps: config.steps, guidance: config.guidance, seed: plan.noiseSeed, rowSeeds: plan.rowSeeds))
            return pipeline.decodeImages(out.latents)
        }
        let records = recorder.records
        values["time/sampling"] = seconds(since: start)

        let rewardStart = DispatchTime.now().uptimeNanoseconds
        var outcome: Result<[String: Double], Error>
        do {
            let scores = try reward.checkedScore(zip(images, plan.records).map {
                RewardInput(image: $0, query: $1.prompt, constraints: $1.constraints)
            })
            if let poison = Faults.poison("reward", at: iteration + 1) {
                throw RewardError.nonFinite(reward: reward.name, index: 0, value: poison)
            }
            let rewards = scores.map(\.value)
            values["time/reward"] = seconds(since: rewardStart)
            values["reward"] = mean(rewards)
            values["reward_std"] = GRPO.unbiasedStd(rewards)
            for key in ["strict", "soft", "strict_exact"] {
                let detail = scores.compactMap { $0.details[key] }
                if detail.count == scores.count { values["rollout/\(key)"] = mean(detail) }
            }
            var updated = tracker
            let advantages = updated.update(prompts: prompts, rewards: rewards)
            let updateStart = DispatchTime.now().uptimeNanoseconds
            let stats = try update(records: records, prompts: prompts, advantages: advantages,
                                   shuffleSeed: plan.shuffleSeed)
            tracker = updated
            values["time/update"] = seconds(since: updateStart)
            outcome = .success(stats)
        } catch let error as RewardError {
            outcome = .failure(error)
        } catch let error as NonFiniteValue {
            outcome = .failure(error)
        }
        values["lr"] = config.learningRate
        iteration += 1
        values["images"] = Double(iteration * plan.records.count)
        var metrics = try GRPOIterationMetrics(iteration: iteration, values: values, outcome: outcome, skipped: &skipped,
                                               streak: &nonfiniteStreak, maxNonfinite: config.maxNonfinite)
        metrics.values["seconds"] = seconds(since: start)
        return metrics
    }

    /// The passes over the batch (see the variant at the top of the file).
    func update(records: [RecordingDDIMScheduler.Record], prompts: [String], advantages: [Double],
                shuffleSeed: UInt64) throws -> [String: Double] {
        let n = prompts.count
        var rng = SplitMix64(seed: shuffleSeed)
        var sums: [String: Double] = [:]
        var updates = 0.0
        for epoch in 0..<config.innerEpochs {
            let order = rng.shuffled(Array(0..<n))
            let trained = Array(rng.shuffled(Array(records.indices)).prefix(config.trainedSteps))
            let batches = stride(from: 0, to: n, by: config.trainBatchSize).map {
                Array(order[$0..<Swift.min($0 + config.trainBatchSize, n)])
            }
            for (b, batch) in batches.enumerated() {
                let chunks = stride(from: 0, to: batch.count, by: config.microBatch).map {
                    Array(batch[$0..<Swift.min($0 + config.microBatch, batch.count)])
                }
                let contexts = try chunks.map { chunk in
                    try pipeline.textContext(chunk.map { prompts[$0] }, guidance: config.guidance)
                }
                optimizer.learningRate = config.learningRate
                optimizer.zeroGrad()
                var loss = 0.0, approxKL = 0.0, clipFraction = 0.0, kernelKL = 0.0
                let parts = Double(trained.count * chunks.count)
                for s in trained {
                    let r = records[s]
                    for (c, chunk) in chunks.enumerated() {
                        let index = Tensor(chunk.map(Int64.init))
                        let latents = r.latents.indexSelect(dim: 0, index: index)
                        let noise = pipeline.guidedNoise(latents, stepIndex: r.stepIndex, context: contexts[c],
                                                         added: nil, guidance: config.guidance)
                        let now = try ddim.stepWithLogProb(modelOutput: noise, stepIndex: r.stepIndex, sample: latents,
                                                           prevSample: r.next.indexSelect(dim: 0, index: index))
                        let part = DDPO.loss(logProb: now.logProb, oldLogProb: r.logProb.indexSelect(dim: 0, index: index),
                                             advantages: chunk.map { advantages[$0] }, clipRange: config.clipRange,
                                             advantageClip: config.advClipMax)
                        // Each part weighs its share of the train batch, averaged over the trained steps.
                        let scaled = part.loss * (Double(chunk.count) / Double(batch.count) / Double(trained.count))
                        scaled.backward()
                        loss += scaled.item()
                        approxKL += part.approxKL / parts
                        clipFraction += part.clipFraction / parts
                        if epoch == 0 && s == trained[0] {
                            kernelKL += try kernelDivergence(latents: latents, stepIndex: r.stepIndex,
                                                             context: contexts[c], mean: now.mean, std: now.std)
                                * Double(chunk.count) / Double(batch.count)
                        }
                    }
                }
                let outcome = guardedAccumulatedStep(loss: loss, optimizer: optimizer, maxNorm: config.maxGradNorm,
                                                     step: iteration + 1)
                if let reason = outcome.skipReason {
                    throw NonFiniteValue(description: "DDPO update (pass \(epoch + 1), batch \(b + 1)): "
                        + reason.replacingOccurrences(of: "step", with: "iteration"))
                }
                updates += 1
                for (key, value) in [("loss", loss), ("grad_norm", outcome.gradNorm), ("approx_kl", approxKL),
                                     ("clipfrac", clipFraction)] {
                    sums[key, default: 0] += value
                }
                if epoch == 0 { sums["kl", default: 0] += kernelKL * Double(batch.count) / Double(n) }
            }
        }
        var stats = sums.mapValues { $0 / updates }
        stats["kl"] = sums["kl"]
        stats["optimizer_steps"] = updates
        return stats
    }

    /// ‖μ_θ − μ_base‖² / (2σ²) averaged over the latent and the rows: the KL of the η-kernel of one step
    /// between the adapted UNet and the base (adapters off).
    func kernelDivergence(latents: Tensor, stepIndex: Int, context: Tensor, mean: Tensor, std: Double) throws -> Double {
        try withNoGrad {
            let previous = store.adaptersEnabled
            store.adaptersEnabled = false
            defer { store.adaptersEnabled = previous }
            let noise = pipeline.guidedNoise(latents, stepIndex: stepIndex, context: context, added: nil,
                                             guidance: config.guidance)
            let base = try ddim.stepWithLogProb(modelOutput: noise, stepIndex: stepIndex, sample: latents,
                                                prevSample: mean.detached())
            return ((mean.detached() - base.mean).square().mean() / (2 * std * std)).item()
        }
    }
}

extension DDPOTrainer: UNetLoRATrainer {
    public var trainingReward: any Reward { reward }
    public var imagesPerIteration: Int { config.queriesPerIteration * config.imagesPerQuery }
    public var curveTitle: String { "DDPO (UNet LoRA, \(config.reward))" }

    /// The LoRA, AdamW's moments, the iteration, the skip counters and the per-prompt reward buffers,
    /// atomically. Every draw is a pure function of the seed and the iteration.
    public func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // the same bytes for the same state, in every process
        let buffers = String(decoding: try encoder.encode(tracker), as: UTF8.self)
        try saveLoRACheckpoint(to: path, store: store, optimizer: optimizer, iteration: iteration, signature: signature,
                               seed: config.seed, skipped: skipped, streak: nonfiniteStreak,
                               extra: ["stat_tracker": buffers])
    }

    public func resume(from path: String) throws {
        let state = try resumeLoRACheckpoint(from: path, store: store, optimizer: optimizer, signature: signature)
        guard let text = state.metadata["stat_tracker"],
              let restored = try? JSONDecoder().decode(PerPromptStatTracker.self, from: Data(text.utf8)) else {
            throw TrainingError.notACheckpoint(path: path, reason: "no readable `stat_tracker` entry")
        }
        (iteration, skipped, nonfiniteStreak) = (state.iteration, state.skipped, state.streak)
        tracker = restored
    }
}
