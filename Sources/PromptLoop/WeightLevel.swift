// What the weight-level trainers (DDPO, Diffusion-DPO, ReFL) share: their run files, loading the
// diffusion model with a fresh UNet LoRA and the training queries, the balanced draw of queries, the
// checkpoint, and the protocol's evaluation of withheld training queries.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training

/// Loads the diffusion model (DDIM) with a fresh LoRA (B = 0, A from `seed`) and the training queries,
/// the embedded defaults where `diffusion` or `trainSet` is nil.
func loadWithLoRA(diffusion: String?, trainSet: String?, lora: LoRAInjection, seed: UInt64, device: Device)
    throws -> (StableDiffusionPipeline, [PromptRecord]) {
    guard let diffusion = diffusion ?? EmbeddedModels.diffusion else {
        throw EvaluationError.invalidArgument("no `diffusion` folder given and Models/shapeworld-sd is not here")
    }
    guard let trainSet = trainSet ?? EmbeddedModels.locate("Data/shapeworld/v1/train.jsonl", present: {
        FileManager.default.fileExists(atPath: $0)
    }) else {
        throw EvaluationError.invalidArgument("no `train_set` given and Data/shapeworld/v1/train.jsonl is not here")
    }
    var options = LoadOptions(device: device)
    options.freshUNetLoRA = lora
    options.seed = seed
    let pipeline = try StableDiffusionPipeline.load(folder: diffusion, options: options, scheduler: "ddim")
    return (pipeline, try PromptSets.readJSONLines(path: trainSet))
}

public enum WithheldEvaluation {
    /// Held-out queries (the withheld training slice or an eval set) under the protocol (DDIM η = 0, the
    /// UNet LoRA on or off), fixed noise per query: strict / soft / strict-exact means, and `reward`'s
    /// mean when one is given.
    public static func unetLoRA(pipeline: StableDiffusionPipeline, withheld: [PromptRecord], steps: Int,
                                guidance: Double, adapters: Bool, reward: (any Reward)? = nil) throws -> [String: Double] {
        guard !withheld.isEmpty else { return [:] }
        var c = pipeline.scheduler.config
        c.className = "DDIMScheduler"
        let scheduler = try DDIMScheduler(c)
        scheduler.eta = 0
        let store = pipeline.unet.store
        let previous = (pipeline.scheduler, store.adaptersEnabled)
        pipeline.scheduler = scheduler
        store.adaptersEnabled = adapters
        defer { (pipeline.scheduler, store.adaptersEnabled) = previous }
        var images: [RGBImage] = []
        for start in stride(from: 0, to: withheld.count, by: 16) {
            let rows = Array(withheld[start..<Swift.min(start + 16, withheld.count)])
            images += try withNoGrad {
                let out = try pipeline.sample(prompts: rows.map(\.prompt), options: SamplingOptions(
                    steps: steps, guidance: guidance, seed: 0,
                    rowSeeds: rows.indices.map { UInt64(1000 + start + $0) }))
                return pipeline.decodeImages(out.latents)
            }
        }
        return try heldOutScores(images: images, records: withheld, reward: reward)
    }
}

/// ShapeEval's strict / soft / strict-exact means of images made for `records`, and `reward`'s mean
/// (`reward`) when one is given — the training reward on held-out images, beside the true score.
func heldOutScores(images: [RGBImage], records: [PromptRecord], reward: (any Reward)?) throws -> [String: Double] {
    let inputs = zip(images, records).map { RewardInput(image: $0, query: $1.prompt, constraints: $1.constraints) }
    let scores = try ShapeEvalReward(.strict).checkedScore(inputs)
    var out: [String: Double] = [:]
    for key in ["strict", "soft", "strict_exact"] { out[key] = mean(scores.map { $0.details[key] ?? 0 }) }
    if let reward { out["reward"] = mean(try reward.checkedScore(inputs).map(\.value)) }
    return out
}

/// The queries of a trainer's periodic evaluation: `count` prompts of `evalSet` balanced over its
/// categories (the same fixed draw as the withheld slice) when a file is named, else `withheld`.
func heldOutQueries(evalSet: String?, count: Int, withheld: [PromptRecord]) throws -> [PromptRecord] {
    guard let evalSet else { return withheld }
    return try GRPOSampler(records: PromptSets.readJSONLines(path: evalSet), withheldCount: count).withheld
}

/// A weight-level trainer's checkpoint: the UNet's LoRA, AdamW's moments, the iteration, the skip
/// counters and the seed (every draw is a pure function of the seed and the iteration), plus `extra`
/// metadata, written atomically.
func saveLoRACheckpoint(to path: String, store: ParameterStore, optimizer: AdamW, iteration: Int, signature: String,
                        seed: UInt64, skipped: Int, streak: Int, extra: [String: String] = [:]) throws {
    try TrainingCheckpoint.save(
        to: path, stores: ["unet": store], optimizer: optimizer, generators: [:], step: iteration,
        metadata: ["run": signature, "skipped": String(skipped), "nonfinite_streak": String(streak),
                   "seed": String(seed)].merging(extra) { $1 },
        selection: .adapters)
}

/// Reads back ``saveLoRACheckpoint(to:store:optimizer:iteration:signature:seed:skipped:streak:extra:)``
/// after checking that it belongs to a run of the same settings.
func resumeLoRACheckpoint(from path: String, store: ParameterStore, optimizer: AdamW, signature: String)
    throws -> (iteration: Int, skipped: Int, streak: Int, metadata: [String: String]) {
    _ = try TrainingCheckpoint.resumeCheck(path: path, signature: signature)
    let (step, metadata) = try TrainingCheckpoint.load(from: path, stores: ["unet": store], optimizer: optimizer,
                                                       generators: [:], selection: .adapters)
    return (step, Int(metadata["skipped"] ?? "") ?? 0, Int(metadata["nonfinite_streak"] ?? "") ?? 0, metadata)
}

/// The settings of a weight-level run file: decoded strictly (unknown keys and wrong types name the file
/// and the key), validated, written back with sorted keys, and signed for resuming.
public protocol WeightRunConfiguration: Codable, Sendable, Equatable {
    func validate() throws
    /// These settings with the run's length and periods zeroed: what a resumed checkpoint must share.
    var resumable: Self { get }
    /// The keys every weight-level run has (the command line overrides them).
    var diffusion: String? { get set }
    var iterations: Int { get set }
    var queriesPerIteration: Int { get set }
    var learningRate: Double { get set }
    var seed: UInt64 { get set }
    var saveEvery: Int { get set }
    var evalEvery: Int { get set }
    /// The sampler of the run and its evaluation (the protocol's 20 steps and guidance 5).
    var steps: Int { get }
    var guidance: Double { get }
    var loraRank: Int { get }
    var loraAlpha: Double { get }
    /// The method's name in checkpoint signatures (`ddpo`, `dpo`, `refl`).
    static var kind: String { get }
}

extension WeightRunConfiguration {
    /// Reads a `run.json`: unknown keys, wrong types and out-of-range values are errors naming the
    /// file and the key.
    public static func load(path: String) throws -> Self {
        let config: Self = try decodeRunFile(path: path)
        do { try config.validate() } catch {
            throw EvaluationError.badFile(path: path, line: nil, message: "\(error)")
        }
        return config
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// What a checkpoint is tagged with: the method and the settings a resumed run must share.
    var signature: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Self.kind + " " + ((try? String(decoding: encoder.encode(resumable), as: UTF8.self)) ?? "")
    }

    /// The UNet LoRA the run trains (on `to_q`, `to_k`, `to_v`, `to_out.0`).
    var lora: LoRAInjection { LoRAInjection(rank: loraRank, alpha: loraAlpha, targetModules: UNetLoRA.defaultTargets) }
}

/// What the weight-level trainers share as ``IterativeTrainer``s: their run length, config file,
/// evaluation of held-out queries (the LoRA on, plus the training reward's mean) and the LoRA written
/// in diffusers' format. Each keeps its own step, checkpoint extras and curve title.
public protocol UNetLoRATrainer: IterativeTrainer {
    associatedtype Config: WeightRunConfiguration
    var config: Config { get }
    var pipeline: StableDiffusionPipeline { get }
    /// The queries of the periodic evaluation.
    var heldOut: [PromptRecord] { get }
    /// The training reward, also scored on the evaluation's images (`eval/reward`).
    var trainingReward: any Reward { get }
}

extension UNetLoRATrainer {
    public var signature: String { config.signature }
    public var runLength: (iterations: Int, saveEvery: Int, evalEvery: Int) {
        (config.iterations, config.saveEvery, config.evalEvery)
    }
    public func configJSON() throws -> Data { try config.json() }
    public func evaluate() throws -> [String: Double] {
        try WithheldEvaluation.unetLoRA(pipeline: pipeline, withheld: heldOut, steps: config.steps,
                                        guidance: config.guidance, adapters: true, reward: trainingReward)
    }
    /// A fresh LoRA (B = 0) is the base model: iteration 0's evaluation is plain sampling already.
    public func evaluatePlain() throws -> [String: Double]? { nil }
    /// The LoRA as diffusers writes it (`pipe.load_lora_weights(folder)`).
    public func saveAdapter(to folder: String) throws {
        try UNetLoRA.save(pipeline.unet.store, plan: config.lora, to: folder)
    }
}

/// Throws `` `key` message`` unless `ok`.
func requireSetting(_ ok: Bool, _ key: String, _ message: String) throws {
    if !ok { throw EvaluationError.invalidArgument("`\(key)` \(message)") }
}

/// The checks every weight-level run shares: the optimiser, the LoRA and the run's periods.
func validateLoRARun(iterations: Int, learningRate: Double, weightDecay: Double, maxGradNorm: Double, loraRank: Int,
                     loraAlpha: Double, saveEvery: Int, evalEvery: Int, evalQueries: Int, maxNonfinite: Int) throws {
    try requireSetting((1...1_000_000).contains(iterations), "iterations", "must be in 1…1,000,000")
    try requireSetting(learningRate.isFinite && learningRate > 0 && learningRate < 1, "learning_rate", "must be in (0, 1)")
    try requireSetting(weightDecay.isFinite && weightDecay >= 0 && weightDecay < 1, "weight_decay", "must be in [0, 1)")
    try requireSetting(maxGradNorm.isFinite && maxGradNorm > 0, "max_grad_norm", "must be positive")
    try requireSetting((1...1024).contains(loraRank), "lora_rank", "must be in 1…1024")
    try requireSetting(loraAlpha.isFinite && loraAlpha > 0, "lora_alpha", "must be positive")
    try requireSetting(saveEvery >= 1, "save_every", "must be positive")
    try requireSetting(evalEvery >= 0, "eval_every", "must be 0 (never) or positive")
    try requireSetting((0...10_000).contains(evalQueries), "eval_queries", "must be in 0…10,000")
    try requireSetting((1...1000).contains(maxNonfinite), "max_nonfinite", "must be in 1…1000")
}

extension GRPOSampler {
    /// Draws `count` queries for `iteration`, balanced over the categories (the pools in turn), each
    /// `repeats` times with its own noise seed — the draw of every weight-level trainer.
    func balancedDraw(iteration: Int, count: Int, repeats: Int, rng: inout SplitMix64)
        -> (records: [PromptRecord], rowSeeds: [UInt64]) {
        var records: [PromptRecord] = []
        var rowSeeds: [UInt64] = []
        for q in 0..<count {
            let record = rng.pick(pools[(iteration * count + q) % pools.count].records)
            for _ in 0..<repeats {
                records.append(record)
                rowSeeds.append(rng.next())
            }
        }
        return (records, rowSeeds)
    }
}
