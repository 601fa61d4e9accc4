import Diffusion
import Foundation
import Imaging
import ShapeWorld

/// GenEval-style evaluation of a text-to-image model on a ShapeWorld prompt set: every prompt is
/// sampled with every seed under one ``EvaluationProtocol``, each image is scored by ShapeEval
/// against the prompt's constraints (the user's query, never a rewritten prompt), and strict / soft
/// scores are averaged per category.
public struct ShapeWorldEvaluation {
    /// One scored image.
    public struct Item: Codable, Sendable, Equatable {
        public var id: String
        public var category: String
        public var prompt: String
        public var seed: Int
        public var strict: Double
        public var soft: Double

        public init(id: String, category: String, prompt: String, seed: Int, strict: Double, soft: Double) {
            (self.id, self.category, self.prompt, self.seed, self.strict, self.soft) =
                (id, category, prompt, seed, strict, soft)
        }
    }

    /// What ``run(pipeline:records:progress:)`` gives: the scored images and a few images per
    /// category (seed 0) with PASS/FAIL captions, for a contact sheet.
    public struct Result {
        public var items: [Item]
        public var gallery: [(image: RGBImage, caption: String)]
        public var table: CategoryTable { CategoryTable(items) }
    }

    public var evaluation: EvaluationProtocol
    /// Images per sampling batch.
    public var batch: Int
    /// Gallery images per category.
    public var galleryPerCategory = 4

    public init(evaluation: EvaluationProtocol = .init(), batch: Int = 16) {
        self.evaluation = evaluation
        self.batch = batch
    }

    /// Samples and scores every (record, seed); `progress` gets the count done, the total and the
    /// running strict score.
    public func run(pipeline: StableDiffusionPipeline, records: [PromptRecord],
                    progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> Result {
        try evaluation.validate()
        guard batch > 0 else { throw EvaluationError.invalidArgument("batch must be positive, got \(batch)") }
        let shapeEval = ShapeEval()
        var result = Result(items: [], gallery: [])
        var shown: [PromptCategory: Int] = [:]
        let total = records.count * evaluation.seeds
        for seed in 0..<evaluation.seeds {
            for chunkStart in stride(from: 0, to: records.count, by: batch) {
                let chunk = Array(records[chunkStart..<Swift.min(chunkStart + batch, records.count)])
                let images = try evaluation.images(pipeline, prompts: chunk.map(\.prompt),
                                                   seeds: Array(repeating: UInt64(seed), count: chunk.count))
                for (record, image) in zip(chunk, images) {
                    let r = shapeEval.score(image, record.constraints)
                    result.items.append(Item(id: record.id, category: record.category.rawValue, prompt: record.prompt,
                                             seed: seed, strict: r.strict, soft: r.soft))
                    if seed == 0, shown[record.category, default: 0] < galleryPerCategory {
                        shown[record.category, default: 0] += 1
                        result.gallery.append((image, "\(r.strict == 1 ? "PASS" : "FAIL") \(record.prompt)"))
                    }
                }
                let strict = result.items.map(\.strict).reduce(0, +) / Double(result.items.count)
                progress(result.items.count, total, strict)
            }
        }
        return result
    }
}

/// Strict and soft ShapeEval scores per category and overall (GenEval's overall: the mean of the
/// per-category means, so that a set weighted towards one category does not hide the others).
public struct CategoryTable: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var category: String
        public var images: Int
        public var strict: Double
        public var soft: Double
    }

    /// GenEval's order of the six categories; other categories follow, sorted.
    public static let order = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]

    public var rows: [Row]
    public var overall: Row

    public init(_ items: [ShapeWorldEvaluation.Item]) {
        let present = Set(items.map(\.category))
        let categories = Self.order.filter(present.contains) + present.subtracting(Self.order).sorted()
        rows = categories.map { c in
            let r = items.filter { $0.category == c }
            return Row(category: c, images: r.count, strict: r.map(\.strict).reduce(0, +) / Double(r.count),
                       soft: r.map(\.soft).reduce(0, +) / Double(r.count))
        }
        let n = Double(Swift.max(rows.count, 1))
        overall = Row(category: "overall", images: items.count, strict: rows.map(\.strict).reduce(0, +) / n,
                      soft: rows.map(\.soft).reduce(0, +) / n)
    }

    /// The table in Markdown.
    public var markdown: String {
        var lines = ["| category | images | strict | soft |", "|---|---|---|---|"]
        for r in rows {
            lines.append(String(format: "| %@ | %d | %.3f | %.3f |", r.category, r.images, r.strict, r.soft))
        }
        lines.append(String(format: "| **overall** (mean of categories) | %d | %.3f | %.3f |", overall.images,
                            overall.strict, overall.soft))
        return lines.joined(separator: "\n")
    }
}
