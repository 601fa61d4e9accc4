import Diffusion
import Foundation
import ShapeWorld

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
