import Diffusion
import Foundation
import Torch
import TorchNN
import Training

/// Settings shared by the miniature's training stages.
public struct RunSettings: Sendable, Equatable {
    /// Total optimisation steps.
    public var steps: Int
    /// Images per step.
    public var batch: Int
    /// Peak learning rate (warm-up, then cosine to a tenth of it).
    public var lr: Double
    public var warmup: Int
    /// Seed of the data stream and of the initialisation.
    public var seed: UInt64
    /// A checkpoint every this many steps.
    public var saveEvery: Int
    /// Stop (saving) at this step; the same command later continues to `steps`.
    public var until: Int?
    /// Steps in a row skipped for a non-finite loss or gradient before the run stops.
    public var maxNonfinite = 3

    public init(steps: Int, batch: Int, lr: Double, warmup: Int = 100, seed: UInt64 = 0, saveEvery: Int = 50,
                until: Int? = nil) {
        self.steps = steps
        self.batch = batch
        self.lr = lr
        self.warmup = warmup
        self.seed = seed
        self.saveEvery = saveEvery
        self.until = until
    }

    /// Rejects settings no run can use, naming the field.
    public func validate() throws {
        guard (1...1_000_000_000).contains(steps) else {
            throw MiniatureError.invalidSettings("steps must be in 1…1000000000, got \(steps)")
        }
        guard (1...4096).contains(batch) else { throw MiniatureError.invalidSettings("batch must be in 1…4096, got \(batch)") }
        guard saveEvery > 0 else { throw MiniatureError.invalidSettings("save-every must be positive, got \(saveEvery)") }
        guard warmup >= 0 else { throw MiniatureError.invalidSettings("warmup must not be negative, got \(warmup)") }
        guard lr > 0, lr.isFinite else { throw MiniatureError.invalidSettings("lr must be positive, got \(lr)") }
        if let until, until <= 0 { throw MiniatureError.invalidSettings("until must be positive, got \(until)") }
        guard maxNonfinite > 0 else {
            throw MiniatureError.invalidSettings("max-nonfinite must be positive, got \(maxNonfinite)")
        }
    }

    var schedule: LRSchedule { .warmupCosine(peak: lr, warmup: warmup, total: steps, minimum: lr * 0.1) }

    /// What a checkpoint is tagged with: a run resumes only with the settings it started with.
    func signature(_ stage: String) -> String { "\(stage) steps=\(steps) batch=\(batch) lr=\(lr) seed=\(seed)" }
}

/// What a training run reports while it goes (the caller prints).
public enum RunEvent: Sendable {
    case resumed(checkpoint: String, step: Int)
    /// A step finished: the progress and a short text with the losses.
    case step(ProgressMeter, step: Int, text: String)
    case exported(String)
}

/// Errors of the miniature's recipes.
public enum MiniatureError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidSettings(String)

    public var description: String {
        switch self {
        case .invalidSettings(let message): return "invalid run settings: \(message)"
        }
    }
}

/// A trainer the shared stage loop drives.
protocol StageTrainer: AnyObject {
    var step: Int { get }
    var lastSkipReason: String? { get }
    func resume(from path: String) throws
    func save(to path: String, metadata: [String: String]) throws
}

extension VAETrainer: StageTrainer {}
extension TextToImageTrainer: StageTrainer {}
extension PolicyTrainer: StageTrainer {}

/// The loop every stage shares: resume from `folder/checkpoint.safetensors` when it was written by
/// the same settings (dropping log rows past it), run `trainStep` to `until` or `steps`, log each
/// step's values and seconds to `loss.csv`, checkpoint every `saveEvery` steps and at the stop, plot
/// the loss. `trainStep` returns the logged values (the loss first) and the progress text. Returns
/// whether the run reached its last step.
func runStage(_ stage: String, folder: String, settings: RunSettings, trainer: some StageTrainer, columns: [String],
              progress: (RunEvent) -> Void, trainStep: () throws -> (values: [Double], text: String)) throws -> Bool {
    let lock = try RunLock(folder: folder)
    defer { withExtendedLifetime(lock) {} }
    let checkpoint = folder + "/checkpoint.safetensors"
    let log = LossLog(path: folder + "/loss.csv", columns: columns + ["lr", "seconds"])
    let signature = settings.signature(stage)
    let schedule = settings.schedule
    var nonfinite = NonFiniteGuard(limit: settings.maxNonfinite)
    if let found = try TrainingCheckpoint.resumable(path: checkpoint, signature: signature) {
        try trainer.resume(from: found)
        // The skip streak counts across a kill.
        let metadata = try SafeTensorsFile(path: found).metadata
        nonfinite = NonFiniteGuard(limit: settings.maxNonfinite, streak: Int(metadata["nonfinite_streak"] ?? "") ?? 0,
                                   skipped: Int(metadata["skipped"] ?? "") ?? 0)
        try log.truncate(after: trainer.step)
        progress(.resumed(checkpoint: found, step: trainer.step))
    } else {
        // Rows a killed start logged before its first checkpoint.
        try log.truncate(after: 0)
    }
    let stop = Swift.min(settings.until ?? settings.steps, settings.steps)
    let meter = ProgressMeter(total: stop, startingAt: trainer.step)
    while trainer.step < stop {
        let stepStart = Date()
        let (values, text) = try trainStep()
        // A non-finite loss or gradient never reaches the weights: the trainer skipped the update;
        // the step (its batch and noise) is spent, so a resumed run stays on the same stream.
        try nonfinite.record(trainer.lastSkipReason, context: "Last good checkpoint: \(checkpoint)")
        if let reason = trainer.lastSkipReason {
            FileHandle.standardError.write(Data(
                "warning: step \(trainer.step) skipped (\(nonfinite.skipped) so far): \(reason)\n".utf8))
        } else {
            try log.append(values + [schedule.rate(at: trainer.step - 1), Date().timeIntervalSince(stepStart)],
                           step: trainer.step)
        }
        if trainer.step % settings.saveEvery == 0 || trainer.step == stop {
            try trainer.save(to: checkpoint, metadata: ["run": signature, "nonfinite_streak": String(nonfinite.streak),
                                                        "skipped": String(nonfinite.skipped)])
            try log.writePlot(to: folder + "/loss.png")
        }
        progress(.step(meter, step: trainer.step, text: text))
    }
    try log.writePlot(to: folder + "/loss.png")
    return trainer.step >= settings.steps
}

/// Stage 1 of the miniature: the AutoencoderKL on ShapeWorld renders.
///
/// The run folder holds `checkpoint.safetensors` (atomic, every `saveEvery` steps), `loss.csv`,
/// `loss.png` and, when done, `vae/` in diffusers layout with its `scaling_factor` measured.
/// Running it again resumes from the checkpoint with the same batches and noise.
public struct VAERecipe {
    public var folder: String
    public var settings: RunSettings
    /// Also write the finished VAE as `export/vae` with float16 weights (the shipped folder).
    public var export: String?

    public init(folder: String, settings: RunSettings, export: String? = nil) {
        self.folder = folder
        self.settings = settings
        self.export = export
    }

    /// Trains (or resumes) to the end and exports; returns the measured scaling factor.
    @discardableResult
    public func run(progress: (RunEvent) -> Void = { _ in }) throws -> Double {
        try settings.validate()
        try RunLock.createFolder(folder)
        let config = Miniature.vaeConfig()
        let schedule = settings.schedule
        let trainer = try VAETrainer(config: config, seed: settings.seed, schedule: schedule)
        let finished = try runStage("vae", folder: folder, settings: settings, trainer: trainer,
                                    columns: ["loss", "reconstruction", "kl"], progress: progress) {
            let images = Miniature.trainingBatch(seed: settings.seed, step: trainer.step, size: settings.batch).images
            let r = trainer.trainStep(images)
            return ([r.loss, r.reconstruction, r.kl],
                    String(format: "loss %.5f (recon %.5f, kl %.3f)", r.loss, r.reconstruction, r.kl))
        }
        guard finished else { return 0 }
        // scaling_factor = 1 / std of the latents, as SD chose 0.18215; measured on a fixed batch.
        let probe = Miniature.trainingBatch(seed: 0xC0FFEE, step: 0, size: 64).images
        var exported = config
        exported.scalingFactor = (1 / trainer.latentStd(probe) * 1e5).rounded() / 1e5
        try DiffusersExport.writeVAE(trainer.store, config: exported, to: folder)
        progress(.exported(folder + "/vae"))
        if let export {
            try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true)
            try DiffusersExport.copyComponent(from: folder + "/vae", name: "vae", to: export, dtype: .float16)
            progress(.exported(export + "/vae"))
        }
        return exported.scalingFactor
    }
}

/// Stage 2 of the miniature: the text encoder and the UNet together, on VAE latents of ShapeWorld
/// renders. Captions are paraphrase-augmented (ShapeWorld's `TrainingPairSampler`) and 10% are
/// dropped to the empty prompt for classifier-free guidance. The tokenizer is written into the run
/// folder on first use. With `export` the model is written as a diffusers pipeline folder
/// (UNet and VAE in float16, the text encoder in float32).
public struct TextToImageRecipe {
    public var folder: String
    /// The trained VAE in diffusers layout (stage 1's `vae/`).
    public var vae: String
    public var settings: RunSettings
    public var export: String?
    /// The UNet's first block width (``Miniature/unetConfig(width:)``).
    public var unetWidth: Int

    public init(folder: String, vae: String, settings: RunSettings, export: String? = nil, unetWidth: Int = 64) {
        self.folder = folder
        self.vae = vae
        self.settings = settings
        self.export = export
        self.unetWidth = unetWidth
    }

    public func run(progress: (RunEvent) -> Void = { _ in }) throws {
        try settings.validate()
        guard unetWidth >= 16, unetWidth <= 1024, unetWidth % 16 == 0 else {
            throw MiniatureError.invalidSettings("unet-width must be a multiple of 16 in 16…1024, got \(unetWidth)")
        }
        try RunLock.createFolder(folder)
        let vaeModel = try AutoencoderKL.load(folder: vae)
        let tokenizerFolder = folder + "/tokenizer"
        if !FileManager.default.fileExists(atPath: tokenizerFolder + "/tokenizer.json") {
            try MiniatureTokenizer.write(vocabulary: MiniatureTokenizer.vocabulary(seed: 7, samples: 20_000),
                                         maxLength: Miniature.maxLength, to: tokenizerFolder)
        }
        let tokenizer = try PipelineTokenizer.load(folder: tokenizerFolder, maxLength: Miniature.maxLength)
        let textConfig = Miniature.textConfig(vocabularySize: tokenizer.base.vocabularySize)
        let unetConfig = Miniature.unetConfig(width: unetWidth)
        let schedule = settings.schedule
        let trainer = try TextToImageTrainer(
            textConfig: textConfig, unetConfig: unetConfig, scheduler: Miniature.scheduler(className: "DDPMScheduler"),
            tokenizer: tokenizer, seed: settings.seed, schedule: schedule)
        let latentNoise = try Generator(seed: settings.seed &+ 17)
        _ = try runStage("t2i", folder: folder, settings: settings, trainer: trainer, columns: ["loss"],
                         progress: progress) {
            let data = Miniature.trainingBatch(seed: settings.seed &+ 1, step: trainer.step, size: settings.batch)
            // Posterior draws seeded by step, so a resumed run encodes exactly as the first would have.
            try latentNoise.setState(try Generator(seed: settings.seed &+ UInt64(trainer.step) &* 31).state)
            let latents = withNoGrad { vaeModel.scale(vaeModel.encode(data.images).sample(generator: latentNoise)) }
            let loss = trainer.trainStep(latents: latents, captions: data.captions)
            return ([loss], String(format: "loss %.5f", loss))
        }
        guard let export else { return }
        try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true)
        // The text encoder stays float32: transformers 5 loads a checkpoint in its own dtype, and a half
        // text encoder next to diffusers' float32 UNet would not run in StableDiffusionPipeline.
        try DiffusersExport.writeTextEncoder(trainer.textStore, config: textConfig, to: export)
        try DiffusersExport.writeUNet(trainer.unetStore, config: unetConfig, to: export, dtype: .float16)
        try DiffusersExport.copyComponent(from: vae, name: "vae", to: export, dtype: .float16)
        try DiffusersExport.writeScheduler(Miniature.scheduler(className: "DDIMScheduler"), to: export)
        let tokenizerOut = export + "/tokenizer"
        try FileManager.default.createDirectory(atPath: tokenizerOut, withIntermediateDirectories: true)
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try? FileManager.default.removeItem(atPath: tokenizerOut + "/" + file)
            try FileManager.default.copyItem(atPath: tokenizerFolder + "/" + file, toPath: tokenizerOut + "/" + file)
        }
        try DiffusersExport.writeModelIndex(to: export, schedulerClass: "DDIMScheduler",
                                            tokenizerClass: "PreTrainedTokenizerFast")
        progress(.exported(export))
    }
}

/// Copies every file of `source` into `destination` (created if needed), replacing files of the same name.
func copyFolderFiles(from source: String, to destination: String) throws {
    try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
    for file in try FileManager.default.contentsOfDirectory(atPath: source) {
        try? FileManager.default.removeItem(atPath: destination + "/" + file)
        try FileManager.default.copyItem(atPath: source + "/" + file, toPath: destination + "/" + file)
    }
}
