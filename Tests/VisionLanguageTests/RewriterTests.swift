import Foundation
import Imaging
import Testing
import Torch
import TorchNN
@testable import VisionLanguage

@Suite struct RewriterTests {
    @Test func theAnswerIsTheFirstLineThatIsNotAPreface() {
        #expect(PromptRewriter.answer(from: "Here is the rewritten prompt:\n\n  a red circle, glossy  \nmore") ==
            "a red circle, glossy")
        #expect(PromptRewriter.answer(from: "\"two blue squares\"") == "two blue squares")
        #expect(PromptRewriter.answer(from: "Sure:") == "Sure:")
        #expect(PromptRewriter.answer(from: "") == "")
    }

    @Test func aChatTemplateComesFromTheTokenizerConfig() throws {
        #expect(try ChatTemplate.load(folder: fixture("tiny-llava")) == nil)  // no chat_template
        #expect(try ChatTemplate.load(folder: fixture("tiny-qwen2")) == nil)  // no tokenizer_config.json
        let folder = NSTemporaryDirectory() + "tc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let chatML = #"{"chat_template": "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"}"#
        try chatML.write(toFile: folder + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        let template = try #require(try ChatTemplate.load(folder: folder))
        #expect(template.render([.user("U")]).hasPrefix("<|im_start|>user\nU<|im_end|>"))
        try "[1, 2]".write(toFile: folder + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        #expect(throws: ModelError.self) { try ChatTemplate.load(folder: folder) }
    }

    /// LlavaChat is the LLaVA generation path with the image processor and the `<image>` placeholder:
    /// greedy, its reply decodes the tokens `generate` gives for the same ids and pixels.
    @Test func llavaChatRepliesAboutAnImage() throws {
        let folder = fixture("tiny-llava")
        #expect(LlavaChat.isLlava(folder: folder) && !LlavaChat.isLlava(folder: fixture("tiny-qwen2")))
        let chat = try LlavaChat.load(folder: folder)
        var image = RGBImage(width: 20, height: 16, fill: RGB(0.2, 0.5, 0.9))
        image[3, 4, 0] = 1
        let sampling = SamplingConfig(greedy: true, maxNewTokens: 5)
        let reply = try chat.reply(user: "what is it", image: image, sampling: sampling)
        let again = try chat.reply(user: "what is it", image: image, sampling: sampling)
        #expect(reply == again)
        let token = try #require(chat.tokenizer.idToToken(chat.model.config.imageTokenId))
        let input = chatInput([.user(token + "\nwhat is it")], template: chat.template, tokenizer: chat.tokenizer, eos: nil)
        let pixels = try chat.processor(Tensor(image.planar(), shape: [1, 3, 16, 20]))
        var config = sampling
        config.stopTokens = input.stop
        let out = try chat.model.generate(prompts: [chat.model.expandImageTokens(input.ids)], pixels: pixels,
                                          config: config, padId: chat.tokenizer.padTokenId ?? 0)
        #expect(reply == chat.tokenizer.decode(out.tokens[0], skipSpecialTokens: true))
        _ = try chat.reply(system: "be brief", user: "hello", image: nil, sampling: sampling)
    }

    @Test func tokenIdsOutsideTheVocabularyAreErrors() throws {
        let model = try CausalLM.load(folder: fixture("tiny-qwen2"))
        let vocab = model.config.vocabSize
        #expect(throws: VisionLanguageError.self) {
            try model.generate(prompts: [[1, vocab]], config: SamplingConfig(greedy: true, maxNewTokens: 1), padId: 0)
        }
        #expect(throws: VisionLanguageError.self) {
            try model.generate(prompts: [[1, 2]], config: SamplingConfig(greedy: true, maxNewTokens: 1), padId: -1)
        }
        #expect(throws: VisionLanguageError.self) {
            try model.tokenLogProbs(contexts: [[1]], completions: [[vocab + 3]], padId: 0)
        }
    }
}
