import ArgumentParser
import Diffusion
import Foundation
import ShapeWorld
import Torch

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure prompt alignment with ShapeEval.",
        subcommands: [EvalShapeWorld.self, EvalVAE.self, EvalAudit.self])
}

/// The model and prompt set an evaluation runs on.
struct EvalTarget: ParsableArguments {
    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var model: String?

    @Option(help: "Prompt set (JSONL with prompt, category, constraints).")
    var set = "Data/shapeworld/v1/eval.jsonl"

    func modelFolder() throws -> String {
        guard let folder = model ?? defaultModelFolder() else {
            throw CLIError("no --model given and the embedded default model is not in this checkout")
        }
        return folder
    }

    func records() throws -> [PromptRecord] { try loadPromptSet(set) }
}

/// The records of a prompt set (JSONL), with the line of any record that does not parse.
func loadPromptSet(_ path: String) throws -> [PromptRecord] {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw CLIError("cannot read the prompt set \(path): \(error.localizedDescription)")
    }
    return try text.split(separator: "\n").enumerated().map { i, line in
        do { return try JSONDecoder().decode(PromptRecord.self, from: Data(line.utf8)) } catch {
            throw CLIError("\(path):\(i + 1): not a prompt record (\(error))")
        }
    }
}

/// The evaluation protocol's images: row i is the image `generate --seed seeds[i]` gives for
/// `prompts[i]` alone.
func protocolImages(_ pipeline: StableDiffusionPipeline, prompts: [String], seeds: [UInt64], steps: Int,
                    guidance: Double) throws -> [RGBImage] {
    let out = try pipeline.sample(
        prompts: prompts, options: SamplingOptions(steps: steps, guidance: guidance, seed: seeds[0], rowSeeds: seeds))
    let decoded = pipeline.decode(out.latents)
    let (h, w) = (decoded.size(2), decoded.size(3))
    return (0..<prompts.count).map { RGBImage(width: w, height: h, planar: decoded[$0].contiguous().toArray(Float.self)) }
}

/// GenEval-style evaluation of a text-to-image model on a ShapeWorld prompt set: every prompt is
/// sampled with every seed under one fixed protocol, each image is scored by ShapeEval against the
/// prompt's constraints, and strict / soft scores are averaged per category.
struct EvalShapeWorld: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapeworld",
        abstract: "Per-category ShapeEval scores of a model on a prompt set (default protocol: DDIM, 20 steps, "
            + "guidance 5, seeds 0–3).")

    @OptionGroup var target: EvalTarget

    @Option(help: "Denoising steps.")
    var steps = 20

    @Option(help: "Guidance scale.")
    var guidance = 5.0

    @Option(help: "Scheduler.")
    var scheduler = "ddim"

    @Option(help: "Seeds per prompt: 0..<N.")
    var seeds = 4

    @Option(help: "Images per sampling batch.")
    var batch = 16

    @Option(help: "Only the first N prompts (for a quick look).")
    var limit: Int?

    @Option(help: "Write per-image results (JSON) here.")
    var results: String?

    @Option(help: "Write a contact sheet of the first 4 images (seed 0) of each category here (PNG), a row per category.")
    var sheet: String?

    func validate() throws {
        guard steps > 0, seeds > 0, batch > 0 else { throw ValidationError("--steps, --seeds and --batch must be positive") }
    }

    struct Item: Codable {
        var id: String
        var category: String
        var prompt: String
        var seed: Int
        var strict: Double
        var soft: Double
    }

    func run() throws {
        let folder = try target.modelFolder()
        var records = try target.records()
        if let limit { records = Array(records.prefix(limit)) }
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: scheduler)
        let shapeEval = ShapeEval()
        var items: [Item] = []
        var gallery: [(category: PromptCategory, image: RGBImage, caption: String)] = []
        let start = Date()
        let total = records.count * seeds
        for seed in 0..<seeds {
            for chunkStart in stride(from: 0, to: records.count, by: batch) {
                let chunk = Array(records[chunkStart..<Swift.min(chunkStart + batch, records.count)])
                let images = try protocolImages(pipeline, prompts: chunk.map(\.prompt),
                                                seeds: Array(repeating: UInt64(seed), count: chunk.count),
                                                steps: steps, guidance: guidance)
                for (record, image) in zip(chunk, images) {
                    let r = shapeEval.score(image, record.constraints)
                    items.append(Item(id: record.id, category: record.category.rawValue, prompt: record.prompt,
                                      seed: seed, strict: r.strict, soft: r.soft))
                    if seed == 0, gallery.filter({ $0.category == record.category }).count < 4 {
                        gallery.append((record.category, image, "\(r.strict == 1 ? "PASS" : "FAIL") \(record.prompt)"))
                    }
                }
                reportProgress(step: items.count, total: total, since: start, fromStep: 0,
                               text: String(format: "strict %.3f", items.map(\.strict).reduce(0, +) / Double(items.count)))
            }
        }
        printTable(items)
        if let results {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(encoder.encode(items), to: results)
        }
        if let sheet { try PNG.write(ContactSheet().render(gallery.map { ($0.image, $0.caption) }), to: sheet) }
    }

    func printTable(_ items: [Item]) {
        let order = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
        let categories = order.filter { c in items.contains { $0.category == c } }
            + Set(items.map(\.category)).subtracting(order).sorted()
        print("| category | images | strict | soft |")
        print("|---|---|---|---|")
        for c in categories {
            let rows = items.filter { $0.category == c }
            print(String(format: "| %@ | %d | %.3f | %.3f |", c, rows.count,
                         rows.map(\.strict).reduce(0, +) / Double(rows.count),
                         rows.map(\.soft).reduce(0, +) / Double(rows.count)))
        }
        // Overall as GenEval reports it: the mean of the per-category scores.
        let perCategory = categories.map { c in
            let rows = items.filter { $0.category == c }
            return (rows.map(\.strict).reduce(0, +) / Double(rows.count), rows.map(\.soft).reduce(0, +) / Double(rows.count))
        }
        print(String(format: "| **overall** (mean of categories) | %d | %.3f | %.3f |", items.count,
                     perCategory.map(\.0).reduce(0, +) / Double(perCategory.count),
                     perCategory.map(\.1).reduce(0, +) / Double(perCategory.count)))
    }
}
