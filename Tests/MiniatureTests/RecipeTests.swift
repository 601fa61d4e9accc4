import Diffusion
import Foundation
import Testing
import Tokenizers
import Torch
@testable import Miniature

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "promptloop-miniature-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct MiniatureTokenizerTests {
    @Test func wordsSplitAsTheWhitespacePreTokenizer() {
        #expect(MiniatureTokenizer.words(in: "Two red circles, LEFT of a blue-square.")
            == ["two", "red", "circles", ",", "left", "of", "a", "blue", "-", "square", "."])
        #expect(MiniatureTokenizer.words(in: "  a\tb_2  !? ") == ["a", "b_2", "!?"])
        #expect(MiniatureTokenizer.words(in: "") == [])
    }

    @Test func theWrittenTokenizerLoadsAndEncodesWithStartAndEnd() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try MiniatureTokenizer.write(vocabulary: ["a", "circle", "red"], maxLength: 8, to: folder)
        let tokenizer = try PipelineTokenizer.load(folder: folder, maxLength: 8)
        // <pad> 0, <unk> 1, start 2, end 3, then the words in order.
        #expect(tokenizer.tokenize("A red circle").ids == [2, 4, 6, 5, 3, 3, 3, 3])
        #expect(tokenizer.tokenize("a blue circle").ids.prefix(5) == [2, 4, 1, 5, 3])
        #expect(tokenizer.base.vocabularySize == 7)
    }

    @Test func theVocabularyIsAFunctionOfTheSeed() {
        let a = MiniatureTokenizer.vocabulary(seed: 7, samples: 300)
        #expect(a == MiniatureTokenizer.vocabulary(seed: 7, samples: 300))
        #expect(a == a.sorted() && a.contains("circle") && a.contains("red"))
    }
}

@Suite struct TrainingDataTests {
    @Test func batchesArePureFunctionsOfSeedAndStep() {
        let a = Miniature.trainingBatch(seed: 3, step: 10, size: 2)
        let b = Miniature.trainingBatch(seed: 3, step: 10, size: 2)
        let c = Miniature.trainingBatch(seed: 3, step: 11, size: 2)
        #expect(a.images.shape == [2, 3, 64, 64])
        #expect(a.images.equal(b.images) && a.captions == b.captions)
        #expect(!a.images.equal(c.images))
        #expect(a.images.min().item() >= -1 && a.images.max().item() <= 1)
    }
}

@Suite struct RecipeTests {
    @Test func settingsOutOfRangeNameTheField() {
        for (settings, field) in [(RunSettings(steps: 0, batch: 1, lr: 1), "steps"),
                                  (RunSettings(steps: 1, batch: 0, lr: 1), "batch"),
                                  (RunSettings(steps: 1, batch: 1, lr: .nan), "lr"),
                                  (RunSettings(steps: 1, batch: 1, lr: 1, saveEvery: 0), "save-every"),
                                  (RunSettings(steps: 1, batch: 1, lr: 1, until: -1), "until")] {
            do {
                try settings.validate()
                Issue.record("accepted \(settings)")
            } catch {
                #expect("\(error)".contains(field))
            }
        }
    }

    /// A VAE run stopped after one step and continued gives the log of an uninterrupted run, and
    /// exports a loadable `vae/`; a continuation with other settings is refused.
    @Test func aStoppedVAERunContinuesAsIfUninterrupted() throws {
        let root = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let settings = RunSettings(steps: 2, batch: 1, lr: 1e-3, warmup: 1, seed: 5, saveEvery: 1)
        try VAERecipe(folder: root + "/straight", settings: settings).run()
        var first = settings
        first.until = 1
        var events: [String] = []
        try VAERecipe(folder: root + "/resumed", settings: first).run()
        try VAERecipe(folder: root + "/resumed", settings: settings).run { event in
            if case .resumed(_, let step) = event { events.append("resumed \(step)") }
        }
        #expect(events == ["resumed 1"])
        func losses(_ run: String) throws -> [String] {
            try String(contentsOfFile: root + "/\(run)/loss.csv", encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: ",").prefix(4).joined(separator: ",") }  // without the timing column
        }
        #expect(try losses("straight") == losses("resumed"))
        _ = try AutoencoderKL.load(folder: root + "/resumed/vae")
        var other = settings
        other.lr = 2e-3
        #expect(throws: (any Error).self) { try VAERecipe(folder: root + "/resumed", settings: other).run() }
    }
}
