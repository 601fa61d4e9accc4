// ReFL, the third weight-level baseline (Xu et al. 2023, "ImageReward: Learning and Evaluating Human
// Preferences for Text-to-Image Generation", §4; THUDM/ImageReward's ReFL trainer), on a LoRA of the
// miniature UNet's attention projections, against the learned proxy of ShapeEval (a reward model
// with gradients). The variant, exactly:
//
// - Each iteration draws `queries_per_iteration` training queries balanced over the six categories
//   (one image each, its own initial noise) and one stop step k uniform in `stop_range` (0-based steps
//   of T = `steps`; ImageReward: k ∈ [30, 39] of 40, the last quarter — here [15, 19] of 20).
// - Steps 0…k−1 run without gradients (DDIM η = 0, the protocol's guidance); step k runs with
//   gradients through the LoRA: the guided noise prediction, DDIM's x̂₀, the VAE decoder (frozen) and
//   the proxy (frozen) on the decoded image against the query. Departure: ImageReward samples and
//   trains without classifier-free guidance; here both use the protocol's guidance 5, the setting the
//   adapter is evaluated in.
// - Loss: ImageReward's ϕ(r) = ReLU(λ − r) scaled by `grad_scale` (ImageReward: λ = 2, 1e-3), averaged
//   over the batch; the proxy's cosine is at most 1 < λ, so the ReLU never clips and the gradient is
//   −`grad_scale`·∇r. No pretraining-loss term (ImageReward's ReFL trainer alternates none either).
// - AdamW on the LoRA only (rank `lora_rank`, α `lora_alpha`, on `to_q`, `to_k`, `to_v`, `to_out.0`),
//   one step per iteration, gradient norm ≤ `max_grad_norm`; the LoRA starts with B = 0. Saved in
//   diffusers' format.
// - Logged: the proxy reward of x̂₀ at step k (`reward`), ShapeEval of the same images (`rollout/…`:
//   x̂₀ at k, not the final image), and the divergence from the base on ReFL's own scale, ‖ε_θ − ε_base‖²
//   averaged over the latent at step k (`delta_eps`).
// - A non-finite reward, loss or gradient skips the iteration (counted); `max_nonfinite` in a row stop.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training

/// The settings of a ReFL run (`promptloop train-weights refl --config run.json`).
public struct ReFLConfig: WeightRunConfiguration {
    /// Diffusion model, training queries and the learned proxy (defaults: the embedded ones).
    public var diffusion: String?
    public var trainSet: String?
    public var proxy: String?
    public var steps = 20
    public var guidance = 5.0
    public var queriesPerIteration = 8
    public var iterations = 100
    /// The step with gradients is drawn uniformly from this closed range (0-based).
    public var stopRange = [15, 19]
    /// ϕ(r) = ReLU(λ − r) · grad_scale (ImageReward: λ = 2, grad_scale = 1e-3).
    public var rewardTarget = 2.0
    public var gradScale = 1e-3
    public var learningRate = 1e-4
    public var weightDecay = 1e-2
    public var maxGradNorm = 1.0
    public var loraRank = 4
    public var loraAlpha = 4.0
    public var seed: UInt64 = 0
    public var saveEvery = 5
    public var evalEvery = 10
    public var evalQueries = 48
    /// A prompt file to evaluate instead of the withheld training slice (`eval_queries` of its prompts,
    /// balanced over categories): the reward-hacking study's held-out prompts, whose samples the proxy
    /// never saw. nil: the withheld training queries.
    public var evalSet: String?
    public var maxNonfinite = 3

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case diffusion, trainSet = "train_set", proxy, steps, guidance
        case queriesPerIteration = "queries_per_iteration", iterations, stopRange = "stop_range"
        case rewardTarget = "reward_target", gradScale = "grad_scale"
        case learningRate = "learning_rate", weightDecay = "weight_decay", maxGradNorm = "max_grad_norm"
        case loraRank = "lora_rank", loraAlpha = "lora_alpha", seed
        case saveEvery = "save_every", evalEvery = "eval_every", evalQueries = "eval_queries", evalSet = "eval_set"
        case maxNonfinite = "max_nonfinite"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ReFLConfig()
        func v<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        diffusion = try c.decodeIfPresent(String.self, forKey: .diffusion)
        trainSet = try c.decodeIfPresent(String.self, forKey: .trainSet)
        proxy = try c.decodeIfPresent(String.self, forKey: .proxy)
        steps = try v(.steps, d.steps)
        guidance = try v(.guidance, d.guidance)
        queriesPerIteration = try v(.queriesPerIteration, d.queriesPerIteration)
        iterations = try v(.iterations, d.iterations)
        stopRange = try v(.stopRange, d.stopRange)
        rewardTarget = try v(.rewardTarget, d.rewardTarget)
        gradScale = try v(.gradScale, d.gradScale)
        learningRate = try v(.learningRate, d.learningRate)
        weightDecay = try v(.weightDecay, d.weightDecay)
        maxGradNorm = try v(.maxGradNorm, d.maxGradNorm)
        loraRank = try v(.loraRank, d.loraRank)
        loraAlpha = try v(.loraAlpha, d.loraAlpha)
        seed = try v(.seed, d.seed)
        saveEvery = try v(.saveEvery, d.saveEvery)
        evalEvery = try v(.evalEvery, d.evalEvery)
        evalQueries = try v(.evalQueries, d.evalQueries)
        evalSet = try c.decodeIfPresent(String.self, forKey: .evalSet)
        maxNonfinite = try v(.maxNonfinite, d.maxNonfinite)
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.stringValue))
    }

    public func validate() throws {
        try requireSetting((2...1000).contains(steps), "steps", "must be in 2…1000, got \(steps)")
        try requireSetting(guidance.isFinite && guidance >= 0 && guidance <= 100, "guidance", "must be in 0…100, got \(guidance)")
        try requireSetting((1...4096).contains(queriesPerIteration), "queries_per_iteration", "must be in 1…4096")
        try requireSetting(stopRange.count == 2 && stopRange[0] >= 1 && stopRange[0] <= stopRange[1] && stopRange[1] < steps,
                         "stop_range", "must be [first, last] with 1 ≤ first ≤ last < steps, got \(stopRange)")
        try requireSetting(rewardTarget.isFinite, "reward_target", "must be finite")
        try requireSetting(gradScale.isFinite && gradScale > 0 && gradScale <= 1e6, "grad_scale", "must be in (0, 1e6]")
        try validateLoRARun(iterations: iterations, learningRate: learningRate, weightDecay: weightDecay,
                            maxGradNorm: maxGradNorm, loraRank: loraRank, loraAlpha: loraAlpha, saveEvery: saveEvery,
                            evalEvery: evalEvery, evalQueries: evalQueries, maxNonfinite: maxNonfinite)
    }

    public var resumable: ReFLConfig {
        var c = self
        (c.iterations, c.saveEvery, c.evalEvery, c.maxNonfinite) = (0, 0, 0, 0)
        return c
    }

    public static let kind = "refl"
}

/// ReFL on the UNet's LoRA through a differentiable proxy (the variant is stated at the top of the file).
public final class ReFLTrainer {
    public let config: ReFLConfig
    public let pipeline: StableDiffusionPipeline
    public let proxy: LearnedProxyReward
    public let sampler: GRPOSampler
    /// The queries of the periodic evaluation (``ReFLConfig/evalSet`` or the withheld slice).
    public let heldOut: [PromptRecord]
    public let optimizer: AdamW
    public private(set) var iteration = 0
    public private(set) var skipped = 0
    public private(set) var nonfiniteStreak = 0

    var store: ParameterStore { pipeline.unet.store }

    public init(config: ReFLConfig, pipeline: StableDiffusionPipeline, proxy: LearnedProxyReward,
                records: [PromptRecord]) throws {
        try config.validate()
        self.config = config
        self.pipeline = pipeline
        self.proxy = proxy
        let adapters = pipeline.unet.store.parameters.filter(\.isAdapter)
        guard !adapters.isEmpty else { throw EvaluationError.invalidArgument("the UNet has no LoRA adapters to train") }
        pipeline.unet.store.freeze()
        pipeline.unet.store.unfreeze(adapters: true)
        sampler = try GRPOSampler(records: records, withheldCount: config.evalQueries)
        heldOut = try heldOutQueries(evalSet: config.evalSet, count: config.evalQueries, withheld: sampler.withheld)
        optimizer = AdamW(pipeline.unet.store.trainableTensors, learningRate: config.learningRate, betas: (0.9, 0.999),
                          weightDecay: config.weightDecay)
    }

    public static func load(config: ReFLConfig, device: Device = .cpu) throws -> ReFLTrainer {
        try config.validate()
        let (pipeline, records) = try loadWithLoRA(diffusion: config.diffusion, trainSet: config.trainSet,
                                                   lora: config.lora, seed: config.seed &+ 0x4EF1, device: device)
        guard let folder = config.proxy ?? EmbeddedModels.proxy else {
            throw EvaluationError.invalidArgument("no `proxy` folder given and Models/shapeworld-proxy is not here "
                + "(train one with `promptloop pretrain proxy`)")
        }
        return try ReFLTrainer(config: config, pipeline: pipeline, proxy: try LearnedProxyReward.load(folder: folder),
                               records: records)
    }

    /// One iteration's draw: queries (balanced), one initial-noise seed per image, the stop step.
    func plan(iteration: Int) -> (records: [PromptRecord], rowSeeds: [UInt64], stop: Int) {
        var rng = SplitMix64(seed: config.seed, stream: UInt64(iteration) &+ 1)
        let (records, rowSeeds) = sampler.balancedDraw(iteration: iteration, count: config.queriesPerIteration,
                                                       repeats: 1, rng: &rng)
        let span = UInt64(config.stopRange[1] - config.stopRange[0] + 1)
        return (records, rowSeeds, config.stopRange[0] + Int(rng.next() % span))
    }

    /// The latents entering step `stop` (steps 0…stop−1 without gradients).
    func latents(before stop: Int, prompts: [String], rowSeeds: [UInt64]) throws -> Tensor {
        struct Stop: Error { let latents: Tensor }
        do {
            _ = try withNoGrad {
                try pipeline.sample(prompts: prompts, options: SamplingOptions(
                    steps: config.steps, guidance: config.guidance, seed: 0, rowSeeds: rowSeeds)) { state in
                    if state.step == stop - 1 { throw Stop(latents: state.latents) }
                    return nil
                }
            }
        } catch let stopped as Stop {
            return stopped.latents
        }
        throw EvaluationError.invalidArgument("sampling ended before step \(stop)")
    }

    public func step() throws -> GRPOIterationMetrics {
        let plan = plan(iteration: iteration)
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(since t: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9 }
        var values: [String: Double] = ["stop_step": Double(plan.stop)]
        let prompts = plan.records.map(\.prompt)
        let x = try latents(before: plan.stop, prompts: prompts, rowSeeds: plan.rowSeeds).detached()
        values["time/sampling"] = seconds(since: start)
        var outcome: Result<[String: Double], Error>
        let updateStart = DispatchTime.now().uptimeNanoseconds
        do {
            let context = try pipeline.textContext(prompts, guidance: config.guidance)
            optimizer.learningRate = config.learningRate
            optimizer.zeroGrad()
            let noise = pipeline.guidedNoise(x, stepIndex: plan.stop, context: context, added: nil, guidance: config.guidance)
            let x0 = pipeline.scheduler.step(modelOutput: noise, stepIndex: plan.stop, sample: x, generator: nil)
                .predOriginalSample
            let images = pipeline.vae.decodeToImage(x0).to(.float32)
            let rewards = try proxy.cosine(images: images, queries: prompts)
            let rewardValues = rewards.detached().toArray(Double.self)
            if let i = rewardValues.firstIndex(where: { !$0.isFinite }) {
                throw RewardError.nonFinite(reward: proxy.name, index: i, value: rewardValues[i])
            }
            if let poison = Faults.poison("reward", at: iteration + 1) {
                throw RewardError.nonFinite(reward: proxy.name, index: 0, value: poison)
            }
            let loss = (rewards * -1 + config.rewardTarget).relu().mean() * config.gradScale
            loss.backward()
            let step = guardedAccumulatedStep(loss: loss.item(), optimizer: optimizer, maxNorm: config.maxGradNorm,
                                              step: iteration + 1)
            if let reason = step.skipReason {
                throw NonFiniteValue(description: "ReFL update: " + reason.replacingOccurrences(of: "step", with: "iteration"))
            }
            let shift = withNoGrad { () -> Double in
                let previous = store.adaptersEnabled
                store.adaptersEnabled = false
                defer { store.adaptersEnabled = previous }
                let base = pipeline.guidedNoise(x, stepIndex: plan.stop, context: context, added: nil,
                                                guidance: config.guidance)
                return (noise.detached() - base).square().mean().item()
            }
            values["time/update"] = seconds(since: updateStart)
            values["reward"] = mean(rewardValues)
            values["reward_std"] = GRPO.unbiasedStd(rewardValues)
            let shapeEval = ShapeEval()
            let decoded = (0..<images.size(0)).map { RGBImage(tensor: images[$0].detached()) }
            let verdicts: [ShapeEvalResult] = zip(decoded, plan.records).map { shapeEval.score($0.0, $0.1.constraints) }
            values["rollout/strict"] = mean(verdicts.map(\.strict))
            values["rollout/soft"] = mean(verdicts.map(\.soft))
            outcome = .success(["loss": loss.item(), "grad_norm": step.gradNorm, "delta_eps": shift])
        } catch let error as RewardError {
            optimizer.zeroGrad()
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
}

extension ReFLTrainer: UNetLoRATrainer {
    public var trainingReward: any Reward { proxy }
    public var imagesPerIteration: Int { config.queriesPerIteration }
    public var curveTitle: String { "ReFL (UNet LoRA, learned proxy)" }

    public func save(to path: String) throws {
        try saveLoRACheckpoint(to: path, store: store, optimizer: optimizer, iteration: iteration, signature: signature,
                               seed: config.seed, skipped: skipped, streak: nonfiniteStreak)
    }

    public func resume(from path: String) throws {
        (iteration, skipped, nonfiniteStreak, _) = try resumeLoRACheckpoint(from: path, store: store, optimizer: optimizer,
                                                                             signature: signature)
    }
}
