// Diffusion-DPO, the second weight-level baseline (Wallace et al. 2023, "Diffusion Model Alignment
// Using Direct Preference Optimization"; SalesforceAIResearch/DiffusionDPO's train.py), on a LoRA of
// the miniature UNet's attention projections. The variant, exactly:
//
// - Preference data: each iteration draws `queries_per_iteration` training queries balanced over the
//   six categories (as GRPO and DDPO draw them) and samples `images_per_query` images of each with the
//   frozen reference (the LoRA switched off) under the protocol's sampler (DDIM η = 0, 20 steps,
//   guidance 5), every image its own initial noise. The images are scored against the query by
//   `reward` (ShapeEval soft by default); every pair (i, j) of one query with score i strictly above
//   score j is a (winner, loser) pair; ties make none. The data never depends on the trained LoRA, so
//   this is offline DPO on an endless stream of the reference's own samples, a pure function of the
//   seed and the iteration (the paper trains on a fixed set of human pairs, Pick-a-Pic).
//   Departure: the pairs are the final DDIM latents the images were decoded from, not VAE encodings of
//   the images (the reference encodes images; here the latent that made the image is at hand).
// - Loss: DiffusionDPO's, `DiffusionDPO.loss`: winner and loser noised with the same ε at the same
//   t ~ U{0, …, 999} (a fresh draw per pair and pass), ε-prediction errors averaged over the latent,
//   inside = −½·β·(Δ_θ − Δ_ref), loss −mean log σ(inside). Conditioning: the query alone (no
//   guidance, no caption dropout), as DiffusionDPO trains.
// - Update: `inner_epochs` passes over the iteration's pairs, shuffled, `train_batch_size` pairs per
//   AdamW step (gradients accumulated over micro-batches of `micro_batch` pairs), gradient norm ≤
//   `max_grad_norm`. Only the LoRA (rank `lora_rank`, α `lora_alpha`, on `to_q`, `to_k`, `to_v`,
//   `to_out.0`) trains; it starts with B = 0, so the first step's model equals the reference
//   (inside = 0, loss log 2). Saved in diffusers' format.
// - Logged: DiffusionDPO's `implicit_acc`, `model_mse`, `ref_mse`; the pairs made and their scores;
//   the divergence from the reference on the trained inputs, ‖ε_θ − ε_ref‖² averaged over the latent
//   (`delta_eps`).
// - A non-finite reward, loss or gradient skips the iteration (counted); `max_nonfinite` in a row stop.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training

/// The settings of a Diffusion-DPO run (`promptloop train-weights dpo --config run.json`).
public struct DPOConfig: WeightRunConfiguration {
    /// Diffusion model folder (default: the embedded miniature) and training queries (train.jsonl).
    public var diffusion: String?
    public var trainSet: String?
    public var steps = 20
    public var guidance = 5.0
    public var queriesPerIteration = 8
    public var imagesPerQuery = 4
    public var iterations = 100
    public var innerEpochs = 1
    /// β of the DPO loss (DiffusionDPO: 5000 for SD1.5, 2500 for SDXL).
    public var beta = 2500.0
    /// Ranks the images of a query: a pair needs a strictly higher score.
    public var reward = "shapeeval_soft"
    public var learningRate = 1e-4
    public var weightDecay = 1e-2
    public var maxGradNorm = 1.0
    public var loraRank = 4
    public var loraAlpha = 4.0
    /// Pairs per AdamW step, and pairs per UNet call (gradients accumulate).
    public var trainBatchSize = 8
    public var microBatch = 8
    public var seed: UInt64 = 0
    public var saveEvery = 5
    public var evalEvery = 10
    /// Training queries withheld and evaluated under the protocol every `eval_every`.
    public var evalQueries = 48
    public var maxNonfinite = 3

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case diffusion, trainSet = "train_set", steps, guidance
        case queriesPerIteration = "queries_per_iteration", imagesPerQuery = "images_per_query", iterations
        case innerEpochs = "inner_epochs", beta, reward
        case learningRate = "learning_rate", weightDecay = "weight_decay", maxGradNorm = "max_grad_norm"
        case loraRank = "lora_rank", loraAlpha = "lora_alpha", trainBatchSize = "train_batch_size"
        case microBatch = "micro_batch", seed
        case saveEvery = "save_every", evalEvery = "eval_every", evalQueries = "eval_queries"
        case maxNonfinite = "max_nonfinite"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DPOConfig()
        func v<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        diffusion = try c.decodeIfPresent(String.self, forKey: .diffusion)
        trainSet = try c.decodeIfPresent(String.self, forKey: .trainSet)
        steps = try v(.steps, d.steps)
        guidance = try v(.guidance, d.guidance)
        queriesPerIteration = try v(.queriesPerIteration, d.queriesPerIteration)
        imagesPerQuery = try v(.imagesPerQuery, d.imagesPerQuery)
        iterations = try v(.iterations, d.iterations)
        innerEpochs = try v(.innerEpochs, d.innerEpochs)
        beta = try v(.beta, d.beta)
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
        maxNonfinite = try v(.maxNonfinite, d.maxNonfinite)
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
    }

    public func validate() throws {
        try requireSetting((1...1000).contains(steps), "steps", "must be in 1…1000, got \(steps)")
        try requireSetting(guidance.isFinite && guidance >= 0 && guidance <= 100, "guidance", "must be in 0…100, got \(guidance)")
        try requireSetting((1...4096).contains(queriesPerIteration), "queries_per_iteration", "must be in 1…4096")
        try requireSetting((2...64).contains(imagesPerQuery), "images_per_query", "must be in 2…64 (a pair needs two images)")
        try requireSetting(queriesPerIteration * imagesPerQuery <= 4096, "images_per_query",
                         "× queries_per_iteration must be at most 4096")
        try requireSetting((1...100).contains(innerEpochs), "inner_epochs", "must be in 1…100")
        try requireSetting(beta.isFinite && beta > 0 && beta <= 1e7, "beta", "must be in (0, 1e7], got \(beta)")
        try requireSetting((1...4096).contains(trainBatchSize), "train_batch_size", "must be in 1…4096")
        try requireSetting((1...4096).contains(microBatch), "micro_batch", "must be in 1…4096")
        _ = try RewardSpec.terms(reward)
        try validateLoRARun(iterations: iterations, learningRate: learningRate, weightDecay: weightDecay,
                            maxGradNorm: maxGradNorm, loraRank: loraRank, loraAlpha: loraAlpha, saveEvery: saveEvery,
                            evalEvery: evalEvery, evalQueries: evalQueries, maxNonfinite: maxNonfinite)
    }

    public var resumable: DPOConfig {
        var c = self
        (c.iterations, c.saveEvery, c.evalEvery, c.maxNonfinite) = (0, 0, 0, 0)
        return c
    }

    public static let kind = "dpo"
}

/// Diffusion-DPO on the UNet's LoRA (the variant is stated at the top of this file).
public final class DPOTrainer {
    public let config: DPOConfig
    public let pipeline: StableDiffusionPipeline
    public let reward: any Reward
    public let sampler: GRPOSampler
    public let optimizer: AdamW
    public private(set) var iteration = 0
    public private(set) var skipped = 0
    public private(set) var nonfiniteStreak = 0
    let alphasCumprod: Tensor

    var store: ParameterStore { pipeline.unet.store }

    /// `pipeline` (sampling with DDIM η = 0) must carry the LoRA to train (``load(config:)`` builds one).
    public init(config: DPOConfig, pipeline: StableDiffusionPipeline, reward: any Reward, records: [PromptRecord]) throws {
        try config.validate()
        self.config = config
        self.pipeline = pipeline
        self.reward = reward
        let adapters = pipeline.unet.store.parameters.filter(\.isAdapter)
        guard !adapters.isEmpty else { throw EvaluationError.invalidArgument("the UNet has no LoRA adapters to train") }
        pipeline.unet.store.freeze()
        pipeline.unet.store.unfreeze(adapters: true)
        sampler = try GRPOSampler(records: records, withheldCount: config.evalQueries)
        alphasCumprod = Tensor(pipeline.scheduler.config.alphasCumprod)
        optimizer = AdamW(pipeline.unet.store.trainableTensors, learningRate: config.learningRate, betas: (0.9, 0.999),
                          weightDecay: config.weightDecay)
    }

    /// Loads the diffusion model with a fresh LoRA (B = 0, A from the run's seed), the reward and the
    /// training queries that `config` names (embedded defaults otherwise).
    public static func load(config: DPOConfig, device: Device = .cpu) throws -> DPOTrainer {
        try config.validate()
        let (pipeline, records) = try loadWithLoRA(diffusion: config.diffusion, trainSet: config.trainSet,
                                                   lora: config.lora, seed: config.seed &+ 0xD90, device: device)
        return try DPOTrainer(config: config, pipeline: pipeline, reward: try EmbeddedModels.reward(config.reward),
                              records: records)
    }

    /// One iteration's draw: queries (balanced), one initial-noise seed per image, and the seeds of the
    /// update's shuffles, timesteps and noise. A pure function of the run's seed and the iteration.
    func plan(iteration: Int) -> (records: [PromptRecord], rowSeeds: [UInt64], updateSeed: UInt64) {
        var rng = SplitMix64(seed: config.seed, stream: UInt64(iteration) &+ 1)
        let (records, rowSeeds) = sampler.balancedDraw(iteration: iteration, count: config.queriesPerIteration,
                                                       repeats: config.imagesPerQuery, rng: &rng)
        return (records, rowSeeds, rng.next())
    }

    /// The reference's samples of one iteration and their scores (LoRA off, protocol sampler).
    func samplePairs(_ plan: (records: [PromptRecord], rowSeeds: [UInt64], updateSeed: UInt64))
        throws -> (latents: Tensor, scores: [RewardScore]) {
        let previous = store.adaptersEnabled
        store.adaptersEnabled = false
        defer { store.adaptersEnabled = previous }
        let (latents, images) = try withNoGrad { () -> (Tensor, [RGBImage]) in
            let out = try pipeline.sample(prompts: plan.records.map(\.prompt), options: SamplingOptions(
                steps: config.steps, guidance: config.guidance, seed: 0, rowSeeds: plan.rowSeeds))
            return (out.latents, pipeline.decodeImages(out.latents))
        }
        let scores = try reward.checkedScore(zip(images, plan.records).map {
            RewardInput(image: $0, query: $1.prompt, constraints: $1.constraints)
        })
        return (latents, scores)
    }

    /// One iteration: the reference's samples, their pairs, `inner_epochs` passes of the DPO loss.
    public func step() throws -> GRPOIterationMetrics {
        let plan = plan(iteration: iteration)
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9 }
        var values: [String: Double] = [:]
        var outcome: Result<[String: Double], Error>
        do {
            let (latents, scores) = try samplePairs(plan)
            values["time/sampling"] = seconds(since: start)
            if let poison = Faults.poison("reward", at: iteration + 1) {
                throw RewardError.nonFinite(reward: reward.name, index: 0, value: poison)
            }
            var pairs: [(winner: Int, loser: Int)] = []
            let k = config.imagesPerQuery
            for q in 0..<config.queriesPerIteration {
                pairs += DiffusionDPO.pairs(scores: (0..<k).map { scores[q * k + $0].value })
                    .map { (q * k + $0.winner, q * k + $0.loser) }
            }
            values["pairs"] = Double(pairs.count)
            values["pairs/reward_winner"] = mean(pairs.map { scores[$0.winner].value })
            values["pairs/reward_loser"] = mean(pairs.map { scores[$0.loser].value })
            values["reference/reward"] = mean(scores.map(\.value))
            let strict = scores.compactMap { $0.details["strict"] }
            if strict.count == scores.count { values["reference/strict"] = mean(strict) }
            let updateStart = DispatchTime.now().uptimeNanoseconds
            let stats = try update(latents: latents, prompts: plan.records.map(\.prompt), pairs: pairs,
                                   seed: plan.updateSeed)
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

    /// The DPO passes over the pairs (see the variant at the top of the file). An iteration without a
    /// pair takes no step.
    func update(latents: Tensor, prompts: [String], pairs: [(winner: Int, loser: Int)], seed: UInt64) throws
        -> [String: Double] {
        guard !pairs.isEmpty else {
            // No loss to compute; the loss fault hook still fires here, so a fault schedule means the same
            // iterations in every trainer.
            if let poison = Faults.poison("loss", at: iteration + 1) {
                throw NonFiniteValue(description: "DPO update: the loss was \(poison) at iteration \(iteration + 1)")
            }
            return ["optimizer_steps": 0]
        }
        var rng = SplitMix64(seed: seed)
        let generator = try Generator(seed: rng.next())
        var sums: [String: Double] = [:]
        var updates = 0.0
        for epoch in 0..<config.innerEpochs {
            let order = rng.shuffled(Array(pairs.indices))
            let batches = stride(from: 0, to: order.count, by: config.trainBatchSize).map {
                Array(order[$0..<Swift.min($0 + config.trainBatchSize, order.count)])
            }
            for (b, batch) in batches.enumerated() {
                optimizer.learningRate = config.learningRate
                optimizer.zeroGrad()
                var loss = 0.0, accuracy = 0.0, modelMSE = 0.0, referenceMSE = 0.0, shift = 0.0
                for start in stride(from: 0, to: batch.count, by: config.microBatch) {
                    let chunk = batch[start..<Swift.min(start + config.microBatch, batch.count)].map { pairs[$0] }
                    let share = Double(chunk.count) / Double(batch.count)
                    let part = try pairLoss(latents: latents, prompts: prompts, pairs: chunk, generator: generator)
                    (part.loss.loss * share).backward()
                    loss += part.loss.loss.item() * share
                    accuracy += part.loss.implicitAccuracy * share
                    modelMSE += part.loss.modelMSE * share
                    referenceMSE += part.loss.referenceMSE * share
                    shift += part.shift * share
                }
                let outcome = guardedAccumulatedStep(loss: loss, optimizer: optimizer, maxNorm: config.maxGradNorm,
                                                     step: iteration + 1)
                if let reason = outcome.skipReason {
                    throw NonFiniteValue(description: "DPO update (pass \(epoch + 1), batch \(b + 1)): "
                        + reason.replacingOccurrences(of: "step", with: "iteration"))
                }
                updates += 1
                for (key, value) in [("loss", loss), ("grad_norm", outcome.gradNorm), ("implicit_acc", accuracy),
                                     ("model_mse", modelMSE), ("ref_mse", referenceMSE), ("delta_eps", shift)] {
                    sums[key, default: 0] += value
                }
            }
        }
        var stats = sums.mapValues { $0 / updates }
        stats["optimizer_steps"] = updates
        return stats
    }

    /// The DPO loss of `pairs` (indices into `latents`): a fresh t and ε per pair, shared by winner and
    /// loser; the trained UNet with gradients, the reference (adapters off) without. Also ‖ε_θ − ε_ref‖².
    func pairLoss(latents: Tensor, prompts: [String], pairs: [(winner: Int, loser: Int)], generator: Generator)
        throws -> (loss: DiffusionDPO.Loss, shift: Double) {
        let p = pairs.count
        let index = Tensor(pairs.map { Int64($0.winner) } + pairs.map { Int64($0.loser) })
        let x0 = latents.indexSelect(dim: 0, index: index).detached()
        let t = Tensor.randint(0, alphasCumprod.size(0), [p], generator: generator)
        let noise = Tensor.randn([p] + Array(x0.shape.dropFirst()), generator: generator).to(x0.dtype)
        let t2 = Tensor.cat([t, t], dim: 0)
        let target = Tensor.cat([noise, noise], dim: 0)
        let ab = alphasCumprod.indexSelect(dim: 0, index: t2).reshape([2 * p, 1, 1, 1]).to(x0.dtype)
        let noisy = x0 * ab.sqrt() + target * (1 - ab).sqrt()
        let context = try pipeline.textContext(pairs.map { prompts[$0.winner] } + pairs.map { prompts[$0.loser] },
                                               guidance: 1)
        let reference = withNoGrad { () -> Tensor in
            let previous = store.adaptersEnabled
            store.adaptersEnabled = false
            defer { store.adaptersEnabled = previous }
            return pipeline.unet(noisy, timestep: t2, context: context)
        }
        let prediction = pipeline.unet(noisy, timestep: t2, context: context)
        let loss = DiffusionDPO.loss(modelPrediction: prediction, referencePrediction: reference, target: target,
                                     beta: config.beta)
        let shift = withNoGrad { (prediction - reference).square().mean().item() }
        return (loss, shift)
    }
}

extension DPOTrainer: UNetLoRATrainer {
    public var trainingReward: any Reward { reward }
    public var heldOut: [PromptRecord] { sampler.withheld }
    public var imagesPerIteration: Int { config.queriesPerIteration * config.imagesPerQuery }
    public var curveTitle: String { "Diffusion-DPO (UNet LoRA, β \(config.beta), pairs by \(config.reward))" }

    public func save(to path: String) throws {
        try saveLoRACheckpoint(to: path, store: store, optimizer: optimizer, iteration: iteration, signature: signature,
                               seed: config.seed, skipped: skipped, streak: nonfiniteStreak)
    }

    public func resume(from path: String) throws {
        (iteration, skipped, nonfiniteStreak, _) = try resumeLoRACheckpoint(from: path, store: store, optimizer: optimizer,
                                                                             signature: signature)
    }
}
