import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Testing
import Torch
@testable import Miniature

@Suite struct ProxyAgreementTests {
    /// Four scores in two groups: Pearson, MAE and the pair order by hand.
    @Test func agreementByHand() {
        let a = ProxyAgreement.measure(proxy: [0.1, 0.9, 0.5, 0.4], soft: [0, 1, 0.5, 0.5], groups: [0, 0, 1, 1])
        // MAE (0.1 + 0.1 + 0 + 0.1) / 4; group 0 ordered alike, group 1 has equal soft scores (no pair).
        #expect(abs(a.meanAbsoluteError - 0.075) < 1e-12 && a.pairs == 1 && a.pairOrder == 1)
        // Pearson: means 0.475 and 0.5; cov = Σ(p−0.475)(s−0.5) = 0.1875 + 0.2125 + 0 + 0 = 0.4;
        // Σ(p−mp)² = 0.140625 + 0.180625 + 0.000625 + 0.005625 = 0.3275, Σ(s−ms)² = 0.5.
        #expect(abs(a.pearson - 0.4 / (0.3275 * 0.5).squareRoot()) < 1e-12)
        let reversed = ProxyAgreement.measure(proxy: [0.9, 0.1], soft: [0, 1], groups: [3, 3])
        #expect(reversed.pairOrder == 0 && reversed.pairs == 1)
    }
}

@Suite(.serialized) struct ProxyRecipeTests {
    /// A tiny run end to end: a pool chunk of four samples, two steps, the export. The folder loads as a
    /// CLIPModel reward that scores exactly as the trainer's own model; a second run resumes without
    /// sampling the pool again (the chunk file is kept as it was).
    @Test func aTinyRunExportsAFolderThatScoresAsTrained() throws {
        let folder = NSTemporaryDirectory() + "proxy-recipe-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let train = Array(try PromptSets.readJSONLines(path: repository + "/Data/shapeworld/v1/train.jsonl").prefix(40))
        let heldOut = Array(try PromptSets.readJSONLines(path: repository + "/Data/shapeworld/v1/eval.jsonl").prefix(8))
        let settings = RunSettings(steps: 2, batch: 4, lr: 1e-3, warmup: 1, saveEvery: 1)
        var recipe = ProxyRecipe(folder: folder, diffusion: repository + "/Models/shapeworld-sd", settings: settings,
                                 trainQueries: train, heldOutQueries: heldOut)
        recipe.poolChunks = 1
        recipe.chunkSize = 4
        let agreement = try #require(try recipe.run())
        #expect(agreement.images == 8 && agreement.meanAbsoluteError.isFinite)
        let chunk = folder + "/pool/chunk-000.safetensors"
        let written = try FileManager.default.attributesOfItem(atPath: chunk)[.modificationDate] as? Date
        let proxy = try LearnedProxyReward.load(folder: folder + "/proxy")
        let image = Renderer().render(Scene(objects: []))
        let inputs = [RewardInput(image: image, query: train[0].prompt), RewardInput(image: image, query: train[1].prompt)]
        let loaded = try proxy.checkedScore(inputs).map(\.value)
        let trainer = try ProxyTrainer(folder: folder + "/proxy", seed: 0, schedule: settings.schedule)
        try trainer.resume(from: folder + "/checkpoint.safetensors")
        #expect(try trainer.reward.checkedScore(inputs).map(\.value) == loaded)
        #expect(loaded.allSatisfy { (-1...1).contains($0) })
        // The same command again: finished, nothing resampled.
        try recipe.run()
        #expect((try FileManager.default.attributesOfItem(atPath: chunk)[.modificationDate] as? Date) == written)
    }
}
