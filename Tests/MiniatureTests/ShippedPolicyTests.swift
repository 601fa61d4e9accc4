import Foundation
import Imaging
import Testing
import Torch
import VisionLanguage
@testable import Miniature

func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

/// The shipped policy against transformers on the same folder. Reference:
/// scripts/fixtures/policy_transformers.py (LlavaForConditionalGeneration.from_pretrained, greedy
/// `generate` with `output_scores`, log-softmax of each chosen token).
@Suite struct ShippedPolicyTests {
    static let folder = repository + "/Models/shapeworld-policy"

    @Test func greedyTextAndLogProbsEqualTransformers() throws {
        let chat = try LlavaChat.load(folder: Self.folder)
        let ref = try SafeTensorsFile(path: fixture("policy-reference.safetensors"))
        let pixels = try ref.tensor("pixel_values")
        // Our image processor on the same 64×64 picture gives transformers' pixels.
        let bytes = try ref.tensor("image").to(.int64).toArray(Int64.self).map { UInt8($0) }
        let image = RGBImage(width: 64, height: 64, bytes: bytes)
        let ours = try chat.processor(Tensor(image.planar(), shape: [1, 3, 64, 64]))
        #expect((ours - pixels).abs().max().item() < 1e-5)
        let end = try #require(chat.tokenizer.tokenToId("<|im_end|>"))
        for (task, idsKey) in [("", "input_ids"), ("describe_", "describe_ids")] {
            let ids = try ref.tensor(idsKey).toArray(Int64.self).map(Int.init)
            let expected = try ref.tensor("\(task)tokens").toArray(Int64.self).map(Int.init)
            let expectedLogProbs = try ref.tensor("\(task)logprobs").toArray(Double.self)
            let out = try chat.model.generate(prompts: [ids], pixels: pixels,
                                              config: SamplingConfig(greedy: true, maxNewTokens: 24, stopTokens: [end]),
                                              padId: 0)
            #expect(out.tokens[0] == expected, "\(task): \(chat.tokenizer.decode(out.tokens[0], skipSpecialTokens: false))")
            for (a, b) in zip(out.logProbs[0], expectedLogProbs) { #expect(abs(a - b) < 1e-4) }
        }
    }
}

/// The shipped GRPO adapter against PEFT on the transformers model. Reference:
/// scripts/fixtures/peft_adapter.py (PeftModel.from_pretrained on LlavaForConditionalGeneration,
/// greedy `generate` with `output_scores`, with the adapter and with `disable_adapter()`).
@Suite struct ShippedAdapterTests {
    static let adapter = repository + "/Models/shapeworld-policy/adapters/promptloop"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: fixture("adapter-reference.safetensors"))))
    func greedyTextAndLogProbsEqualPEFT() throws {
        let chat = try LlavaChat.load(folder: ShippedPolicyTests.folder, adapter: Self.adapter)
        let ref = try SafeTensorsFile(path: fixture("adapter-reference.safetensors"))
        let ids = try ref.tensor("input_ids").toArray(Int64.self).map(Int.init)
        let pixels = try ref.tensor("pixel_values")
        let end = try #require(chat.tokenizer.tokenToId("<|im_end|>"))
        let config = SamplingConfig(greedy: true, maxNewTokens: 32, stopTokens: [end])
        for (prefix, adapters) in [("", true), ("base_", false)] {
            chat.model.languageModel.adaptersEnabled = adapters
            let out = try chat.model.generate(prompts: [ids], pixels: pixels, config: config, padId: 0)
            let expected = try ref.tensor("\(prefix)tokens").toArray(Int64.self).map(Int.init)
            #expect(out.tokens[0] == expected, "\(prefix): \(chat.tokenizer.decode(out.tokens[0], skipSpecialTokens: false))")
            for (a, b) in zip(out.logProbs[0], try ref.tensor("\(prefix)logprobs").toArray(Double.self)) {
                #expect(abs(a - b) < 1e-4)
            }
        }
        chat.model.languageModel.adaptersEnabled = true
    }
}
