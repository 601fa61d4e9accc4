// Issue 13's ablation and main tables: fixed lists of methods (the paper's rows on the miniature), each
// row compared with the one it extends by a paired bootstrap over prompts. The images come from
// `MethodEvaluation` (cached per image and shared with `eval methods`, so rows that other tables
// already sampled are not sampled again). Headline rows run on every seed the suite is given,
// intermediate and side rows on at most two; a difference between two rows uses only the seeds both
// have (`PairedBootstrap.estimate(_:minus:value:)`), so that it stays paired image by image.
import Foundation
import Imaging
import Tokenizers

public struct PaperSuite: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case ablation, main
    }

    /// One row of a suite.
    public struct Row: Sendable {
        public var spec: MethodSpec
        /// What the row is, in the paper's words.
        public var label: String
        /// The row's difference is taken against this row's name (nil: none).
        public var against: String?
        /// Headline rows run on every seed; the others on at most ``intermediateSeeds``.
        public var headline: Bool
        /// A side row (outside the chain of components added one at a time).
        public var side: Bool
    }

    public static let intermediateSeeds = 2

    public var kind: Kind
    public var rows: [Row]

    /// Where the ablation's adapters ship: `<adapters>/promptloop` (closed loop, the main one),
    /// `<adapters>/feed-forward` and `<adapters>/open`.
    public static func ablation(adapters: String = "Models/shapeworld-policy/adapters", chatModel: String?) -> PaperSuite {
        let closed = adapters + "/promptloop"
        var rows = [
            Row(spec: MethodSpec(name: "plain", mode: .none), label: "plain sampling", against: nil, headline: true,
                side: false),
            Row(spec: MethodSpec(name: "pretrained-ff", mode: .feedForward, refinements: 1),
                label: "+ pretrained policy, feed-forward (the untrained MLLM)", against: "plain", headline: true,
                side: false),
            Row(spec: MethodSpec(name: "grpo-ff", mode: .feedForward, refinements: 1, adapter: adapters + "/feed-forward"),
                label: "+ GRPO, feed-forward (one rewrite)", against: "pretrained-ff", headline: true, side: false),
            Row(spec: MethodSpec(name: "grpo-open-trained", mode: .open, refinements: 5, adapter: adapters + "/open"),
                label: "+ multi-step (N_R = 5, trained and run open loop)", against: "grpo-ff", headline: false,
                side: false),
            Row(spec: MethodSpec(name: "grpo", mode: .closed, refinements: 5, adapter: closed),
                label: "+ visual feedback (trained closed loop: PromptLoop)", against: "grpo-open-trained",
                headline: true, side: false),
            Row(spec: MethodSpec(name: "pretrained", mode: .closed, refinements: 5),
                label: "side: pretrained policy, closed loop N_R = 5", against: "pretrained-ff", headline: false,
                side: true),
        ]
        if let chatModel {
            rows.append(Row(spec: MethodSpec(name: "smollm2-ff", mode: .feedForward, refinements: 1, chatModel: chatModel),
                            label: "side: SmolLM2-135M-Instruct with a system prompt, feed-forward", against: "plain",
                            headline: false, side: true))
        }
        return PaperSuite(kind: .ablation, rows: rows)
    }

    /// The main comparison; the weight-level rows (DDPO, Diffusion-DPO LoRAs in `<loras>/ddpo`,
    /// `<loras>/dpo`) alone and under PromptLoop.
    public static func main(adapters: String = "Models/shapeworld-policy/adapters",
                            loras: String = "Models/shapeworld-sd/lora") -> PaperSuite {
        let closed = adapters + "/promptloop"
        func row(_ spec: MethodSpec, _ label: String, _ against: String?) -> Row {
            Row(spec: spec, label: label, against: against, headline: true, side: false)
        }
        return PaperSuite(kind: .main, rows: [
            row(MethodSpec(name: "plain", mode: .none), "plain sampling", nil),
            row(MethodSpec(name: "grpo-ff", mode: .feedForward, refinements: 1, adapter: adapters + "/feed-forward"),
                "feed-forward rewriter trained with GRPO (RePrompt style)", "plain"),
            row(MethodSpec(name: "grpo", mode: .closed, refinements: 5, adapter: closed),
                "PromptLoop, closed loop (N_R = 5)", "grpo-ff"),
            row(MethodSpec(name: "grpo-open", mode: .open, refinements: 5, adapter: closed),
                "PromptLoop trained closed, run open loop (N_R = 5)", "grpo"),
            row(MethodSpec(name: "ddpo", mode: .none, unetLoRA: loras + "/ddpo"), "DDPO weights", "plain"),
            row(MethodSpec(name: "ddpo-grpo", mode: .closed, refinements: 5, adapter: closed, unetLoRA: loras + "/ddpo"),
                "PromptLoop on DDPO weights", "ddpo"),
            row(MethodSpec(name: "dpo", mode: .none, unetLoRA: loras + "/dpo"), "Diffusion-DPO weights", "plain"),
            row(MethodSpec(name: "dpo-grpo", mode: .closed, refinements: 5, adapter: closed, unetLoRA: loras + "/dpo"),
                "PromptLoop on Diffusion-DPO weights", "dpo"),
        ])
    }

    public static func named(_ kind: Kind, chatModel: String?) -> PaperSuite {
        kind == .ablation ? ablation(chatModel: chatModel) : main()
    }

    /// Seeds of a row when the suite is run with `seeds`.
    public func seeds(of row: Row, given seeds: Int) -> Int {
        row.headline ? seeds : Swift.min(seeds, Self.intermediateSeeds)
    }

    /// The adapters and UNet LoRAs the rows need that are not on disk.
    public func missing(exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> [String] {
        rows.flatMap { [$0.spec.adapter, $0.spec.unetLoRA, $0.spec.chatModel].compactMap { $0 } }.filter { !exists($0) }
    }

    /// One row's numbers.
    public struct Summary: Codable, Sendable {
        public var name: String
        public var label: String
        public var seeds: Int
        public var images: Int
        public var strict: PairedBootstrap.Estimate
        public var strictExact: PairedBootstrap.Estimate
        public var soft: PairedBootstrap.Estimate
        /// strict minus plain's, on the seeds both have.
        public var minusPlain: PairedBootstrap.Estimate?
        /// The row it extends and strict minus that row's, on the seeds both have.
        public var against: String?
        public var minusAgainst: PairedBootstrap.Estimate?
        public var objectsPerImage: Double
        public var invalidPerImage: Double
        /// Final prompts' words outside the diffusion model's vocabulary, per final prompt (nil: not counted).
        public var unknownWordsPerPrompt: Double?
        /// The share of final prompts with at least one such word.
        public var promptsWithUnknownWords: Double?
    }

    /// The summaries of ``rows`` from their items (same order); `unknownWords` counts a prompt's
    /// words outside the model's vocabulary (nil: not counted).
    public func summaries(_ items: [[MethodItem]], bootstrap: PairedBootstrap,
                          unknownWords: ((String) -> Int)? = nil) throws -> [Summary] {
        precondition(items.count == rows.count, "one item list per row")
        let byName = Dictionary(zip(rows.map(\.spec.name), items)) { a, _ in a }
        func difference(_ a: [MethodItem], _ b: [MethodItem]) throws -> PairedBootstrap.Estimate {
            try bootstrap.estimate(a, minus: b, value: \.strict).overall
        }
        return try zip(rows, items).map { row, rows in
            let n = Double(Swift.max(1, rows.count))
            var s = Summary(name: row.spec.name, label: row.label, seeds: Set(rows.map(\.seed)).count, images: rows.count,
                            strict: try bootstrap.estimate(rows, value: \.strict).overall,
                            strictExact: try bootstrap.estimate(rows, value: \.strictExact).overall,
                            soft: try bootstrap.estimate(rows, value: \.soft).overall,
                            objectsPerImage: Double(rows.map(\.objects).reduce(0, +)) / n,
                            invalidPerImage: Double(rows.map(\.invalidActions).reduce(0, +)) / n)
            if let plain = byName["plain"], row.spec.name != "plain" { s.minusPlain = try difference(rows, plain) }
            if let against = row.against, let base = byName[against] {
                s.against = against
                s.minusAgainst = try difference(rows, base)
            }
            if let unknownWords {
                let counts = rows.map { unknownWords($0.finalPrompt) }
                s.unknownWordsPerPrompt = Double(counts.reduce(0, +)) / n
                s.promptsWithUnknownWords = Double(counts.filter { $0 > 0 }.count) / n
            }
            return s
        }
    }

    /// The summary table in Markdown.
    public static func markdown(_ summaries: [Summary]) -> String {
        func cell(_ e: PairedBootstrap.Estimate?, signed: Bool = false) -> String { e?.formatted(signed: signed) ?? "" }
        let counted = summaries.contains { $0.unknownWordsPerPrompt != nil }
        var lines = ["| row | method | seeds | strict | Δ strict vs the row it extends | Δ strict vs plain | strict-exact | soft "
                        + "| objects / image | invalid actions / image\(counted ? " | unknown words / prompt (prompts with any)" : "") |",
                     "|---|---|---:|---|---|---|---|---|---:|---:\(counted ? "|---:" : "")|"]
        for s in summaries {
            var line = "| \(s.label) | `\(s.name)` | \(s.seeds) | **\(cell(s.strict))** | "
                + (s.against.map { "\(cell(s.minusAgainst, signed: true)) vs `\($0)`" } ?? "") + " | "
                + "\(cell(s.minusPlain, signed: true)) | \(cell(s.strictExact)) | \(cell(s.soft)) | "
                + String(format: "%.2f | %.2f", s.objectsPerImage, s.invalidPerImage)
            if counted {
                line += s.unknownWordsPerPrompt.map { String(format: " | %.2f (%.0f%%)", $0, 100 * (s.promptsWithUnknownWords ?? 0)) }
                    ?? " | "
            }
            lines.append(line + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// Words of `text` that `tokenizer` (a WordLevel tokenizer with an unknown token) maps to its unknown token.
    public static func unknownWords(in text: String, tokenizer: any Tokenizer, unknownToken: String = "<unk>") -> Int {
        guard let unk = tokenizer.tokenToId(unknownToken) else { return 0 }
        return tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: false)).ids.filter { $0 == unk }.count
    }
}

// MARK: - Learning curves

extension PaperSuite {
    /// A training run's curve from its `metrics.jsonl`: (iteration, value) for every line that has `key`,
    /// in iteration order; an iteration logged twice (a resumed run computes the iterations after its
    /// checkpoint again) keeps its last line.
    public static func curve(metrics path: String, key: String) throws -> [(Double, Double)] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EvaluationError.invalidArgument("no \(path) (the run's metrics)")
        }
        var points: [Double: Double] = [:]
        for row in MetricsLog(path: path).rows() {
            if let i = row["iteration"], let v = row[key], v.isFinite { points[i] = v }
        }
        return points.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The learning curves of several runs (name, metrics.jsonl) on one plot: `key` against iteration
    /// (PNG and SVG at `path` + .png/.svg). Runs without a point of `key` are left out.
    public static func plotCurves(_ runs: [(name: String, metrics: String)], key: String, title: String, yLabel: String,
                                  to path: String) throws {
        var plot = LinePlot(title: title, xLabel: "iteration", yLabel: yLabel)
        for run in runs {
            let points = try curve(metrics: run.metrics, key: key)
            if !points.isEmpty { plot.add(run.name, points: points) }
        }
        try PNG.write(try plot.image(), to: path + ".png")
        try Data(try plot.svg().utf8).write(to: URL(fileURLWithPath: path + ".svg"), options: .atomic)
    }
}
