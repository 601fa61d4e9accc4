import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

/// Maps the fixture's prompt names ("A", "B", "C", "") to the token ids the reference used.
struct TableTokenizer: PromptTokenizer {
    let table: [String: [Int]]
    var maxLength: Int { 77 }
    func tokenize(_ text: String) -> (ids: [Int], truncated: Bool) { (table[text]!, false) }
}

func loadTinyPipeline(_ name: String, scheduler: Scheduler) throws -> (StableDiffusionPipeline, SafeTensorsFile) {
    let ref = try SafeTensorsFile(path: fixture("\(name)/pipeline.safetensors"))
    var table: [String: [Int]] = [:]
    for (key, text) in [("A", "A"), ("B", "B"), ("C", "C"), ("empty", "")] {
        table[text] = try ref.tensor("ids.\(key)").toArray(Int64.self).map { Int($0) }
    }
    let tokenizer = TableTokenizer(table: table)
    let sdxl = name == "tiny-sdxl"
    var encoders = [try CLIPTextModel.load(folder: fixture("\(name)/text_encoder"))]
    if sdxl { encoders.append(try CLIPTextModel.load(folder: fixture("\(name)/text_encoder_2"))) }
    let pipe = try StableDiffusionPipeline(
        kind: sdxl ? .sdxl : .sd, textEncoders: encoders, tokenizers: Array(repeating: tokenizer, count: encoders.count),
        unet: try UNet2DConditionModel.load(folder: fixture("\(name)/unet")),
        vae: try AutoencoderKL.load(folder: fixture("\(name)/vae"), options: LoadOptions(variant: sdxl ? "fp16" : nil)),
        scheduler: scheduler)
    return (pipe, ref)
}

func sdScheduler() throws -> Scheduler {
    var c = SchedulerConfig()
    (c.betaStart, c.betaEnd, c.betaSchedule, c.clipSample, c.setAlphaToOne, c.stepsOffset) =
        (0.00085, 0.012, "scaled_linear", false, false, 1)
    return try DDIMScheduler(c)
}

// Reference: scripts/fixtures/diffusion_pipeline.py — diffusers' pipelines, 4 steps, guidance 5,
// seed 42, rows ["A", "C"]; after step 1 the callback swaps both CFG halves so that row 0 reads "B".
@Suite struct PipelineParityTests {
    @Test func sdPromptChangeAtStepTwoMatchesDiffusers() throws {
        let (pipe, ref) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        let options = SamplingOptions(steps: 4, guidance: 5, height: 16, width: 16, seed: 42)
        let viaCallback = try pipe.sample(prompts: ["A", "C"], options: options) { state in
            state.step == 1 ? [.prompt("B"), .keep] : nil
        }
        #expect(relativeError(viaCallback.latents, try ref.tensor("swap.latents")) < 1e-4)
        #expect(viaCallback.prompts == ["B", "C"])
        let image = pipe.decode(viaCallback.latents)
        #expect(relativeError(image, try ref.tensor("swap.image")) < 1e-4)
        // The same change as a precomputed schedule: "B" is used from step 2 on.
        let viaSchedule = try pipe.sample(prompts: ["A", "C"], options: options, schedule: [2: ["B", nil]])
        #expect(viaSchedule.latents.equal(viaCallback.latents))
        // Without the change the result differs (the swap is not a no-op).
        let unchanged = try pipe.sample(prompts: ["A", "C"], options: options)
        #expect(relativeError(unchanged.latents, try ref.tensor("swap.latents")) > 1e-3)
        var rescaled = options
        rescaled.guidanceRescale = 0.7
        let plain = try pipe.sample(prompts: ["A", "C"], options: rescaled)
        #expect(relativeError(plain.latents, try ref.tensor("plain_rescaled.latents")) < 1e-4)
    }

    @Test func sdxlPromptChangeRebuildsPooledAndBothHalves() throws {
        var c = SchedulerConfig()
        (c.betaStart, c.betaEnd, c.betaSchedule, c.stepsOffset, c.timestepSpacing) =
            (0.00085, 0.012, "scaled_linear", 1, "leading")
        let (pipe, ref) = try loadTinyPipeline("tiny-sdxl", scheduler: try EulerDiscreteScheduler(c))
        let options = SamplingOptions(steps: 4, guidance: 5, height: 16, width: 16, seed: 42)
        let out = try pipe.sample(prompts: ["A", "C"], options: options) { $0.step == 1 ? [.prompt("B"), .keep] : nil }
        #expect(relativeError(out.latents, try ref.tensor("swap.latents")) < 1e-4)
        #expect(relativeError(pipe.decode(out.latents), try ref.tensor("swap.image")) < 1e-4)
    }

    @Test func callbackSeesTheDenoisedEstimateOfEveryRow() throws {
        let (pipe, _) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        var seen: [(Int, [Int])] = []
        _ = try pipe.sample(prompts: ["A", "C", "B"], options: SamplingOptions(steps: 3, guidance: 3, height: 16,
                                                                                width: 16, seed: 1)) { state in
            seen.append((state.step, state.predictedOriginal.shape))
            return nil
        }
        // After steps 0 and 1 (none after the last step: nothing would use a new prompt).
        #expect(seen.map(\.0) == [0, 1])
        #expect(seen.allSatisfy { $0.1 == [3, 4, 8, 8] })
    }

    @Test func badArgumentsAreErrors() throws {
        let (pipe, _) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        let o = SamplingOptions(steps: 2, height: 16, width: 16)
        #expect(throws: DiffusionError.self) { try pipe.sample(prompts: [], options: o) }
        #expect(throws: DiffusionError.self) { try pipe.sample(prompts: ["A"], negativePrompts: ["", ""], options: o) }
        #expect(throws: DiffusionError.self) { try pipe.sample(prompts: ["A"], options: o, schedule: [1: ["B", "C"]]) }
        #expect(throws: DiffusionError.self) {
            try pipe.sample(prompts: ["A"], options: SamplingOptions(steps: 2, height: 15, width: 16))
        }
        #expect(throws: DiffusionError.self) { try pipe.sample(prompts: ["A"], options: SamplingOptions(steps: 0)) }
    }
}

// Reference: scripts/fixtures/diffusion_pipeline.py, end_to_end(): diffusers' pipeline loaded from the
// folder with its tokenizer, 10 steps, guidance 6, seed 7, two images per prompt, `output_type="np"`
// quantised as diffusers' numpy_to_pil does.
@Suite struct EndToEndTests {
    @Test(arguments: ["tiny-sd", "tiny-sdxl"])
    func folderPipelineReproducesDiffusersImagesWithin2Of255(name: String) throws {
        let pipe = try StableDiffusionPipeline.load(
            folder: fixture(name), options: LoadOptions(variant: name == "tiny-sdxl" ? "fp16" : nil))
        let ref = try SafeTensorsFile(path: fixture("\(name)/pipeline.safetensors"))
        let options = SamplingOptions(steps: 10, guidance: 6, height: 16, width: 16, seed: 7)
        for (key, prompt, negative) in [("cli.plain", "w5 w17 W3", nil), ("cli.negative", "w900 w2", "w44")] {
            let out = try pipe.sample(prompts: [prompt, prompt], negativePrompts: negative.map { [$0, $0] },
                                      options: options)
            // [B, 3, H, W] in [0, 1] → [B, H, W, 3] bytes, rounded as the PNG writer does.
            let bytes = (pipe.decode(out.latents).permute(0, 2, 3, 1) * 255).round().to(.int32)
            let expected = try ref.tensor(key).to(.int32)
            #expect(bytes.shape == expected.shape)
            let worst = (bytes - expected).abs().max().item()
            #expect(worst <= 2, "\(name) \(key): max pixel difference \(worst)/255")
        }
    }

    @Test func missingFoldersAndFilesNameThePath() throws {
        #expect(throws: ModelError.self) { try StableDiffusionPipeline.load(folder: "/nonexistent/model") }
        let folder = NSTemporaryDirectory() + "promptloop-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try #"{"_class_name": "KandinskyPipeline"}"#.write(toFile: folder + "/model_index.json", atomically: true,
                                                         encoding: .utf8)
        do {
            _ = try StableDiffusionPipeline.load(folder: folder)
            Issue.record("accepted an unsupported pipeline")
        } catch let error as ModelError {
            #expect(error.description.contains("_class_name") && error.description.contains("KandinskyPipeline"))
        }
    }
}

// The callback a policy uses: it may hand back ready conditionings, and its errors end sampling.
@Suite struct StepCallbackTests {
    @Test func aReadyConditioningActsAsItsPrompt() throws {
        let (pipe, _) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        let options = SamplingOptions(steps: 4, guidance: 5, height: 16, width: 16, seed: 42)
        let viaPrompt = try pipe.sample(prompts: ["A", "C"], options: options) { $0.step == 1 ? [.prompt("B"), .keep] : nil }
        let ready = try pipe.embed("B")
        pipe.clearCache()
        let viaConditioning = try pipe.sample(prompts: ["A", "C"], options: options) {
            $0.step == 1 ? [.conditioning(ready), .keep] : nil
        }
        #expect(viaConditioning.latents.equal(viaPrompt.latents))
        #expect(viaConditioning.prompts == ["B", "C"])
        // A conditioning of the wrong width is refused, naming the step.
        let wrong = PromptEmbedding(context: Tensor.zeros([1, 77, 5]))
        do {
            _ = try pipe.sample(prompts: ["A"], options: options) { _ in [.conditioning(wrong)] }
            Issue.record("accepted a [1, 77, 5] conditioning")
        } catch let error as DiffusionError {
            #expect(error.description.contains("after step 0"))
        }
    }

    struct PolicyFailed: Error {}

    @Test func anErrorOfTheCallbackEndsSampling() throws {
        let (pipe, _) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        var calls = 0
        #expect(throws: PolicyFailed.self) {
            try pipe.sample(prompts: ["A"], options: SamplingOptions(steps: 4, height: 16, width: 16)) { _ in
                calls += 1
                throw PolicyFailed()
            }
        }
        #expect(calls == 1)
        #expect(throws: DiffusionError.self) {
            try pipe.sample(prompts: ["A", "C"], options: SamplingOptions(steps: 3, height: 16, width: 16)) { _ in [.keep] }
        }
    }

    @Test func theEmbeddingCacheStaysWithinItsBudget() throws {
        let (pipe, _) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        let one = try pipe.embed("A").byteCount
        pipe.clearCache()
        pipe.embeddingCacheBytes = 2 * one
        for p in ["A", "B", "C", "", "A"] { _ = try pipe.embed(p) }
        #expect(pipe.cachedEmbeddings.count == 2 && pipe.cachedEmbeddings.bytes <= 2 * one)
        // Least recently used goes first: "" and "A" (used last) stay.
        _ = try pipe.embed("")
        #expect(pipe.cachedEmbeddings.count == 2)
        pipe.clearCache()
        #expect(pipe.cachedEmbeddings.count == 0 && pipe.cachedEmbeddings.bytes == 0)
    }
}

// Inputs that used to abort inside libtorch or trap are errors naming the file or value.
@Suite struct PipelineInputTests {
    @Test func componentsThatDoNotFitAreErrors() throws {
        let encoder = try CLIPTextModel.load(folder: fixture("tiny-sd/text_encoder"))
        let vae = try AutoencoderKL.load(folder: fixture("tiny-sd/vae"))
        let tokenizer = TableTokenizer(table: ["": [0]])
        // An SDXL UNet (addition_embed_type text_time) under an SD model_index.json.
        let sdxlUNet = try UNet2DConditionModel.load(folder: fixture("tiny-sdxl/unet"))
        do {
            _ = try StableDiffusionPipeline(kind: .sd, textEncoders: [encoder], tokenizers: [tokenizer], unet: sdxlUNet,
                                            vae: vae, scheduler: try sdScheduler(), folder: "some/folder")
            Issue.record("accepted an SDXL UNet in an SD pipeline")
        } catch let error as DiffusionError {
            #expect(error.description.contains("some/folder") && error.description.contains("text_time"))
        }
        // A text encoder narrower than the UNet's cross-attention.
        var config = try ModelFolder.config(UNet2DConditionConfig.self, in: fixture("tiny-sd/unet"))
        config.crossAttentionDim = .one(48)
        let store = try ParameterStore(seed: 0)
        let wide = try UNet2DConditionModel(config: config, path: store.root)
        do {
            _ = try StableDiffusionPipeline(kind: .sd, textEncoders: [encoder], tokenizers: [tokenizer], unet: wide,
                                            vae: vae, scheduler: try sdScheduler())
            Issue.record("accepted hidden size 32 for cross_attention_dim 48")
        } catch let error as DiffusionError {
            #expect(error.description.contains("cross_attention_dim 48") && error.description.contains("32"))
        }
    }

    @Test func tokenIdsOutsideTheVocabularyAreErrors() throws {
        let (good, _) = try loadTinyPipeline("tiny-sd", scheduler: try sdScheduler())
        let foreign = TableTokenizer(table: ["A": [0, 5000] + Array(repeating: 1, count: 75), "": Array(repeating: 1, count: 77)])
        let pipe = try StableDiffusionPipeline(kind: .sd, textEncoders: good.textEncoders, tokenizers: [foreign],
                                               unet: good.unet, vae: good.vae, scheduler: try sdScheduler())
        do {
            _ = try pipe.sample(prompts: ["A"], options: SamplingOptions(steps: 2, height: 16, width: 16))
            Issue.record("sampled with token id 5000 of a 1000-token vocabulary")
        } catch let error as DiffusionError {
            #expect(error.description.contains("5000") && error.description.contains("vocab_size 1000"))
        }
    }
}

@Suite struct RowSeedTests {
    @Test func rowSeedsReproduceSeparateRuns() throws {
        let pipe = try StableDiffusionPipeline.load(folder: fixture("tiny-sd"))
        let options = SamplingOptions(steps: 3, guidance: 4, height: 16, width: 16, seed: 0)
        var batched = options
        batched.rowSeeds = [5, 9]
        let both = try pipe.sample(prompts: ["w1 w2", "w3"], options: batched).latents
        var single = options
        single.seed = 9
        let alone = try pipe.sample(prompts: ["w3"], options: single).latents
        #expect(relativeError(both[1].unsqueeze(0), alone) < 1e-5)
        batched.rowSeeds = [1]
        #expect(throws: DiffusionError.self) { try pipe.sample(prompts: ["a", "b"], options: batched) }
    }
}

@Suite struct ReducedPrecisionTests {
    @Test(arguments: [DType.bfloat16, .float16])
    func samplingRunsInReducedPrecision(dtype: DType) throws {
        let full = try StableDiffusionPipeline.load(folder: fixture("tiny-sd"))
        let reduced = try StableDiffusionPipeline.load(folder: fixture("tiny-sd"), options: LoadOptions(dtype: dtype))
        let options = SamplingOptions(steps: 4, guidance: 5, height: 16, width: 16, seed: 3)
        let a = try full.sample(prompts: ["w1 w2"], options: options).latents
        let b = try reduced.sample(prompts: ["w1 w2"], options: options).latents
        #expect(b.dtype == dtype)
        // Same image up to rounding: reduced precision changes bits, not the picture.
        #expect(relativeError(b, a) < 0.05, "\(dtype): \(relativeError(b, a))")
        let image = reduced.decode(b)
        #expect(image.dtype == .float32 && image.isfinite().all().item() == 1)
    }
}
