import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

/// Deterministic stand-in data: batch `step` of images or latents.
func batch(_ shape: [Int], step: Int) throws -> Tensor {
    Tensor.rand(shape, generator: try Generator(seed: UInt64(1000 + step))) * 2 - 1
}

func tinyVAEConfig() -> AutoencoderKLConfig {
    var c = AutoencoderKLConfig()
    c.blockOutChannels = [8, 16]
    c.downBlockTypes = ["DownEncoderBlock2D", "DownEncoderBlock2D"]
    c.upBlockTypes = ["UpDecoderBlock2D", "UpDecoderBlock2D"]
    c.normNumGroups = 4
    c.latentChannels = 4
    return c
}

func tinyT2I(seed: UInt64) throws -> TextToImageTrainer {
    var text = CLIPTextConfig()
    (text.vocabSize, text.hiddenSize, text.intermediateSize, text.numHiddenLayers, text.numAttentionHeads,
     text.maxPositionEmbeddings, text.eosTokenId) = (20, 16, 32, 1, 2, 8, 3)
    var unet = UNet2DConditionConfig()
    unet.blockOutChannels = [16, 32]
    unet.downBlockTypes = ["CrossAttnDownBlock2D", "DownBlock2D"]
    unet.upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D"]
    unet.layersPerBlock = .one(1)
    unet.crossAttentionDim = .one(16)
    unet.attentionHeadDim = .one(2)
    unet.normNumGroups = 4
    struct Words: PromptTokenizer {
        let maxLength = 8
        func tokenize(_ text: String) -> (ids: [Int], truncated: Bool) {
            let words = text.split(separator: " ").map { 4 + $0.unicodeScalars.reduce(0) { $0 + Int($1.value) } % 10 }
            return (Array(([2] + words.prefix(6) + [3] + Array(repeating: 0, count: 8)).prefix(8)), false)
        }
    }
    var sched = SchedulerConfig()
    sched.betaSchedule = "scaled_linear"
    return try TextToImageTrainer(textConfig: text, unetConfig: unet, scheduler: sched, tokenizer: Words(),
                                  seed: seed, schedule: .warmupConstant(peak: 1e-3, warmup: 2))
}

@Suite struct TrainingResumeTests {
    @Test func vaeResumesExactlyAfterAnInterruption() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let schedule = LRSchedule.warmupCosine(peak: 1e-3, warmup: 1, total: 4)
        let straight = try VAETrainer(config: tinyVAEConfig(), seed: 3, schedule: schedule)
        var losses: [Double] = []
        for s in 0..<4 { losses.append(straight.trainStep(try batch([2, 3, 8, 8], step: s)).loss) }
        #expect(losses.allSatisfy { $0.isFinite })

        let first = try VAETrainer(config: tinyVAEConfig(), seed: 3, schedule: schedule)
        for s in 0..<2 { first.trainStep(try batch([2, 3, 8, 8], step: s)) }
        try first.save(to: folder + "/ckpt.safetensors")
        // A different seed: everything that matters must come from the checkpoint.
        let resumed = try VAETrainer(config: tinyVAEConfig(), seed: 99, schedule: schedule)
        try resumed.resume(from: folder + "/ckpt.safetensors")
        #expect(resumed.step == 2)
        var resumedLosses: [Double] = []
        for s in 2..<4 { resumedLosses.append(resumed.trainStep(try batch([2, 3, 8, 8], step: s)).loss) }
        #expect(resumedLosses == Array(losses[2...]))
        for p in straight.store.parameters {
            #expect(p.tensor.equal(resumed.store[p.name]!.tensor), "\(p.name)")
        }
    }

    @Test func textToImageResumesExactlyAfterAnInterruption() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let captions = ["red circle", "two blue squares", "", "a green triangle"]
        let straight = try tinyT2I(seed: 5)
        var losses: [Double] = []
        for s in 0..<4 { losses.append(straight.trainStep(latents: try batch([4, 4, 8, 8], step: s), captions: captions)) }
        let first = try tinyT2I(seed: 5)
        for s in 0..<2 { first.trainStep(latents: try batch([4, 4, 8, 8], step: s), captions: captions) }
        try first.save(to: folder + "/ckpt.safetensors")
        let resumed = try tinyT2I(seed: 77)
        try resumed.resume(from: folder + "/ckpt.safetensors")
        var resumedLosses: [Double] = []
        for s in 2..<4 {
            resumedLosses.append(resumed.trainStep(latents: try batch([4, 4, 8, 8], step: s), captions: captions))
        }
        #expect(resumedLosses == Array(losses[2...]))
        for p in straight.unetStore.parameters { #expect(p.tensor.equal(resumed.unetStore[p.name]!.tensor)) }
        for p in straight.textStore.parameters { #expect(p.tensor.equal(resumed.textStore[p.name]!.tensor)) }
    }

    @Test func trainingReducesTheLossOnAFixedBatch() throws {
        let trainer = try VAETrainer(config: tinyVAEConfig(), seed: 1, schedule: .constant(3e-3))
        let images = try batch([4, 3, 8, 8], step: 0)
        let first = trainer.trainStep(images).reconstruction
        var last = first
        for _ in 0..<30 { last = trainer.trainStep(images).reconstruction }
        #expect(last < first * 0.7, "reconstruction \(first) → \(last)")
    }

    @Test func corruptCheckpointsAreErrors() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trainer = try VAETrainer(config: tinyVAEConfig(), seed: 1, schedule: .constant(1e-3))
        try SafeTensors.write(["x": Tensor.zeros([1])], to: folder + "/not-a-checkpoint.safetensors")
        #expect(throws: (any Error).self) { try trainer.resume(from: folder + "/not-a-checkpoint.safetensors") }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/junk.safetensors"))
        #expect(throws: TorchError.self) { try trainer.resume(from: folder + "/junk.safetensors") }
        #expect(throws: TorchError.self) { try trainer.resume(from: folder + "/missing.safetensors") }
    }

    @Test func exportedModelsLoadBack() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trainer = try VAETrainer(config: tinyVAEConfig(), seed: 1, schedule: .constant(1e-3))
        try DiffusersExport.writeVAE(trainer.store, config: trainer.config, to: folder)
        let loaded = try AutoencoderKL.load(folder: folder + "/vae")
        let x = try batch([1, 3, 8, 8], step: 0)
        #expect(withNoGrad { loaded.encode(x).mean.equal(trainer.vae.encode(x).mean) })
        let t2i = try tinyT2I(seed: 2)
        try DiffusersExport.writeUNet(t2i.unetStore, config: t2i.unet.config, to: folder, dtype: .float16)
        try DiffusersExport.writeTextEncoder(t2i.textStore, config: t2i.textEncoder.config, to: folder)
        let unet = try UNet2DConditionModel.load(folder: folder + "/unet")
        #expect(unet.config.blockOutChannels == [16, 32])
        let te = try CLIPTextModel.load(folder: folder + "/text_encoder")
        #expect(te.config.eosTokenId == 3)
    }
}

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "promptloop-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
