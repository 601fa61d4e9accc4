import ArgumentParser
import Foundation
import Miniature
import Torch
import Training

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Train the embedded miniature Stable Diffusion on ShapeWorld (VAE, then text encoder + UNet).",
        discussion: """
            Each stage writes into its run folder: checkpoint.safetensors (atomic, every --save-every \
            steps), loss.csv, loss.png and, when done, the model in diffusers layout. Running the same \
            command again resumes from the checkpoint with the same batches and noise. \
            Models/shapeworld-sd/RECIPE.md gives the commands that trained the shipped model.
            """,
        subcommands: [PretrainVAE.self, PretrainT2I.self])
}

struct RunOptions: ParsableArguments {
    @Option(help: "Total optimisation steps.")
    var steps: Int

    @Option(help: "Images per step.")
    var batch: Int

    @Option(help: "Peak learning rate.")
    var lr: Double

    @Option(help: "Linear warm-up steps.")
    var warmup = 100

    @Option(help: "Seed of the data stream and initialisation.")
    var seed: UInt64 = 0

    @Option(help: "Write a checkpoint every N steps.")
    var saveEvery = 50

    @Option(help: "Stop (saving) at this step; the same command later continues.")
    var until: Int?

    @Option(help: "libtorch threads (default: all cores).")
    var threads: Int?

    var settings: RunSettings {
        RunSettings(steps: steps, batch: batch, lr: lr, warmup: warmup, seed: seed, saveEvery: saveEvery, until: until)
    }

    func validate() throws {
        do { try settings.validate() } catch { throw ValidationError("\(error)") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive") }
    }

    func apply() {
        if let threads { Threads.count = threads }
    }
}

/// Prints what a training run reports.
func printRunEvent(_ event: RunEvent) {
    switch event {
    case .resumed(let checkpoint, let step): print("resumed \(checkpoint) at step \(step)")
    case .step(let progress, let step, let text): report(progress, step: step, text: text)
    case .exported(let path): print("exported \(path)")
    }
}

struct PretrainVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae", abstract: "Train the AutoencoderKL on ShapeWorld renders (64×64 → 16×16×4).")

    @Option(name: .customLong("run"), help: "Run folder (checkpoint, logs, and the exported vae/ at the end).")
    var folder = "runs/vae"

    @OptionGroup var options: RunOptions

    @Option(help: "Also write the finished VAE as DIR/vae with float16 weights (the shipped model's folder).")
    var export: String?

    func run() throws {
        options.apply()
        let scaling = try VAERecipe(folder: folder, settings: options.settings, export: export).run(progress: printRunEvent)
        if scaling > 0 { print("scaling_factor \(scaling)") }
    }
}

struct PretrainT2I: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t2i",
        abstract: "Train the text encoder and UNet together on VAE latents of ShapeWorld renders.",
        discussion: """
            Needs the VAE from `promptloop pretrain vae` (--vae). Captions are paraphrase-augmented \
            (ShapeWorld's TrainingPairSampler) and 10% are dropped to the empty prompt for \
            classifier-free guidance. With --export the finished model is written as a diffusers \
            pipeline folder (fp16 weights).
            """)

    @Option(name: .customLong("run"), help: "Run folder (checkpoint, logs, tokenizer).")
    var folder = "runs/t2i"

    @Option(help: "Trained VAE in diffusers layout.")
    var vae = "runs/vae/vae"

    @Option(help: "Write the finished pipeline here (diffusers layout).")
    var export: String?

    @OptionGroup var options: RunOptions

    func run() throws {
        options.apply()
        try TextToImageRecipe(folder: folder, vae: vae, settings: options.settings, export: export)
            .run(progress: printRunEvent)
    }
}
