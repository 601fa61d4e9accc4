import Diffusion
import Foundation
import Imaging
import ShapeWorld
import Testing
import Torch
@testable import PromptLoop

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
    .standardized.path

func records(_ n: Int, category: PromptCategory = .singleObject) -> [PromptRecord] {
    let parser = PromptParser()
    return (0..<n).map { i in
        let prompt = ["a photo of a red circle", "a photo of a blue square", "a photo of a green triangle"][i % 3]
        return PromptRecord(id: "\(category.rawValue)-\(i)", category: category, prompt: prompt,
                            constraints: parser.parse(prompt).constraints, seed: UInt64(i))
    }
}

@Suite struct CategoryTableTests {
    typealias Item = ShapeWorldEvaluation.Item

    @Test func overallIsTheMeanOfTheCategoryMeans() {
        // 3 counting images (1 pass), 1 single-object image (pass): overall strict (1/3 + 1) / 2.
        let items = [Item(id: "a", category: "counting", prompt: "p", seed: 0, strict: 1, soft: 1),
                     Item(id: "b", category: "counting", prompt: "p", seed: 0, strict: 0, soft: 0.5),
                     Item(id: "c", category: "counting", prompt: "p", seed: 1, strict: 0, soft: 0),
                     Item(id: "d", category: "single_object", prompt: "p", seed: 0, strict: 1, soft: 1),
                     Item(id: "e", category: "dense", prompt: "p", seed: 0, strict: 0, soft: 0.25)]
        let table = CategoryTable(items)
        #expect(table.rows.map(\.category) == ["single_object", "counting", "dense"])
        #expect(table.rows[1].images == 3 && abs(table.rows[1].strict - 1.0 / 3) < 1e-12 && table.rows[1].soft == 0.5)
        #expect(abs(table.overall.strict - (1 + 1.0 / 3 + 0) / 3) < 1e-12 && table.overall.images == 5)
        #expect(table.markdown.contains("| counting | 3 | 0.333 | 0.500 |"))
        #expect(table.markdown.split(separator: "\n").count == 2 + 3 + 1)
    }
}

@Suite struct AuditTests {
    @Test func picksAreBalancedAcrossCategoriesAndSeeded() {
        let set = records(10, category: .counting) + records(3, category: .position)
        var rng = SplitMix64(seed: 1)
        let picks = Audit.pick(set, count: 5, seeds: 4, rng: &rng)
        #expect(picks.filter { $0.record.category == .counting }.count == 3)
        #expect(picks.filter { $0.record.category == .position }.count == 2)
        #expect(picks.allSatisfy { (0..<4).contains($0.seed) })
        var again = SplitMix64(seed: 1)
        #expect(Audit.pick(set, count: 5, seeds: 4, rng: &again).map(\.record.id) == picks.map(\.record.id))
        var empty = SplitMix64(seed: 1)
        #expect(Audit.pick([], count: 5, seeds: 4, rng: &empty).isEmpty)
    }

    func verdict(_ n: Int, strict: Double) -> Audit.Verdict {
        Audit.Verdict(n: n, id: "\(n)", category: "counting", prompt: "p", seed: 0, strict: strict, soft: strict,
                      failed: [], detections: [])
    }

    @Test func comparisonCountsAgreementAndListsDisagreements() throws {
        let verdicts = [verdict(1, strict: 1), verdict(2, strict: 0), verdict(3, strict: 1)]
        let labels = [1: Audit.Label(n: 1, pass: true), 2: Audit.Label(n: 2, pass: true), 3: Audit.Label(n: 3, pass: true)]
        let c = try Audit.compare(verdicts, labels)
        #expect(c.counts == [[0, 0], [1, 2]] && c.agreement == 2 && c.total == 3)
        #expect(c.disagreements.map(\.verdict.n) == [2])
        #expect(c.markdown.contains("agreement: 2 of 3 (66.7%)"))
        #expect(throws: EvaluationError.self) { try Audit.compare(verdicts, [1: labels[1]!]) }
    }

    @Test func labelFilesThatDoNotParseNameTheLine() throws {
        let path = NSTemporaryDirectory() + "labels-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "{\"n\": 1, \"pass\": true}\n\n{\"n\": 2, \"pass\": false, \"note\": \"two\"}\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let labels = try Audit.readLabels(path)
        #expect(labels[2] == Audit.Label(n: 2, pass: false, note: "two") && labels.count == 2)
        try "{\"n\": 1, \"pass\": true}\n{\"n\": 1, \"pass\": false}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: EvaluationError.badFile(path: path, line: 2, message: "image 1 labelled twice")) {
            try Audit.readLabels(path)
        }
        try "{\"n\": 1, \"pass\": tru}\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try Audit.readLabels(path)
            Issue.record("read a broken label")
        } catch {
            #expect("\(error)".hasPrefix("\(path):1:"))
        }
    }
}

@Suite struct EvaluationProtocolTests {
    @Test func eachRowIsTheImageItsSeedGivesAlone() throws {
        let pipe = try StableDiffusionPipeline.load(folder: repository + "/Tests/DiffusionTests/Fixtures/tiny-sd")
        let evaluation = EvaluationProtocol(steps: 3, guidance: 5, seeds: 1)
        let both = try evaluation.images(pipe, prompts: ["w1 w2", "w3"], seeds: [4, 9])
        let alone = try evaluation.images(pipe, prompts: ["w3"], seeds: [9])
        #expect(both.count == 2 && both[0].width == 16)
        let worst = zip(both[1].pixels, alone[0].pixels).map { abs($0 - $1) }.max() ?? 1
        #expect(worst < 1e-4)
        #expect(throws: EvaluationError.self) { try evaluation.images(pipe, prompts: ["a"], seeds: []) }
    }

    /// The embedded model on three prompts, one seed, two steps: every image scored against its
    /// record's constraints, a gallery per category.
    @Test func shapeWorldEvaluationScoresEveryImage() throws {
        let pipe = try StableDiffusionPipeline.load(folder: repository + "/Models/shapeworld-sd", scheduler: "ddim")
        let evaluation = ShapeWorldEvaluation(evaluation: EvaluationProtocol(steps: 2, seeds: 2), batch: 2)
        var reports: [Int] = []
        let result = try evaluation.run(pipeline: pipe, records: records(3)) { done, total, _ in
            reports.append(done)
            #expect(total == 6)
        }
        #expect(reports == [2, 3, 5, 6])
        #expect(result.items.count == 6 && Set(result.items.map(\.seed)) == [0, 1])
        #expect(result.items.allSatisfy { [0, 1].contains($0.strict) && (0...1).contains($0.soft) })
        #expect(result.gallery.count == 3)
        #expect(result.table.rows.map(\.category) == ["single_object"])
    }
}

@Suite struct VAERoundTripTests {
    @Test func theShippedVAEKeepsVerdicts() throws {
        let vae = try AutoencoderKL.load(folder: repository + "/Models/shapeworld-sd/vae")
        let r = try VAERoundTrip.measure(vae: vae, scenes: 6, seed: 99, galleryPairs: 2)
        #expect(r.scenes == 6 && r.gallery.count == 4)
        #expect(r.kept >= 4)
        #expect(throws: EvaluationError.self) { try VAERoundTrip.measure(vae: vae, scenes: 0, seed: 0) }
    }
}

@Suite struct MethodSpecTests {
    @Test func parsesModesAdaptersAndUNetLoRAs() throws {
        #expect(try MethodSpec.parse("plain=none") == MethodSpec(name: "plain", mode: .none))
        #expect(try MethodSpec.parse("grpo=closed:5:Models/x") == MethodSpec(name: "grpo", mode: .closed, refinements: 5,
                                                                               adapter: "Models/x"))
        #expect(try MethodSpec.parse("ddpo=none@runs/ddpo/lora")
            == MethodSpec(name: "ddpo", mode: .none, unetLoRA: "runs/ddpo/lora"))
        #expect(try MethodSpec.parse("stack=closed:5:A@B") == MethodSpec(name: "stack", mode: .closed, refinements: 5,
                                                                          adapter: "A", unetLoRA: "B"))
        for bad in ["x=none@", "x=closed", "x=sideways", "=none", "x=open:many"] {
            #expect(throws: EvaluationError.self, "\(bad)") { try MethodSpec.parse(bad) }
        }
        // A spec without a UNet LoRA encodes as before (existing caches' spec files still match).
        let data = try JSONEncoder().encode(MethodSpec(name: "p", mode: .none))
        #expect(!String(decoding: data, as: UTF8.self).contains("unetLoRA"))
    }
}
