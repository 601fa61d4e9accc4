import ArgumentParser
import Foundation
import Imaging
import PromptLoop
import Torch
import VisionLanguage

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

/// `--model`, or SmolLM2 from `.deps/` when it was not given.
func languageModelPath(_ model: String?) throws -> String {
    guard let path = model ?? EmbeddedModels.smolLM2 else {
        throw CLIError("no --model and SmolLM2 is not installed: run scripts/bootstrap")
    }
    return path
}

struct LMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm", abstract: "Run the policy's language model.", subcommands: [LMGenerate.self])
}

struct LMGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with a Llama/Qwen2 model (transformers folder or GGUF file) or a LLaVA folder.",
        discussion: "The prompt is wrapped in the model's chat format (ChatML or Llama 3) when it has one.")

    @Option(help: "Model: a transformers folder or a .gguf file (default: SmolLM2-135M-Instruct from .deps/).")
    var model: String?

    @Option(help: "The user message.")
    var prompt: String

    @Option(help: "A system message.")
    var system: String?

    @Option(help: "An image (PNG) for a LLaVA model.")
    var image: String?

    @Option(help: "Device: cpu, cuda or cuda:N.")
    var device = "cpu"

    @OptionGroup var sampling: TextSamplingOptions

    @OptionGroup var threadOption: ThreadOption

    func run() throws {
        threadOption.apply()
        let device = try Device(parsing: self.device)
        try device.validate()
        let path = try languageModelPath(model)
        if LlavaChat.isLlava(folder: path) {
            let chat = try LlavaChat.load(folder: path, device: device)
            print(try chat.reply(system: system, user: prompt, image: try image.map(PNG.read), sampling: sampling.config))
            return
        }
        if image != nil { throw CLIError("--image needs a LLaVA model folder (config.json model_type llava)") }
        var messages: [ChatMessage] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(prompt))
        print(try ChatModel.load(path, device: device).reply(messages, sampling: sampling.config))
    }
}

struct RewriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite a text-to-image prompt: with SmolLM2 (the paper's untrained-rewriter baseline) or a policy.",
        discussion: """
            By default SmolLM2-135M-Instruct rewrites the prompt with a fixed system prompt. With \
            --policy DIR (a LLaVA policy such as Models/shapeworld-policy) the policy writes the \
            feed-forward rewrite: the state `query: …`, `prompt: …`, `p0`, no image.
            """)

    @Argument(help: "The prompt to rewrite.")
    var prompt: String

    @Option(help: "Model (default: SmolLM2-135M-Instruct from .deps/).")
    var model: String?

    @Option(help: "A LLaVA policy folder to rewrite with instead (e.g. Models/shapeworld-policy).")
    var policy: String?

    @Option(help: "PEFT adapter on the --policy (a folder).")
    var adapter: String?

    @OptionGroup var sampling: TextSamplingOptions

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        if model != nil && policy != nil { throw ValidationError("give --model or --policy, not both") }
        if adapter != nil && policy == nil { throw ValidationError("--adapter goes with --policy") }
    }

    func run() throws {
        threadOption.apply()
        if let policy {
            let agent = LlavaPolicy(chat: try EmbeddedModels.loadPolicy(folder: policy, adapter: adapter),
                                    sampling: sampling.config)
            let state = RefinementState(query: prompt, prompt: prompt, step: -1, totalSteps: 20)
            let action = try agent.act([state])[0]
            if !action.valid { warn("the policy's reply was empty or cut off; the prompt is kept") }
            print(action.prompt)
            return
        }
        let lm = try ChatModel.load(try languageModelPath(model))
        print(try PromptRewriter.rewrite(prompt, with: lm, sampling: sampling.config))
    }
}
