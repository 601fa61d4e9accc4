import ArgumentParser
import Diffusion
import Foundation
import ShapeWorld
import Tokenizers
import Torch
import TorchNN

/// The miniature's WordLevel tokenizer: every word of a large sample of training captions
/// (lower-cased, split as the `Whitespace` pre-tokenizer splits), `<unk>` for the rest, and CLIP's
/// start/end tokens around each prompt. Written as a Hugging Face `tokenizer.json`.
enum MiniatureTokenizer {
    static let specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]

    static func words(in text: String) -> [String] {
        let lower = text.lowercased()
        let regex = try! NSRegularExpression(pattern: #"\w+|[^\w\s]+"#)
        return regex.matches(in: lower, range: NSRange(lower.startIndex..., in: lower)).map {
            String(lower[Range($0.range, in: lower)!])
        }
    }

    /// Words of `samples` training captions drawn from `seed`, sorted.
    static func vocabulary(seed: UInt64, samples: Int) -> [String] {
        var rng = SplitMix64(seed: seed)
        let sampler = TrainingPairSampler()
        var seen = Set<String>()
        for _ in 0..<samples { seen.formUnion(words(in: sampler.sample(rng: &rng).caption)) }
        return seen.sorted()
    }

    static func write(vocabulary: [String], maxLength: Int, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var vocab: [String: Int] = [:]
        for (i, token) in (specials + vocabulary).enumerated() { vocab[token] = i }
        func special(_ token: String) -> [String: Any] {
            ["id": vocab[token]!, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        func specialRef(_ token: String) -> [String: Any] { ["SpecialToken": ["id": token, "type_id": 0]] }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": specials.map(special),
            "normalizer": ["type": "Lowercase"], "pre_tokenizer": ["type": "Whitespace"],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [specialRef("<|startoftext|>"), ["Sequence": ["id": "A", "type_id": 0]],
                           specialRef("<|endoftext|>")],
                "pair": [["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                "special_tokens": [
                    "<|startoftext|>": ["id": "<|startoftext|>", "ids": [vocab["<|startoftext|>"]!],
                                        "tokens": ["<|startoftext|>"]],
                    "<|endoftext|>": ["id": "<|endoftext|>", "ids": [vocab["<|endoftext|>"]!],
                                      "tokens": ["<|endoftext|>"]],
                ],
            ],
            "decoder": NSNull(),
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"],
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                            to: folder + "/tokenizer.json")
        let config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": maxLength,
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
            "unk_token": "<unk>",
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]),
                            to: folder + "/tokenizer_config.json")
    }
}

/// The miniature's text encoder, UNet and noise schedule.
enum Miniature {
    static let maxLength = 32

    static func textConfig(vocabularySize: Int) -> CLIPTextConfig {
        var c = CLIPTextConfig()
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads) =
            (vocabularySize, 128, 512, 3, 4)
        (c.maxPositionEmbeddings, c.projectionDim, c.hiddenAct) = (maxLength, 128, .gelu)
        (c.padTokenId, c.bosTokenId, c.eosTokenId) = (3, 2, 3)
        return c
    }

    static func unetConfig() -> UNet2DConditionConfig {
        var c = UNet2DConditionConfig()
        c.sampleSize = .one(16)
        c.blockOutChannels = [64, 128, 128]
        c.downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
        c.upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        c.layersPerBlock = .one(1)
        c.crossAttentionDim = .one(128)
        c.attentionHeadDim = .one(4)
        c.normNumGroups = 16
        return c
    }

    /// SD's noise schedule; sampling ships with DDIM on it.
    static func scheduler(className: String) -> SchedulerConfig {
        var c = SchedulerConfig()
        c.className = className
        (c.betaStart, c.betaEnd, c.betaSchedule) = (0.00085, 0.012, "scaled_linear")
        (c.clipSample, c.setAlphaToOne, c.stepsOffset) = (false, false, 1)
        return c
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

    @Option(help: "Stop (saving, and exporting with --export) at this step; the same command later continues.")
    var until: Int?

    func run() throws {
        if let t = options.threads { Threads.count = t }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let vaeModel = try AutoencoderKL.load(folder: vae)
        let tokenizerFolder = folder + "/tokenizer"
        if !FileManager.default.fileExists(atPath: tokenizerFolder + "/tokenizer.json") {
            try MiniatureTokenizer.write(vocabulary: MiniatureTokenizer.vocabulary(seed: 7, samples: 20_000),
                                         maxLength: Miniature.maxLength, to: tokenizerFolder)
        }
        let tokenizer = try PipelineTokenizer.load(folder: tokenizerFolder, maxLength: Miniature.maxLength)
        let vocabularySize = (tokenizer as! PipelineTokenizer).base.vocabularySize
        let textConfig = Miniature.textConfig(vocabularySize: vocabularySize)
        let unetConfig = Miniature.unetConfig()
        let schedule = LRSchedule.warmupCosine(peak: options.lr, warmup: options.warmup, total: options.steps,
                                               minimum: options.lr * 0.1)
        let trainer = try TextToImageTrainer(
            textConfig: textConfig, unetConfig: unetConfig, scheduler: Miniature.scheduler(className: "DDPMScheduler"),
            tokenizer: tokenizer, seed: options.seed, schedule: schedule)
        let checkpoint = folder + "/checkpoint.safetensors"
        let log = LossLog(path: folder + "/loss.csv", columns: ["loss", "lr", "seconds"])
        let signature = "t2i steps=\(options.steps) batch=\(options.batch) lr=\(options.lr) seed=\(options.seed)"
        try resumeRun(checkpoint: checkpoint, signature: signature, log: log) {
            try trainer.resume(from: $0)
            return trainer.step
        }
        let latentNoise = try Generator(seed: options.seed &+ 17)
        let start = Date()
        let startStep = trainer.step
        let stop = Swift.min(until ?? options.steps, options.steps)
        while trainer.step < stop {
            let stepStart = Date()
            let data = trainingBatch(seed: options.seed &+ 1, step: trainer.step, size: options.batch)
            // Posterior draws seeded by step, so a resumed run encodes exactly as the first would have.
            try latentNoise.setState(try Generator(seed: options.seed &+ UInt64(trainer.step) &* 31).state)
            let latents = withNoGrad { vaeModel.scale(vaeModel.encode(data.images).sample(generator: latentNoise)) }
            let loss = trainer.trainStep(latents: latents, captions: data.captions)
            guard loss.isFinite else {
                throw CLIError("loss became \(loss) at step \(trainer.step); last good checkpoint: \(checkpoint)")
            }
            try log.append([loss, schedule.rate(at: trainer.step - 1), Date().timeIntervalSince(stepStart)],
                           step: trainer.step)
            if trainer.step % options.saveEvery == 0 || trainer.step == stop {
                try trainer.save(to: checkpoint, metadata: ["run": signature])
                try writeLossPlot(log: log, to: folder + "/loss.png")
            }
            reportProgress(step: trainer.step, total: stop, since: start, fromStep: startStep,
                           text: String(format: "loss %.5f", loss))
        }
        if let export {
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
            print("exported \(export)")
        }
    }
}
