import Diffusion
import Foundation
import ShapeWorld
import Torch

/// Where is the lever? For each query, sample it plainly and with a switch to another prompt of the
/// same category from step k on, and count how often the switch changes the image's strict verdict
/// against the query. A switch that never changes a verdict is a refinement the policy cannot use.
public struct SwitchStudy {
    public struct Row: Sendable {
        public var step: Int
        public var images: Int
        /// Share of images whose strict verdict (against the query) differs from the plain image's.
        public var changed: Double
        /// Share whose verdict went from fail to pass and from pass to fail.
        public var gained: Double
        public var lost: Double
    }

    public var evaluation: EvaluationProtocol
    public var batch: Int

    public init(evaluation: EvaluationProtocol = .init(seeds: 1), batch: Int = 16) {
        self.evaluation = evaluation
        self.batch = batch
    }

    /// The switch prompt of each record: the next record of the same category with other constraints.
    public static func partners(_ records: [PromptRecord]) -> [String] {
        records.enumerated().map { i, r in
            let same = records.indices.map { (i + 1 + $0) % records.count }
                .first { records[$0].category == r.category && records[$0].constraints != r.constraints }
            return same.map { records[$0].prompt } ?? ""
        }
    }

    public func run(pipeline: StableDiffusionPipeline, records: [PromptRecord], steps: [Int],
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> [Row] {
        try evaluation.validate()
        let partners = Self.partners(records)
        let shapeEval = ShapeEval()
        let total = (steps.count + 1) * records.count * evaluation.seeds
        var done = 0
        func verdicts(switchAt k: Int?) throws -> [Double] {
            var out: [Double] = []
            for seed in 0..<evaluation.seeds {
                for start in stride(from: 0, to: records.count, by: batch) {
                    let chunk = Array(start..<Swift.min(start + batch, records.count))
                    var schedule: [Int: [String?]] = [:]
                    if let k { schedule[k] = chunk.map { partners[$0] } }
                    let result = try pipeline.sample(
                        prompts: chunk.map { records[$0].prompt },
                        options: SamplingOptions(steps: evaluation.steps, guidance: evaluation.guidance, seed: UInt64(seed),
                                                 rowSeeds: Array(repeating: UInt64(seed), count: chunk.count)),
                        schedule: schedule)
                    for (i, image) in zip(chunk, pipeline.decodeImages(result.latents)) {
                        out.append(shapeEval.score(image, records[i].constraints).strict)
                    }
                    done += chunk.count
                    progress(done, total)
                }
            }
            return out
        }
        let plain = try verdicts(switchAt: nil)
        return try steps.map { k in
            let switched = try verdicts(switchAt: k)
            let n = Double(plain.count)
            let gained = zip(plain, switched).filter { $0 == 0 && $1 == 1 }.count
            let lost = zip(plain, switched).filter { $0 == 1 && $1 == 0 }.count
            return Row(step: k, images: plain.count, changed: Double(gained + lost) / n, gained: Double(gained) / n,
                       lost: Double(lost) / n)
        }
    }

    public static func markdown(_ rows: [Row]) -> String {
        (["| switch from step | images | verdict changed | fail → pass | pass → fail |", "|---|---|---|---|---|"]
            + rows.map { String(format: "| %d | %d | %.3f | %.3f | %.3f |", $0.step, $0.images, $0.changed, $0.gained, $0.lost) })
            .joined(separator: "\n")
    }
}

/// How much can a faithful rewrite move the score? Each query is sampled as written and as
/// `paraphrases` faithful paraphrases (ShapeWorld's paraphraser: every one parses back to the query's
/// constraints), all from the same initial noise, and scored against the query. The mean over
/// paraphrases says what faithful rewording does on average; "best of" — the image passes for the
/// query or for at least one paraphrase — bounds what choosing a faithful prompt per image could
/// reach (an oracle that sees the final image: no policy can do better by rewording alone).
public struct ParaphraseStudy {
    public struct Row: Sendable {
        public var category: String
        public var images: Int
        public var plain: Double
        public var paraphraseMean: Double
        public var bestOf: Double
        /// Share of images where some paraphrase passes and the query fails, and the reverse share of
        /// paraphrase images that fail where the query passes.
        public var gainable: Double
        public var lostOnAverage: Double
    }

    public var evaluation: EvaluationProtocol
    public var paraphrases: Int
    public var batch: Int

    public init(evaluation: EvaluationProtocol = .init(seeds: 1), paraphrases: Int = 8, batch: Int = 18) {
        self.evaluation = evaluation
        self.paraphrases = paraphrases
        self.batch = batch
    }

    /// The paraphrases of record `i`: a pure function of its index and of k.
    public func prompts(_ record: PromptRecord, index: Int) -> [String] {
        var rng = SplitMix64(seed: 0x9A4A, stream: UInt64(index) &+ 1)
        return [record.prompt] + (0..<paraphrases).map { _ in Paraphraser().paraphrase(record.constraints, rng: &rng) }
    }

    public func run(pipeline: StableDiffusionPipeline, records: [PromptRecord],
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> [Row] {
        try evaluation.validate()
        let shapeEval = ShapeEval()
        let width = paraphrases + 1
        var jobs: [(record: Int, seed: Int, prompt: String)] = []
        for seed in 0..<evaluation.seeds {
            for (i, r) in records.enumerated() { jobs += prompts(r, index: i).map { (i, seed, $0) } }
        }
        var verdicts = [Double](repeating: 0, count: jobs.count)
        for start in stride(from: 0, to: jobs.count, by: batch) {
            let chunk = Array(start..<Swift.min(start + batch, jobs.count))
            let result = try withNoGrad {
                try pipeline.sample(prompts: chunk.map { jobs[$0].prompt },
                                    options: SamplingOptions(steps: evaluation.steps, guidance: evaluation.guidance,
                                                             seed: 0, rowSeeds: chunk.map { UInt64(jobs[$0].seed) }))
            }
            for (j, image) in zip(chunk, pipeline.decodeImages(result.latents)) {
                verdicts[j] = shapeEval.score(image, records[jobs[j].record].constraints).strict
            }
            progress(chunk.last! + 1, jobs.count)
        }
        var rows: [Row] = []
        let groups = stride(from: 0, to: jobs.count, by: width).map { Array(verdicts[$0..<($0 + width)]) }
        let categories = records.map(\.category.rawValue)
        for category in Array(Set(categories)).sorted() + ["all"] {
            let mine = groups.enumerated().filter { category == "all" || categories[jobs[$0.offset * width].record] == category }
                .map(\.element)
            guard !mine.isEmpty else { continue }
            let n = Double(mine.count)
            let plain = mine.map { $0[0] }.reduce(0, +) / n
            let paraphrase = mine.map { $0.dropFirst().reduce(0, +) / Double(paraphrases) }.reduce(0, +) / n
            let best = mine.map { $0.max()! }.reduce(0, +) / n
            let gainable = mine.filter { $0[0] == 0 && $0.dropFirst().contains(1) }.count
            let lost = mine.filter { $0[0] == 1 }.map { Double($0.dropFirst().filter { $0 == 0 }.count) / Double(paraphrases) }
                .reduce(0, +)
            rows.append(Row(category: category, images: mine.count, plain: plain, paraphraseMean: paraphrase,
                            bestOf: best, gainable: Double(gainable) / n, lostOnAverage: lost / n))
        }
        return rows
    }

    public static func markdown(_ rows: [Row], paraphrases: Int) -> String {
        (["| category | images | query as written | faithful paraphrase (mean of \(paraphrases)) | best of query + \(paraphrases) paraphrases | query fails, a paraphrase passes | query passes, paraphrase fails |",
          "|---|---|---|---|---|---|---|"]
            + rows.map { String(format: "| %@ | %d | %.3f | %.3f | %.3f | %.3f | %.3f |", $0.category, $0.images, $0.plain,
                                $0.paraphraseMean, $0.bestOf, $0.gainable, $0.lostOnAverage) })
            .joined(separator: "\n")
    }
}
