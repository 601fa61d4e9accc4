import ArgumentParser
import Diffusion
import Foundation
import ShapeWorld
import Torch

/// Is ShapeEval right about generated images? ShapeEval is both PromptLoop's reward and its metric,
/// and it was tuned on rendered scenes, so it is checked against a person's verdicts on images the
/// model made.
struct EvalAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check ShapeEval's verdicts on generated images against labels given by eye.",
        discussion: """
            Picks --count (prompt, seed) pairs from the prompt set, spread evenly over its categories \
            (seeded by --pick-seed), and generates each under the evaluation protocol (DDIM, 20 steps, \
            guidance 5, the image `generate --seed S` gives).

            Without --labels it writes to --out the images (NNN.png), ShapeEval's verdicts \
            (audit.jsonl) and numbered sheets of images and prompts with no verdicts on them \
            (sheet-K.png), to be labelled by eye without seeing the detector's answer.

            A labels file has one JSON object per line: {"n": 1, "pass": true, "note": "…"}, where \
            pass means the image shows everything its prompt asks for. With --labels the same images \
            are generated again, scored by the current detector, and the agreement is printed with \
            every disagreement.
            """)

    @OptionGroup var target: EvalTarget

    @Option(help: "Images to audit.")
    var count = 100

    @Option(help: "Seeds per prompt the images are drawn from: 0..<N (the protocol's 4).")
    var seeds = 4

    @Option(name: .customLong("pick-seed"), help: "Seed of the choice of (prompt, seed) pairs.")
    var pickSeed: UInt64 = 0

    @Option(help: "Folder for images, verdicts and sheets.")
    var out = "runs/audit"

    @Option(help: "Labels given by eye (JSONL); compare the detector with them.")
    var labels: String?

    @Option(help: "Images per sampling batch.")
    var batch = 16

    func validate() throws {
        guard count > 0, seeds > 0, batch > 0 else { throw ValidationError("--count, --seeds and --batch must be positive") }
    }

    struct Pick {
        var record: PromptRecord
        var seed: Int
    }

    struct Verdict: Codable {
        var n: Int
        var id: String
        var category: String
        var prompt: String
        var seed: Int
        var strict: Double
        var soft: Double
        var failed: [String]
        var detections: [String]
    }

    struct Label: Codable {
        var n: Int
        var pass: Bool
        var note: String?
    }

    /// `count` pairs, as even across categories as the set allows, in a seeded random order per category.
    static func pick(_ records: [PromptRecord], count: Int, seeds: Int, rng: inout SplitMix64) -> [Pick] {
        var categories: [PromptCategory] = []
        for r in records where !categories.contains(r.category) { categories.append(r.category) }
        var picks: [Pick] = []
        for (k, category) in categories.enumerated() {
            let quota = count / categories.count + (k < count % categories.count ? 1 : 0)
            var pool = records.filter { $0.category == category }.flatMap { r in (0..<seeds).map { Pick(record: r, seed: $0) } }
            for i in stride(from: pool.count - 1, to: 0, by: -1) {
                pool.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
            picks += pool.prefix(quota)
        }
        return picks
    }

    static func describe(_ d: Detection) -> String {
        String(format: "%@ %@ %@ at (%.0f, %.0f)", d.size.rawValue, d.color.rawValue, d.shape.rawValue, d.x, d.y)
    }

    func run() throws {
        let folder = try target.modelFolder()
        let given = try labels.map(Self.readLabels)
        let records = try target.records()
        var rng = SplitMix64(seed: pickSeed)
        let picks = Self.pick(records, count: count, seeds: seeds, rng: &rng)
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: "ddim")
        let shapeEval = ShapeEval()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var verdicts: [Verdict] = []
        var images: [RGBImage] = []
        let start = Date()
        for chunkStart in stride(from: 0, to: picks.count, by: batch) {
            let chunk = Array(picks[chunkStart..<Swift.min(chunkStart + batch, picks.count)])
            let made = try protocolImages(pipeline, prompts: chunk.map(\.record.prompt),
                                          seeds: chunk.map { UInt64($0.seed) }, steps: 20, guidance: 5)
            for (pick, image) in zip(chunk, made) {
                let r = shapeEval.score(image, pick.record.constraints)
                verdicts.append(Verdict(
                    n: verdicts.count + 1, id: pick.record.id, category: pick.record.category.rawValue,
                    prompt: pick.record.prompt, seed: pick.seed, strict: r.strict, soft: r.soft,
                    failed: r.constraints.filter { !$0.passed }.map(\.description),
                    detections: r.detections.map(Self.describe)))
                images.append(image)
            }
            reportProgress(step: verdicts.count, total: picks.count, since: start, fromStep: 0, text: "generated")
        }
        if let given {
            try compare(verdicts, given)
            return
        }
        for (v, image) in zip(verdicts, images) {
            try PNG.write(image, to: out + String(format: "/%03d.png", v.n))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let lines = try verdicts.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: out + "/audit.jsonl")
        let perSheet = 20
        let sheet = ContactSheet(columns: 5, scale: 4, captionLines: 3)
        for s in stride(from: 0, to: verdicts.count, by: perSheet) {
            let items = (s..<Swift.min(s + perSheet, verdicts.count)).map { (images[$0], "\(verdicts[$0].n): \(verdicts[$0].prompt)") }
            try PNG.write(sheet.render(items), to: out + "/sheet-\(s / perSheet + 1).png")
        }
        print("wrote \(verdicts.count) images, audit.jsonl and \((verdicts.count + perSheet - 1) / perSheet) sheets to \(out)")
    }

    static func readLabels(_ path: String) throws -> [Int: Label] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIError("cannot read the labels \(path): \(error.localizedDescription)")
        }
        var labels: [Int: Label] = [:]
        for (i, line) in text.split(separator: "\n").enumerated() where !line.allSatisfy(\.isWhitespace) {
            let label: Label
            do { label = try JSONDecoder().decode(Label.self, from: Data(line.utf8)) } catch {
                throw CLIError("\(path):\(i + 1): not a label {\"n\": …, \"pass\": …} (\(error))")
            }
            guard labels[label.n] == nil else { throw CLIError("\(path):\(i + 1): image \(label.n) labelled twice") }
            labels[label.n] = label
        }
        return labels
    }

    func compare(_ verdicts: [Verdict], _ labels: [Int: Label]) throws {
        let missing = verdicts.map(\.n).filter { labels[$0] == nil }
        guard missing.isEmpty else {
            throw CLIError("the labels have no verdict for image(s) \(missing.map(String.init).joined(separator: ", "))")
        }
        var agree = 0
        var table = [[0, 0], [0, 0]]  // [person][detector], 0 = fail, 1 = pass
        for v in verdicts {
            let person = labels[v.n]!.pass
            let detector = v.strict == 1
            table[person ? 1 : 0][detector ? 1 : 0] += 1
            if person == detector { agree += 1; continue }
            print("#\(v.n) [\(v.category)] \"\(v.prompt)\" seed \(v.seed): by eye \(person ? "PASS" : "FAIL"), "
                  + "detector \(detector ? "PASS" : "FAIL")")
            if let note = labels[v.n]!.note { print("    by eye: \(note)") }
            print("    detected: \(v.detections.isEmpty ? "nothing" : v.detections.joined(separator: "; "))")
            if !v.failed.isEmpty { print("    failed: \(v.failed.joined(separator: "; "))") }
        }
        print("| | detector PASS | detector FAIL |")
        print("|---|---|---|")
        print("| by eye PASS | \(table[1][1]) | \(table[1][0]) |")
        print("| by eye FAIL | \(table[0][1]) | \(table[0][0]) |")
        print(String(format: "agreement: %d of %d (%.1f%%)", agree, verdicts.count, 100 * Double(agree) / Double(verdicts.count)))
    }
}
