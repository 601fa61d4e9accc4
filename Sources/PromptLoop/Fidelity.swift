// Prompt fidelity (issue 13): how much of the query the final prompt still says, a limitation the
// paper names and never measures.
import Diffusion
import Foundation
import ShapeWorld
import Torch

/// How faithful one final prompt is to its query.
public struct PromptFidelity: Sendable, Equatable {
    /// Of the query's constraints (object groups with their attributes, count and position, and
    /// relations), the share the final prompt still states, as ShapeWorld's parser reads it.
    public var constraintsKept: Double
    /// Whether the final prompt names a shape, colour or size the query does not.
    public var namesSomethingElse: Bool

    /// Compares `final` with the query's constraints.
    public static func measure(query: ConstraintSet, final: String, parser: PromptParser = PromptParser())
        -> PromptFidelity
    {
        let stated = parser.parse(final).constraints
        func same(_ a: ObjectQuery, _ b: ObjectQuery) -> Bool {
            a.shape == b.shape && a.color == b.color && a.size == b.size
        }
        var kept = 0
        for o in query.objects where stated.objects.contains(where: { same($0, o) && $0.count == o.count && $0.position == o.position }) {
            kept += 1
        }
        for r in query.relations {
            let subject = query.objects[r.subject], object = query.objects[r.object]
            if stated.relations.contains(where: {
                $0.relation == r.relation && same(stated.objects[$0.subject], subject) && same(stated.objects[$0.object], object)
            }) { kept += 1 }
        }
        let total = query.objects.count + query.relations.count
        let shapes = Set(query.objects.compactMap(\.shape)), colors = Set(query.objects.compactMap(\.color))
        let sizes = Set(query.objects.compactMap(\.size))
        let other = stated.objects.contains {
            ($0.shape.map { !shapes.contains($0) } ?? false) || ($0.color.map { !colors.contains($0) } ?? false)
                || ($0.size.map { !sizes.contains($0) } ?? false)
        }
        return PromptFidelity(constraintsKept: total == 0 ? 1 : Double(kept) / Double(total), namesSomethingElse: other)
    }

    /// Cosine between the pipeline's (first) text encoder's pooled embeddings of `a[i]` and `b[i]`.
    public static func cosines(_ a: [String], _ b: [String], pipeline: StableDiffusionPipeline) -> [Double] {
        precondition(a.count == b.count)
        guard let encoder = pipeline.textEncoders.first, let tokenizer = pipeline.tokenizers.first, !a.isEmpty else {
            return []
        }
        func pooled(_ texts: [String]) -> Tensor {
            let rows = texts.map { tokenizer.tokenize($0).ids.map(Int64.init) }
            let ids = Tensor(rows.flatMap { $0 }, shape: [rows.count, tokenizer.maxLength])
            return withNoGrad { encoder(ids).pooled.to(.float32) }
        }
        var out: [Double] = []
        for start in stride(from: 0, to: a.count, by: 64) {
            let end = Swift.min(a.count, start + 64)
            let x = pooled(Array(a[start..<end])), y = pooled(Array(b[start..<end]))
            let cos = (x * y).sum(dim: -1) / (x.square().sum(dim: -1).sqrt() * y.square().sum(dim: -1).sqrt())
            out += cos.toArray(Float.self).map(Double.init)
        }
        return out
    }
}

/// The fidelity table: per method, over its final prompts (one per prompt and seed).
public struct FidelityTable {
    public struct Row: Sendable {
        public var method: String
        public var images: Int
        public var constraintsKept: Double
        public var namesSomethingElse: Double
        public var cosine: Double
        public var strict: Double
        /// The prompts whose final prompt drifted furthest (lowest cosine): query, final, cosine.
        public var worst: [(query: String, final: String, cosine: Double)]
    }

    public var rows: [Row] = []

    /// Measures each method's cached items against the records' queries.
    public init(methods: [MethodSpec], items: [[MethodItem]], records: [PromptRecord], pipeline: StableDiffusionPipeline) {
        let byId = Dictionary(records.map { ($0.id, $0) }) { a, _ in a }
        for (spec, list) in zip(methods, items) {
            let pairs = list.compactMap { item in byId[item.id].map { ($0, item) } }
            let measures = pairs.map { PromptFidelity.measure(query: $0.0.constraints, final: $0.1.finalPrompt) }
            let cosines = PromptFidelity.cosines(pairs.map(\.0.prompt), pairs.map(\.1.finalPrompt), pipeline: pipeline)
            let n = Double(Swift.max(pairs.count, 1))
            var worst: [(String, String, Double)] = []
            // One row per query text: eval.jsonl holds a few queries twice (other ids, same text and
            // seeds, hence the same rollouts).
            var seen = Set<String>()
            for i in cosines.indices.sorted(by: { cosines[$0] < cosines[$1] }) where !seen.contains(pairs[i].0.prompt) {
                seen.insert(pairs[i].0.prompt)
                worst.append((pairs[i].0.prompt, pairs[i].1.finalPrompt, cosines[i]))
                if worst.count == 10 { break }
            }
            rows.append(Row(method: spec.name, images: pairs.count,
                            constraintsKept: measures.reduce(0) { $0 + $1.constraintsKept } / n,
                            namesSomethingElse: Double(measures.filter(\.namesSomethingElse).count) / n,
                            cosine: cosines.reduce(0, +) / n, strict: pairs.reduce(0) { $0 + $1.1.strict } / n,
                            worst: worst))
        }
    }

    public func markdown() -> String {
        var lines = ["| method | images | constraints kept | names something the query does not | cosine (pooled text) | strict |",
                     "|---|---:|---:|---:|---:|---:|"]
        for r in rows {
            lines.append(String(format: "| %@ | %d | %.3f | %.3f | %.3f | %.3f |", r.method, r.images, r.constraintsKept,
                                r.namesSomethingElse, r.cosine, r.strict))
        }
        for r in rows where !r.worst.isEmpty && r.worst.contains(where: { $0.cosine < 0.9999 }) {
            lines += ["", "Worst drift of `\(r.method)` (lowest cosine, one per query text):", "",
                      "| query | final prompt | cosine |", "|---|---|---:|"]
            for w in r.worst {
                lines.append("| \(w.query) | \(w.final.replacingOccurrences(of: "|", with: "\\|")) | \(String(format: "%.3f", w.cosine)) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    public func json() -> [[String: Any]] {
        rows.map {
            ["method": $0.method, "images": $0.images, "constraints_kept": $0.constraintsKept,
             "names_something_else": $0.namesSomethingElse, "cosine": $0.cosine, "strict": $0.strict,
             "worst": $0.worst.map { ["query": $0.query, "final": $0.final, "cosine": $0.cosine] }]
        }
    }
}
