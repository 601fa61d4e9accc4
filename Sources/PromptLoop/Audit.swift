import Diffusion
import Foundation
import Imaging
import ShapeWorld
import Torch
import VisionLanguage

/// Is ShapeEval right about generated images? ShapeEval is both PromptLoop's reward and its metric,
/// and it was tuned on rendered scenes, so it is checked against a person's verdicts on images the
/// model made: pick (prompt, seed) pairs, generate them under the protocol, label them by eye
/// without seeing the detector's answer, then compare.
public enum Audit {
    public struct Pick: Sendable {
        public var record: PromptRecord
        public var seed: Int
    }

    /// ShapeEval's verdict on one audited image.
    public struct Verdict: Codable, Sendable, Equatable {
        public var n: Int
        public var id: String
        public var category: String
        public var prompt: String
        public var seed: Int
        public var strict: Double
        public var soft: Double
        public var failed: [String]
        public var detections: [String]
    }

    /// A label given by eye: `{"n": 1, "pass": true, "note": "…"}`.
    public struct Label: Codable, Sendable, Equatable {
        public var n: Int
        public var pass: Bool
        public var note: String?

        public init(n: Int, pass: Bool, note: String? = nil) {
            (self.n, self.pass, self.note) = (n, pass, note)
        }
    }

    /// `count` pairs, as even across categories as the set allows, in a seeded random order per category.
    public static func pick(_ records: [PromptRecord], count: Int, seeds: Int, rng: inout SplitMix64) -> [Pick] {
        var categories: [PromptCategory] = []
        for r in records where !categories.contains(r.category) { categories.append(r.category) }
        guard !categories.isEmpty else { return [] }
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

    /// Generates and scores the picks; `progress` gets (done, total).
    public static func generate(_ picks: [Pick], pipeline: StableDiffusionPipeline,
                                evaluation: EvaluationProtocol = .init(), batch: Int = 16,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> [(Verdict, RGBImage)] {
        guard batch > 0 else { throw EvaluationError.invalidArgument("batch must be positive, got \(batch)") }
        let shapeEval = ShapeEval()
        var out: [(Verdict, RGBImage)] = []
        for chunkStart in stride(from: 0, to: picks.count, by: batch) {
            let chunk = Array(picks[chunkStart..<Swift.min(chunkStart + batch, picks.count)])
            let made = try evaluation.images(pipeline, prompts: chunk.map(\.record.prompt),
                                             seeds: chunk.map { UInt64($0.seed) })
            for (pick, image) in zip(chunk, made) {
                let r = shapeEval.score(image, pick.record.constraints)
                let v = Verdict(n: out.count + 1, id: pick.record.id, category: pick.record.category.rawValue,
                                prompt: pick.record.prompt, seed: pick.seed, strict: r.strict, soft: r.soft,
                                failed: r.constraints.filter { !$0.passed }.map(\.description),
                                detections: r.detections.map(describe))
                out.append((v, image))
            }
            progress(out.count, picks.count)
        }
        return out
    }

    /// Reads a labels file (JSON Lines); each line is one ``Label``, each image labelled once.
    public static func readLabels(_ path: String) throws -> [Int: Label] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvaluationError.badFile(path: path, line: nil, message: "cannot read the labels")
        }
        var labels: [Int: Label] = [:]
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            let label: Label
            do { label = try JSONDecoder().decode(Label.self, from: Data(line.utf8)) } catch {
                throw EvaluationError.badFile(path: path, line: i + 1, message: "not a label {\"n\": …, \"pass\": …}")
            }
            guard labels[label.n] == nil else {
                throw EvaluationError.badFile(path: path, line: i + 1, message: "image \(label.n) labelled twice")
            }
            labels[label.n] = label
        }
        return labels
    }

    /// The detector against the labels.
    public struct Comparison: Sendable {
        /// counts[person][detector], 0 = fail, 1 = pass.
        public var counts = [[0, 0], [0, 0]]
        public var disagreements: [(verdict: Verdict, label: Label)] = []
        public var total: Int { counts.flatMap { $0 }.reduce(0, +) }
        public var agreement: Int { counts[0][0] + counts[1][1] }

        /// The confusion table and the agreement, in Markdown.
        public var markdown: String {
            """
            | | detector PASS | detector FAIL |
            |---|---|---|
            | by eye PASS | \(counts[1][1]) | \(counts[1][0]) |
            | by eye FAIL | \(counts[0][1]) | \(counts[0][0]) |
            \(String(format: "agreement: %d of %d (%.1f%%)", agreement, total, 100 * Double(agreement) / Double(Swift.max(total, 1))))
            """
        }
    }

    /// Compares every verdict with its label; an image without a label is an error naming it.
    public static func compare(_ verdicts: [Verdict], _ labels: [Int: Label]) throws -> Comparison {
        let missing = verdicts.map(\.n).filter { labels[$0] == nil }
        guard missing.isEmpty else {
            throw EvaluationError.invalidArgument(
                "the labels have no verdict for image(s) \(missing.map(String.init).joined(separator: ", "))")
        }
        var c = Comparison()
        for v in verdicts {
            guard let label = labels[v.n] else { continue }
            let detector = v.strict == 1
            c.counts[label.pass ? 1 : 0][detector ? 1 : 0] += 1
            if label.pass != detector { c.disagreements.append((v, label)) }
        }
        return c
    }
}

/// Does the VAE keep what ShapeEval sees? Renders fresh scenes, encodes and decodes them, and counts
/// the scenes whose per-constraint verdicts are the same on the reconstruction as on the original.
public enum VAERoundTrip {
    public struct Result {
        public var scenes = 0
        /// Scenes whose verdicts survived the round trip.
        public var kept = 0
        /// Scenes whose original passes strictly.
        public var originalsPassing = 0
        /// Originals and reconstructions of the first scenes, captioned.
        public var gallery: [(image: RGBImage, caption: String)] = []
    }

    public static func measure(vae: AutoencoderKL, scenes: Int, seed: UInt64, galleryPairs: Int = 8,
                               progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> Result {
        guard scenes > 0 else { throw EvaluationError.invalidArgument("scenes must be positive, got \(scenes)") }
        let shapeEval = ShapeEval()
        var result = Result()
        var rng = SplitMix64(seed: seed)
        let sampler = TrainingPairSampler(denseFraction: 1, paraphraseFraction: 0)
        let renderer = Renderer()
        while result.scenes < scenes {
            let n = Swift.min(16, scenes - result.scenes)
            let pairs = (0..<n).map { _ in sampler.sample(rng: &rng) }
            let images = pairs.map { renderer.render($0.scene) }
            let rebuilt = vae.roundTrip(images)
            for i in 0..<n {
                let before = shapeEval.score(images[i], pairs[i].constraints)
                let after = shapeEval.score(rebuilt[i], pairs[i].constraints)
                if before.strict == 1 { result.originalsPassing += 1 }
                let same = before.constraints.map(\.passed) == after.constraints.map(\.passed)
                if same { result.kept += 1 }
                if result.gallery.count < 2 * galleryPairs {
                    result.gallery.append((images[i], "original"))
                    result.gallery.append((rebuilt[i], same ? "same verdict" : "CHANGED"))
                }
            }
            result.scenes += n
            progress(result.scenes, scenes, Double(result.kept) / Double(result.scenes))
        }
        return result
    }
}

/// A blind audit of a method's gains: (prompt, seed) pairs where the method passes ShapeEval and the
/// baseline fails, both images of each pair shuffled together and labelled by eye without knowing
/// which method made which. It answers: are the method's passes real, or does it pass by fooling
/// the detector?
public enum BlindAudit {
    /// One image of the audit (`key.jsonl`; not to be read before labelling).
    public struct Entry: Codable, Sendable, Equatable {
        public var n: Int
        public var id: String
        public var category: String
        public var prompt: String
        public var seed: Int
        public var method: String
        public var detectorPass: Bool
        public var finalPrompt: String

        enum CodingKeys: String, CodingKey {
            case n, id, category, prompt, seed, method, detectorPass = "detector_pass", finalPrompt = "final_prompt"
        }
    }

    /// Up to `count` (id, seed) pairs where `method` passes strict and `baseline` fails, spread over
    /// categories as evenly as they allow, in a seeded order.
    public static func pick(method: [MethodItem], baseline: [MethodItem], count: Int, seed: UInt64)
        -> [(id: String, seed: Int)]
    {
        let failed = Set(baseline.filter { $0.strict < 1 }.map { "\($0.id)#\($0.seed)" })
        let gains = method.filter { $0.strict == 1 && failed.contains("\($0.id)#\($0.seed)") }
        var rng = SplitMix64(seed: seed)
        var pools = CategoryTable.order.map { c in rng.shuffled(gains.filter { $0.category == c }) }
        var out: [(String, Int)] = []
        // Round-robin over categories until `count` or every pool is empty.
        while out.count < count, pools.contains(where: { !$0.isEmpty }) {
            for c in pools.indices where !pools[c].isEmpty && out.count < count {
                let item = pools[c].removeLast()
                out.append((item.id, item.seed))
            }
        }
        return out
    }

    /// Generates both images of every pair (each method as the evaluation ran it), scores them, and
    /// numbers them in a seeded shuffle.
    public static func generate(pairs: [(id: String, seed: Int)], records: [PromptRecord], methods: [MethodSpec],
                                pipeline: StableDiffusionPipeline, evaluation: EvaluationProtocol = .init(),
                                policy: (String?) throws -> LlavaChat, shuffleSeed: UInt64,
                                maxNewTokens: Int = 32) throws -> [(Entry, RGBImage)] {
        let byId = Dictionary(records.map { ($0.id, $0) }) { a, _ in a }
        let chosen = try pairs.map { pair -> (PromptRecord, Int) in
            guard let r = byId[pair.id] else { throw EvaluationError.invalidArgument("no prompt \(pair.id) in the set") }
            return (r, pair.seed)
        }
        guard !chosen.isEmpty else { return [] }
        let shapeEval = ShapeEval()
        var made: [(Entry, RGBImage)] = []
        for method in methods {
            try method.rollOut(chosen, pipeline: pipeline, evaluation: evaluation, batch: 16, maxNewTokens: maxNewTokens,
                               policy: policy) { chunk, r in
                for (i, (record, seed)) in chunk.enumerated() {
                    let v = shapeEval.score(r.images[i], record.constraints)
                    made.append((Entry(n: 0, id: record.id, category: record.category.rawValue, prompt: record.prompt,
                                       seed: seed, method: method.name, detectorPass: v.strict == 1,
                                       finalPrompt: r.trajectories[i].finalPrompt), r.images[i]))
                }
            }
        }
        var rng = SplitMix64(seed: shuffleSeed)
        return rng.shuffled(made).enumerated().map { i, pair in
            var entry = pair.0
            entry.n = i + 1
            return (entry, pair.1)
        }
    }

    /// Per method: images, detector passes, and how many of those passes are passes by eye; plus
    /// the overall agreement of detector and eye.
    public static func summary(_ entries: [Entry], labels: [Int: Audit.Label]) throws -> String {
        let missing = entries.map(\.n).filter { labels[$0] == nil }
        guard missing.isEmpty else {
            throw EvaluationError.invalidArgument("no label for image(s) \(missing.map(String.init).joined(separator: ", "))")
        }
        var lines = ["| method | images | detector PASS | … PASS by eye | share | detector FAIL | … FAIL by eye |",
                     "|---|---|---|---|---|---|---|"]
        var methods: [String] = []
        for e in entries where !methods.contains(e.method) { methods.append(e.method) }
        for m in methods {
            let rows = entries.filter { $0.method == m }
            let pass = rows.filter(\.detectorPass)
            let passEye = pass.filter { labels[$0.n]!.pass }.count
            let fail = rows.filter { !$0.detectorPass }
            let failEye = fail.filter { !labels[$0.n]!.pass }.count
            lines.append(String(format: "| %@ | %d | %d | %d | %.1f%% | %d | %d |", m, rows.count, pass.count, passEye,
                                100 * Double(passEye) / Double(Swift.max(1, pass.count)), fail.count, failEye))
        }
        let agree = entries.filter { labels[$0.n]!.pass == $0.detectorPass }.count
        lines.append("")
        lines.append(String(format: "agreement of detector and eye: %d of %d (%.1f%%)", agree, entries.count,
                            100 * Double(agree) / Double(Swift.max(1, entries.count))))
        return lines.joined(separator: "\n")
    }
}
