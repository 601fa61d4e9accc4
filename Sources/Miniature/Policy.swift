// The policy of the miniature: a LLaVA-architecture model (CLIP vision tower reading the 64×64
// decoded x̂₀ directly, a two-layer projector, a Qwen2 decoder) with a WordLevel tokenizer over
// ShapeWorld's words and a ChatML template, in transformers' folder layout.
import Diffusion
import Foundation
import Imaging
import ShapeWorld
import Tokenizers
import Torch
import TorchNN
import Training
import VisionLanguage

public enum MiniaturePolicy {
    /// Special tokens, in id order: padding, unknown, the ChatML turn markers and the image placeholder.
    public static let specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "<image>"]
    /// Words of the chat and of the state (roles, field names, progress words) and the punctuation a
    /// rewrite needs.
    public static let stateWords = ["system", "user", "assistant", "query", "prompt", "describe", ":", ",", "."]
        + (0...10).map { "p\($0)" }
    /// The user turn of the describe task.
    public static let describeInstruction = "describe"

    /// Words of `samples` training captions, grammar prompts and their paraphrases drawn from `seed`
    /// (lower-cased, split as the `Whitespace` pre-tokenizer splits), with the state words; sorted.
    public static func vocabulary(seed: UInt64, samples: Int) -> [String] {
        var rng = SplitMix64(seed: seed)
        let sampler = TrainingPairSampler()
        let grammar = PromptGrammar()
        var seen = Set(stateWords)
        for i in 0..<samples {
            seen.formUnion(MiniatureTokenizer.words(in: sampler.sample(rng: &rng).caption))
            let category = PromptCategory.geneval[i % PromptCategory.geneval.count]
            let prompt = grammar.sample(category, rng: &rng)
            seen.formUnion(MiniatureTokenizer.words(in: prompt.text))
            seen.formUnion(MiniatureTokenizer.words(in: grammar.paraphraser.paraphrase(prompt.constraints, rng: &rng)))
        }
        return seen.subtracting(specials).sorted()
    }

    /// `config.json` of the policy (transformers `LlavaForConditionalGeneration`).
    public static func config(vocabularySize: Int) -> [String: Any] {
        [
            "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
            "image_token_index": specials.firstIndex(of: "<image>")!, "image_seq_length": 64,
            "projector_hidden_act": "gelu", "multimodal_projector_bias": true,
            "vision_feature_layer": -1, "vision_feature_select_strategy": "default",
            "tie_word_embeddings": false, "dtype": "float32",
            "text_config": [
                "model_type": "qwen2", "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4,
                "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu", "vocab_size": vocabularySize,
                "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
                "rope_parameters": ["rope_theta": 10000.0, "rope_type": "default"], "use_sliding_window": false,
                "sliding_window": NSNull(), "attention_dropout": 0.0,
                "bos_token_id": NSNull(), "eos_token_id": specials.firstIndex(of: "<|im_end|>")!,
                "pad_token_id": 0,
            ] as [String: Any],
            "vision_config": [
                "model_type": "clip_vision_model", "hidden_size": 128, "intermediate_size": 384,
                "num_hidden_layers": 3, "num_attention_heads": 4, "num_channels": 3, "image_size": 64,
                "patch_size": 8, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 128,
                "attention_dropout": 0.0,
            ] as [String: Any],
        ]
    }

    /// A ChatML template (recognised by transformers and by `ChatTemplate`).
    public static let chatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
        + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
        + "{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// Writes everything but the weights into `folder`: `config.json`, `generation_config.json`,
    /// `tokenizer.json`, `tokenizer_config.json` and `preprocessor_config.json` (the 64×64 image goes
    /// in as it is: no resize, no crop, CLIP's normalisation).
    public static func writeFolder(to folder: String, vocabulary: [String]) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func write(_ object: Any, _ name: String) throws {
            try writeAtomically(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
                                to: folder + "/" + name)
        }
        let tokens = specials + vocabulary
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        try write(config(vocabularySize: tokens.count), "config.json")
        try write(["eos_token_id": vocab["<|im_end|>"]!, "pad_token_id": 0, "do_sample": false], "generation_config.json")
        try write([
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": specials.map { t in
                ["id": vocab[t]!, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                 "normalized": false, "special": true] as [String: Any]
            },
            "normalizer": ["type": "Lowercase"], "pre_tokenizer": ["type": "Whitespace"],
            "post_processor": NSNull(), "decoder": NSNull(),
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"],
        ] as [String: Any], "tokenizer.json")
        try write([
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, "chat_template": chatTemplate,
            "eos_token": "<|im_end|>", "pad_token": "<pad>", "unk_token": "<unk>",
            "extra_special_tokens": ["<image>"],
        ] as [String: Any], "tokenizer_config.json")
        try write([
            "image_processor_type": "CLIPImageProcessor", "do_resize": false, "do_center_crop": false,
            "size": ["shortest_edge": 64], "crop_size": ["height": 64, "width": 64], "resample": 3,
            "do_rescale": true, "rescale_factor": 1.0 / 255, "do_normalize": true, "do_convert_rgb": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        ] as [String: Any], "preprocessor_config.json")
    }

    /// The on-disk key transformers 5 writes for a module key (the inverse of `LlavaModel.sanitize`).
    public static func checkpointKey(_ key: String) -> String {
        let rules: [(String, String)] = [
            ("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head."),
            ("model.vision_tower.", "vision_tower."), ("model.multi_modal_projector.", "multi_modal_projector."),
        ]
        for (module, disk) in rules where key.hasPrefix(module) { return disk + key.dropFirst(module.count) }
        return key
    }
}

extension PromptCategory {
    /// GenEval's six categories (no `dense`).
    public static let geneval: [PromptCategory] = [.singleObject, .twoObjects, .counting, .colors, .position,
                                                   .colorAttribution]
}

// MARK: - Training data

/// One supervised example: the user turn (with an image or not) and the reply to learn.
public struct PolicyExample: Sendable {
    public enum Task: String, Sendable { case describe, rewrite }
    public var task: Task
    public var user: String
    public var image: RGBImage?
    public var reply: String
    /// The noise level the image was made at (nil: a clean render, or no image).
    public var timestep: Int?
    /// The scene the image shows (describe) or the query's constraints (rewrite).
    public var constraints: ConstraintSet
}

/// The pretraining data of the policy — the analogue of an instruction-tuned MLLM's data: it learns to
/// see and to rewrite, never the reward.
///
/// - describe: an image → its scene's dense caption (the scene's truth, not the detector's reading);
///   the image is a clean render or the miniature's x̂₀ from a noised render (VAE-encode, noise to a
///   random t, one guided UNet pass with the caption).
/// - rewrite: `query / prompt / pN` (+ an x̂₀ image in a share of the examples) → a paraphrase of the
///   query, or (a `copyFraction` share) the query as written — an editor's prior rather than a
///   paraphraser's, so a rewriter starts where plain sampling is. The current prompt is the query or a
///   paraphrase of it.
///
/// No scene or prompt touches `HoldOut.v1`, and no query has the constraints of an excluded set (the
/// eval and novel prompt sets). Every batch is a pure function of (seed, step).
public final class PolicyData {
    public let pipeline: StableDiffusionPipeline
    public let excluded: Set<ConstraintSet>
    public var describeFraction = 0.5
    /// Share of rewrite examples whose reply is the query as written (0: every reply a paraphrase, as
    /// the shipped policy was trained; no random draw is spent on it then, so its batches stay the same).
    public var copyFraction = 0.0
    /// Share of describe images that are x̂₀ decodes rather than clean renders.
    public var denoisedFraction = 0.6
    /// Share of rewrite examples that carry an image.
    public var rewriteImageFraction = 0.6
    /// Sampling steps the progress word refers to.
    public var totalSteps = 20
    let alphasCumprod: [Float]
    let grammar = PromptGrammar()
    let sampler = TrainingPairSampler(denseFraction: 1, paraphraseFraction: 0)

    /// - Parameter excluded: constraint sets no query may have (canonical forms are compared).
    public init(pipeline: StableDiffusionPipeline, excluded: Set<ConstraintSet>) {
        self.pipeline = pipeline
        self.excluded = Set(excluded.map { $0.canonical() })
        var c = SchedulerConfig()
        (c.betaStart, c.betaEnd, c.betaSchedule) = (0.00085, 0.012, "scaled_linear")
        alphasCumprod = c.alphasCumprod
    }

    /// The examples of `step`.
    public func batch(seed: UInt64, step: Int, size: Int) throws -> [PolicyExample] {
        // One independent stream per step: seeding with seed + step·γ (as `Miniature.trainingBatch`
        // does) hands each step the previous step's stream shifted by one draw, and the batches of
        // consecutive steps fall back into step after a few examples — a policy trained so saw a few
        // hundred examples again and again and memorised them (training loss 0.02, 1.3 on a fresh batch).
        var rng = SplitMix64(seed: seed, stream: UInt64(step))
        var examples: [PolicyExample] = []
        var pending: [(index: Int, scene: Scene, caption: String, t: Int)] = []
        for _ in 0..<size {
            if rng.uniform() < describeFraction {
                let pair = sampler.sample(rng: &rng)
                let caption = grammar.denseCaption(of: pair.scene)
                let denoised = rng.uniform() < denoisedFraction
                let t = denoised ? 1 + rng.int(below: 999) : 0
                examples.append(PolicyExample(task: .describe, user: MiniaturePolicy.describeInstruction,
                                              image: Renderer().render(pair.scene), reply: caption.text,
                                              timestep: denoised ? t : nil, constraints: caption.constraints))
                if denoised { pending.append((examples.count - 1, pair.scene, caption.text, t)) }
            } else {
                let query = try self.query(rng: &rng)
                let prompt = rng.uniform() < 0.7 ? query.text : grammar.paraphraser.paraphrase(query.constraints, rng: &rng)
                let k = rng.int(below: totalSteps - 1)
                let state = "query: \(query.text)\nprompt: \(prompt)\n"
                    + "p\(Int((10 * Double(k + 1) / Double(totalSteps)).rounded()))"
                let reply = copyFraction > 0 && rng.uniform() < copyFraction
                    ? query.text : grammar.paraphraser.paraphrase(query.constraints, rng: &rng)
                var example = PolicyExample(task: .rewrite, user: state, image: nil, reply: reply, timestep: nil,
                                            constraints: query.constraints)
                if rng.uniform() < rewriteImageFraction,
                   let scene = try? SceneSampler(holdOut: .v1).scene(for: query.constraints, rng: &rng) {
                    // The x̂₀ the pipeline would show after step k of a 20-step run under `prompt`.
                    let t = Swift.max(1, 999 - (k * 1000 / totalSteps))
                    example.image = Renderer().render(scene)
                    example.timestep = t
                    examples.append(example)
                    pending.append((examples.count - 1, scene, prompt, t))
                } else {
                    examples.append(example)
                }
            }
        }
        if !pending.isEmpty {
            let noise = try Generator(seed: seed &+ UInt64(step) &* 31 &+ 7)
            let decoded = denoisedEstimates(pending.map { examples[$0.index].image! }, prompts: pending.map(\.caption),
                                            timesteps: pending.map(\.t), generator: noise)
            for (p, image) in zip(pending, decoded) { examples[p.index].image = image }
        }
        return examples
    }

    /// A GenEval-category query outside the hold-out and the excluded sets.
    func query(rng: inout SplitMix64) throws -> Prompt {
        for _ in 0..<1000 {
            let category = PromptCategory.geneval[rng.int(below: PromptCategory.geneval.count)]
            let prompt = grammar.samples(category, count: 1, excludingHoldOut: true, rng: &rng)[0]
            if !excluded.contains(prompt.constraints.canonical()) { return prompt }
        }
        throw MiniatureError.invalidSettings("no query outside the excluded prompt sets in 1,000 draws")
    }

    /// x̂₀ of renders noised to `timesteps`: VAE-encode (mean), noise, one guided UNet pass (guidance 5,
    /// as the evaluation protocol), Tweedie's estimate, VAE decode.
    public func denoisedEstimates(_ images: [RGBImage], prompts: [String], timesteps: [Int],
                                  generator: Generator) -> [RGBImage] {
        withNoGrad {
            let vae = pipeline.vae
            let latents = vae.scale(vae.encode(Tensor.images(images)).mean).to(pipeline.unet.dtype)
            let b = images.count
            let ab = Tensor(timesteps.map { alphasCumprod[$0] }, shape: [b, 1, 1, 1]).to(latents.dtype)
            let noise = Tensor.randn(latents.shape, generator: generator).to(latents.dtype)
            let noisy = latents * ab.sqrt() + noise * (1 - ab).sqrt()
            let positive = prompts.compactMap { try? pipeline.embed($0).context }
            let negative = (try? pipeline.embed(""))?.context
            guard positive.count == b, let negative else { return images }
            let context = Tensor.cat(Array(repeating: negative, count: b) + positive, dim: 0)
            let t = Tensor(timesteps.map(Int64.init) + timesteps.map(Int64.init))
            let eps2 = pipeline.unet(Tensor.cat([noisy, noisy], dim: 0), timestep: t, context: context)
            let parts = eps2.chunk(2, dim: 0)
            let eps = parts[0] + (parts[1] - parts[0]) * 5.0
            let x0 = (noisy - eps * (1 - ab).sqrt()) / ab.sqrt()
            return pipeline.decodeImages(x0)
        }
    }
}

// MARK: - Trainer

/// Supervised training of the whole policy (vision tower, projector, decoder) on ``PolicyExample``s:
/// cross-entropy of the reply tokens and the closing `<|im_end|>`, the prompt not scored.
public final class PolicyTrainer {
    public let store: ParameterStore
    public let model: LlavaModel
    public let tokenizer: PreTrainedTokenizer
    public let template: ChatTemplate
    public let processor: ImageProcessor
    public let optimizer: AdamW
    public let schedule: LRSchedule
    public private(set) var step = 0
    /// Why the last step's update was skipped (a non-finite loss or gradient), or nil.
    public private(set) var lastSkipReason: String?
    let endId: Int

    /// A freshly initialised policy for the folder's config and tokenizer (``MiniaturePolicy/writeFolder(to:vocabulary:)``).
    public init(folder: String, seed: UInt64, schedule: LRSchedule) throws {
        let config = try ModelFolder.config(LlavaConfig.self, in: folder)
        try config.validate(file: folder + "/config.json")
        store = try ParameterStore(seed: seed)
        model = try LlavaModel(config: config, path: store.root)
        tokenizer = try PreTrainedTokenizer(tokenizerJSON: URL(fileURLWithPath: folder + "/tokenizer.json"))
        guard let template = try ChatTemplate.load(folder: folder) else {
            throw ModelError.badConfig(file: folder + "/tokenizer_config.json", message: "no chat_template")
        }
        self.template = template
        processor = try ImageProcessor.load(folder: folder)
        guard let end = tokenizer.tokenToId("<|im_end|>") else {
            throw ModelError.badConfig(file: folder + "/tokenizer.json", message: "no <|im_end|> token")
        }
        endId = end
        optimizer = AdamW(store.trainableTensors, learningRate: schedule.rate(at: 0), betas: (0.9, 0.98),
                          weightDecay: 0.01)
        self.schedule = schedule
    }

    /// The prompt ids of an example's user turn (image tokens expanded) and its reply ids.
    public func encode(_ example: PolicyExample) -> (prompt: [Int], reply: [Int]) {
        let content = example.image == nil ? example.user : "<image>\n" + example.user
        let text = template.render([.user(content)])
        let prompt = model.expandImageTokens(tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: false)).ids)
        let reply = tokenizer.encode(example.reply, options: EncodingOptions(addSpecialTokens: false)).ids + [endId]
        return (prompt, reply)
    }

    /// Mean negative log-likelihood of the reply tokens (a graph to differentiate).
    public func loss(_ examples: [PolicyExample]) throws -> Tensor {
        let encoded = examples.map(encode)
        let width = encoded.map { $0.prompt.count + $0.reply.count }.max() ?? 1
        var ids: [Int64] = []
        var mask: [Float] = []
        for (prompt, reply) in encoded {
            let row = prompt + reply
            ids += row.map(Int64.init) + Array(repeating: 0, count: width - row.count)
            // Position j predicts token j + 1: score the positions whose next token is in the reply.
            for j in 0..<(width - 1) { mask.append(j + 1 >= prompt.count && j + 1 < row.count ? 1 : 0) }
        }
        let b = examples.count
        let idTensor = Tensor(ids, shape: [b, width])
        let images = examples.compactMap(\.image)
        let pixels = images.isEmpty ? nil
            : try processor(Tensor.cat(images.map { Tensor($0.planar(), shape: [1, 3, $0.height, $0.width]) }, dim: 0))
        // Right padding under a causal mask: real tokens never attend to the padding after them.
        let logits = try model(idTensor, pixels: pixels).narrow(dim: 1, start: 0, length: width - 1)
        let targets = idTensor.narrow(dim: 1, start: 1, length: width - 1)
        let logp = logits.logSoftmax(dim: -1).gather(dim: 2, index: targets.unsqueeze(2)).squeeze(2)
        let m = Tensor(mask, shape: [b, width - 1])
        return -(logp * m).sum() / m.sum().clamp(min: 1)
    }

    /// One optimisation step; returns the loss.
    @discardableResult
    public func trainStep(_ examples: [PolicyExample]) throws -> Double {
        optimizer.learningRate = schedule.rate(at: step)
        optimizer.zeroGrad()
        let l = try loss(examples)
        let outcome = guardedStep(l, optimizer: optimizer, maxNorm: 1, step: step + 1)
        lastSkipReason = outcome.skipReason
        step += 1
        return outcome.loss
    }

    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try TrainingCheckpoint.save(to: path, stores: ["policy": store], optimizer: optimizer, generators: [:],
                                    step: step, metadata: metadata)
    }

    public func resume(from path: String) throws {
        step = try TrainingCheckpoint.load(from: path, stores: ["policy": store], optimizer: optimizer,
                                           generators: [:]).step
    }

    /// Writes the weights as `model.safetensors` with transformers 5's LLaVA keys.
    public func exportWeights(to folder: String) throws {
        var tensors: [String: Tensor] = [:]
        for (key, t) in store.state(.all) { tensors[MiniaturePolicy.checkpointKey(key)] = t }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: folder + "/model.safetensors")
    }
}

// MARK: - Recipe

/// Pretraining of the miniature's policy (`promptloop pretrain policy`): the folder files are
/// written into `folder/policy` on first use, the run checkpoints into `folder` and resumes with the
/// same batches, and when done `folder/policy` is a complete transformers folder (copied to
/// `export` when given).
public struct PolicyRecipe {
    public var folder: String
    /// The miniature diffusion model whose x̂₀ decodes the policy learns to read.
    public var diffusion: String
    public var settings: RunSettings
    public var export: String?
    /// Constraint sets no training query may have (the eval and novel prompt sets).
    public var excluded: Set<ConstraintSet>
    /// A policy folder to start from (its config, tokenizer and weights) instead of a fresh one.
    public var initial: String?
    /// Share of describe examples (the rest rewrite).
    public var describeFraction = 0.5
    /// Share of rewrite examples whose reply is the query as written (``PolicyData/copyFraction``).
    public var copyFraction = 0.0

    public init(folder: String, diffusion: String, settings: RunSettings, excluded: Set<ConstraintSet>,
                export: String? = nil) {
        self.folder = folder
        self.diffusion = diffusion
        self.settings = settings
        self.excluded = excluded
        self.export = export
    }

    public func run(progress: (RunEvent) -> Void = { _ in }) throws {
        try settings.validate()
        try RunLock.createFolder(folder)
        guard (0...1).contains(describeFraction) else {
            throw MiniatureError.invalidSettings("describe fraction \(describeFraction) is not in [0, 1]")
        }
        guard (0...1).contains(copyFraction) else {
            throw MiniatureError.invalidSettings("copy fraction \(copyFraction) is not in [0, 1]")
        }
        let modelFolder = folder + "/policy"
        if !FileManager.default.fileExists(atPath: modelFolder + "/config.json") {
            if let initial {
                try FileManager.default.createDirectory(atPath: modelFolder, withIntermediateDirectories: true)
                for file in ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
                             "tokenizer_config.json"] {
                    let source = initial + "/" + file
                    guard FileManager.default.fileExists(atPath: source) else { continue }
                    try FileManager.default.copyItem(atPath: source, toPath: modelFolder + "/" + file)
                }
            } else {
                try MiniaturePolicy.writeFolder(to: modelFolder,
                                                vocabulary: MiniaturePolicy.vocabulary(seed: 11, samples: 20_000))
            }
        }
        let pipeline = try StableDiffusionPipeline.load(folder: diffusion, scheduler: "ddim")
        let data = PolicyData(pipeline: pipeline, excluded: excluded)
        data.describeFraction = describeFraction
        data.copyFraction = copyFraction
        let trainer = try PolicyTrainer(folder: modelFolder, seed: settings.seed, schedule: settings.schedule)
        if let initial {
            // The starting weights; a checkpoint in the run folder (a resume) replaces them in runStage.
            let source = RenamedSource(try ModelFolder.weights(in: initial), rename: LlavaModel.sanitize)
            try trainer.store.load(from: source, selection: .all)
        }
        let finished = try runStage("policy", folder: folder, settings: settings, trainer: trainer, columns: ["loss"],
                                    progress: progress) {
            let loss = try trainer.trainStep(try data.batch(seed: settings.seed, step: trainer.step, size: settings.batch))
            return ([loss], String(format: "loss %.4f", loss))
        }
        guard finished else { return }
        try trainer.exportWeights(to: modelFolder)
        progress(.exported(modelFolder))
        if let export {
            try copyFolderFiles(from: modelFolder, to: export)
            progress(.exported(export))
        }
    }
}

// MARK: - Report

/// How well a pretrained policy sees and rewrites, on images and queries it never trained on.
public struct PolicyReport: Sendable {
    public struct Row: Sendable {
        /// `clean`, or the noise level t of the x̂₀ the policy read.
        public var condition: String
        public var count: Int
        /// The description, parsed, equals the scene's constraints (every object, count, colour, size).
        public var exact: Double
        /// ShapeEval passes the clean render against the parsed description (everything said is true).
        public var truthful: Double
    }

    public var describe: [Row] = []
    /// Share of rewrites whose parsed constraints equal the query's, without and with an x̂₀ image.
    public var rewriteKept: (withoutImage: Double, withImage: Double) = (0, 0)
    public var rewriteCount = 0
    /// A few (query, rewrite) pairs to show.
    public var examples: [(query: String, rewrite: String)] = []

    public var markdown: String {
        var lines = ["| image | scenes | description exact | description true of the scene |", "|---|---|---|---|"]
        for r in describe {
            lines.append(String(format: "| %@ | %d | %.3f | %.3f |", r.condition, r.count, r.exact, r.truthful))
        }
        lines.append("")
        lines.append(String(format: "Rewrites that keep the query's constraints (%d eval queries): %.3f without an image, "
            + "%.3f with x̂₀ at t = 551.", rewriteCount, rewriteKept.withoutImage, rewriteKept.withImage))
        return lines.joined(separator: "\n")
    }

    /// Describes `count` fresh scenes per condition (clean, x̂₀ at t = 151, 551, 951) and rewrites the
    /// `queries` (eval prompts: never in the policy's data) without and with an image; greedy.
    public static func measure(chat: LlavaChat, data: PolicyData, count: Int, queries: [PromptRecord],
                               seed: UInt64 = 0xE7A1_5EED, progress: (String) -> Void = { _ in }) throws -> PolicyReport {
        let sampling = SamplingConfig(greedy: true, maxNewTokens: 48)
        let parser = PromptParser()
        let shapeEval = ShapeEval()
        let grammar = PromptGrammar()
        var report = PolicyReport()
        func reply(_ user: String, _ images: [RGBImage?]) throws -> [String] {
            try chat.replies(users: Array(repeating: user, count: images.count), images: images, sampling: sampling).texts
        }
        var rng = SplitMix64(seed: seed)
        let sampler = TrainingPairSampler(denseFraction: 1, paraphraseFraction: 0)
        let scenes = (0..<count).map { _ in sampler.sample(rng: &rng).scene }
        let renders = scenes.map { Renderer().render($0) }
        let truth = scenes.map { grammar.denseCaption(of: $0) }
        for t in [0, 151, 551, 951] {
            progress(t == 0 ? "describe: clean renders" : "describe: x̂₀ at t = \(t)")
            var images = renders
            if t > 0 {
                images = []
                for start in stride(from: 0, to: count, by: 16) {
                    let end = Swift.min(start + 16, count)
                    images += data.denoisedEstimates(Array(renders[start..<end]), prompts: truth[start..<end].map(\.text),
                                                     timesteps: Array(repeating: t, count: end - start),
                                                     generator: try Generator(seed: seed &+ UInt64(start + t)))
                }
            }
            var exact = 0, truthful = 0
            for start in stride(from: 0, to: count, by: 16) {
                let end = Swift.min(start + 16, count)
                let texts = try reply(MiniaturePolicy.describeInstruction, images[start..<end].map { $0 })
                for (i, text) in zip(start..<end, texts) {
                    let said = parser.parse(text).constraints
                    if said.canonical() == truth[i].constraints.canonical() { exact += 1 }
                    if !said.objects.isEmpty, shapeEval.score(renders[i], said).strict == 1 { truthful += 1 }
                }
            }
            report.describe.append(Row(condition: t == 0 ? "clean render" : "x̂₀ at t = \(t)", count: count,
                                       exact: Double(exact) / Double(count), truthful: Double(truthful) / Double(count)))
        }
        progress("rewrite")
        var kept = (0, 0)
        for start in stride(from: 0, to: queries.count, by: 16) {
            let chunk = Array(queries[start..<Swift.min(start + 16, queries.count)])
            let users = chunk.map { "query: \($0.prompt)\nprompt: \($0.prompt)\np3" }
            var withImages: [RGBImage?] = []
            for record in chunk {
                var r = SplitMix64(seed: record.seed)
                if let scene = try? SceneSampler().scene(for: record.constraints, rng: &r) {
                    withImages.append(data.denoisedEstimates([Renderer().render(scene)], prompts: [record.prompt],
                                                             timesteps: [551], generator: try Generator(seed: record.seed))[0])
                } else {
                    withImages.append(nil)
                }
            }
            let plain = try chat.replies(users: users, images: Array(repeating: nil, count: chunk.count),
                                         sampling: sampling).texts
            let seeing = try chat.replies(users: users, images: withImages, sampling: sampling).texts
            for (i, record) in chunk.enumerated() {
                let goal = record.constraints.canonical()
                if parser.parse(plain[i]).constraints.canonical() == goal { kept.0 += 1 }
                if parser.parse(seeing[i]).constraints.canonical() == goal { kept.1 += 1 }
                if report.examples.count < 8 { report.examples.append((record.prompt, plain[i])) }
            }
        }
        report.rewriteCount = queries.count
        report.rewriteKept = (Double(kept.0) / Double(Swift.max(1, queries.count)),
                              Double(kept.1) / Double(Swift.max(1, queries.count)))
        return report
    }
}
