import ArgumentParser
import Foundation
import Miniature
import PromptLoop
import ShapeWorld
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
        subcommands: [PretrainVAE.self, PretrainT2I.self, PretrainPolicy.self, PretrainProxy.self])
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

    @Option(help: "Stop after this many steps in a row skipped for a non-finite loss or gradient.")
    var maxNonfinite = 3

    @Option(help: "libtorch threads (default: all cores).")
    var threads: Int?

    var settings: RunSettings {
        var s = RunSettings(steps: steps, batch: batch, lr: lr, warmup: warmup, seed: seed, saveEvery: saveEvery,
                            until: until)
        s.maxNonfinite = maxNonfinite
        return s
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

    @Option(help: "The UNet's first block width: channels [w, 2w, 2w], a multiple of 16 (64 for the embedded model, 48 for the transfer backbone). Keep it the same when resuming.")
    var unetWidth = 64

    @OptionGroup var options: RunOptions

    func run() throws {
        options.apply()
        try TextToImageRecipe(folder: folder, vae: vae, settings: options.settings, export: export, unetWidth: unetWidth)
            .run(progress: printRunEvent)
    }
}

struct PretrainPolicy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Pretrain the miniature's LLaVA policy to describe x̂₀ images and to paraphrase queries.",
        discussion: """
            The analogue of the paper's instruction-tuned MLLM: it learns to see and to rewrite and \
            never sees the reward. Half the examples describe an image (a clean render or the \
            diffusion model's x̂₀ of a noised render) in ShapeWorld's words, labelled with the scene's \
            truth; half rewrite a query given `query: …`, `prompt: …` and a progress word, with an x̂₀ \
            image in 60% of them, into a paraphrase of the query. No training query has the \
            constraints of a prompt in --exclude, and no scene touches the v1 hold-out. The model \
            folder is RUN/policy; --export copies it when the run is done.
            """)

    @Option(name: .customLong("run"), help: "Run folder (checkpoint, logs, and the model in policy/).")
    var folder = "runs/policy"

    @Option(help: "The diffusion model whose x̂₀ decodes the policy learns to read (default: the embedded one).")
    var diffusion: String?

    @Option(help: "Prompt sets whose queries the policy must never train on (repeatable).")
    var exclude: [String] = ["Data/shapeworld/v1/eval.jsonl", "Data/shapeworld/v1/novel.jsonl"]

    @Option(help: "Copy the finished model folder here (e.g. Models/shapeworld-policy).")
    var export: String?

    @Option(name: .customLong("init"),
            help: "Start from this policy folder's weights, config and tokenizer instead of a fresh model.")
    var initial: String?

    @Option(help: "Share of describe examples; the rest are rewrites.")
    var describeFraction = 0.5

    @Option(help: "Share of rewrite examples whose reply is the query as written (the rest paraphrases).")
    var copyFraction = 0.0

    @OptionGroup var options: RunOptions

    func run() throws {
        options.apply()
        guard let diffusion = diffusion ?? EmbeddedModels.diffusion else {
            throw CLIError("no --diffusion given and the embedded model is not in this checkout")
        }
        var excluded = Set<ConstraintSet>()
        for path in exclude { excluded.formUnion(try PromptSets.readJSONLines(path: path).map(\.constraints)) }
        var recipe = PolicyRecipe(folder: folder, diffusion: diffusion, settings: options.settings,
                                  excluded: excluded, export: export)
        recipe.initial = initial
        recipe.describeFraction = describeFraction
        recipe.copyFraction = copyFraction
        try recipe.run(progress: printRunEvent)
    }
}

struct PretrainProxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Train the learned reward: a small CLIP whose image–query cosine predicts ShapeEval soft.",
        discussion: """
            The differentiable proxy of ShapeEval that ReFL trains through and the reward-hacking study \
            optimises. First a pool of the diffusion model's own samples of training queries is \
            sampled (DDIM, 20 steps, guidance 5) into RUN/pool in chunks (a killed run keeps the \
            chunks it finished); then each batch pairs pool images with their own query (half) or \
            another training query (a quarter) and clean ShapeWorld renders with their caption or a \
            training query (a quarter), labelled with ShapeEval soft, and the cosine regresses it (MSE). \
            When done, RUN/proxy is a transformers CLIPModel folder, and its agreement with ShapeEval on \
            samples of the --held-out queries (never trained on) is in RUN/agreement.json.
            """)

    @Option(name: .customLong("run"), help: "Run folder (pool, checkpoint, logs, and the model in proxy/).")
    var folder = "runs/proxy"

    @Option(help: "The diffusion model whose samples the proxy learns to score (default: the embedded one).")
    var diffusion: String?

    @Option(help: "Training queries.")
    var trainSet = "Data/shapeworld/v1/train.jsonl"

    @Option(help: "Queries whose samples measure agreement (never trained on).")
    var heldOut = "Data/shapeworld/v1/eval.jsonl"

    @Option(help: "Pool chunks of --chunk-size samples.")
    var poolChunks = 6

    @Option(help: "Samples per pool chunk (and held-out samples for the agreement).")
    var chunkSize = 256

    @Option(help: "Copy the finished model folder here (e.g. Models/shapeworld-proxy).")
    var export: String?

    @OptionGroup var options: RunOptions

    func validate() throws {
        guard (1...100).contains(poolChunks) else { throw ValidationError("--pool-chunks must be in 1…100") }
        guard (2...4096).contains(chunkSize) else { throw ValidationError("--chunk-size must be in 2…4096") }
    }

    func run() throws {
        options.apply()
        guard let diffusion = diffusion ?? EmbeddedModels.diffusion else {
            throw CLIError("no --diffusion given and the embedded model is not in this checkout")
        }
        let train = try PromptSets.readJSONLines(path: trainSet)
        let heldOutQueries = try PromptSets.readJSONLines(path: heldOut)
        var recipe = ProxyRecipe(folder: folder, diffusion: diffusion, settings: options.settings, trainQueries: train,
                                 heldOutQueries: heldOutQueries, export: export)
        recipe.poolChunks = poolChunks
        recipe.chunkSize = chunkSize
        let meter = ProgressMeter(total: poolChunks, unit: "pool chunk")
        if let agreement = try recipe.run(progress: printRunEvent, poolProgress: { done, _ in
            report(meter, step: done, text: "sampling the pool")
        }) {
            print(String(format: "agreement with ShapeEval soft on %d held-out (image, query) pairs: Pearson %.3f, "
                         + "MAE %.3f, pairs of one query ordered alike %.3f (%d pairs)", agreement.images,
                         agreement.pearson, agreement.meanAbsoluteError, agreement.pairOrder, agreement.pairs))
        }
    }
}
