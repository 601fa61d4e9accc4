import Diffusion
import Foundation
import Imaging
import ShapeWorld
import Testing
import Torch
import TorchNN
import VisionLanguage
@testable import Miniature

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
    .standardized.path

@Suite(.serialized) struct PolicyTests {
    @Test func theFolderLoadsAsALlavaModelAndItsTokenizerKnowsTheStateWords() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let vocabulary = MiniaturePolicy.vocabulary(seed: 1, samples: 400)
        try MiniaturePolicy.writeFolder(to: folder, vocabulary: vocabulary)
        let trainer = try PolicyTrainer(folder: folder, seed: 0, schedule: .constant(1e-3))
        let example = PolicyExample(task: .rewrite, user: "query: two red circles\nprompt: two red circles\np3",
                                    image: RGBImage(width: 64, height: 64), reply: "a photo of two red circles",
                                    timestep: 500, constraints: ConstraintSet())
        let (prompt, reply) = trainer.encode(example)
        #expect(prompt.filter { $0 == trainer.model.config.imageTokenId }.count == 64)
        #expect(!prompt.contains(1) && !reply.contains(1), "unknown words in the state or reply")
        #expect(reply.last == trainer.tokenizer.tokenToId("<|im_end|>"))
        // A few steps on one batch lower its loss.
        let batch = [example, PolicyExample(task: .describe, user: "describe", image: nil, reply: "a blue square",
                                            timestep: nil, constraints: ConstraintSet())]
        let first = try trainer.trainStep(batch)
        for _ in 0..<8 { try trainer.trainStep(batch) }
        #expect(try trainer.loss(batch).item() < first)
        // Exported weights load strictly, through the LLaVA loader and its transformers-5 key layout.
        try trainer.exportWeights(to: folder)
        let chat = try LlavaChat.load(folder: folder)
        let ids = prompt
        let a = try trainer.model(Tensor(ids.map(Int64.init), shape: [1, ids.count]),
                                  pixels: try trainer.processor(Tensor.zeros([1, 3, 64, 64])))
        let b = try chat.model(Tensor(ids.map(Int64.init), shape: [1, ids.count]),
                               pixels: try chat.processor(Tensor.zeros([1, 3, 64, 64])))
        #expect(a.equal(b))
    }

    @Test func dataAvoidsExcludedQueriesAndIsAFunctionOfTheStep() throws {
        let pipe = try StableDiffusionPipeline.load(folder: repository + "/Models/shapeworld-sd", scheduler: "ddim")
        let banned = PromptParser().parse("a photo of a red circle").constraints
        let data = PolicyData(pipeline: pipe, excluded: [banned])
        let a = try data.batch(seed: 1, step: 3, size: 6)
        let b = try data.batch(seed: 1, step: 3, size: 6)
        #expect(a.map(\.reply) == b.map(\.reply) && a.map(\.user) == b.map(\.user))
        #expect(zip(a, b).allSatisfy { $0.image?.pixels == $1.image?.pixels })
        #expect(a.allSatisfy { $0.image == nil || ($0.image!.width == 64 && $0.image!.height == 64) })
        // Consecutive steps draw independent examples (not the previous step's shifted by one draw).
        let next = try data.batch(seed: 1, step: 4, size: 6)
        #expect(Set(a.map { $0.user + $0.reply }).intersection(next.map { $0.user + $0.reply }).count <= 1)
        for step in 0..<10 {
            for e in try data.batch(seed: 2, step: step, size: 8) where e.task == .rewrite {
                #expect(e.constraints.canonical() != banned.canonical())
                #expect(!HoldOut.v1.touches(constraints: e.constraints))
            }
        }
    }

    @Test func copyShareRepliesWithTheQueryAsWritten() throws {
        let pipe = try StableDiffusionPipeline.load(folder: repository + "/Models/shapeworld-sd", scheduler: "ddim")
        let data = PolicyData(pipeline: pipe, excluded: [])
        data.describeFraction = 0
        data.rewriteImageFraction = 0
        func query(_ e: PolicyExample) -> String? {
            e.user.split(separator: "\n").first.map { String($0.dropFirst("query: ".count)) }
        }
        data.copyFraction = 1
        let copied = try data.batch(seed: 3, step: 0, size: 12)
        #expect(copied.count == 12 && copied.allSatisfy { $0.task == .rewrite && $0.reply == query($0) })
        data.copyFraction = 0
        let paraphrased = try data.batch(seed: 3, step: 0, size: 12)
        #expect(paraphrased.filter { $0.reply == query($0) }.count < 6)
    }
}
