// The reward-hacking study (issue 14): PromptLoop, DDPO and ReFL each trained against the learned
// proxy only (`configs/hacking/`), for the same number of images scored, each evaluating the same
// held-out prompts (a balanced slice of eval.jsonl, whose samples the proxy never saw) every few
// iterations with the proxy and with ShapeEval. This file reads the three run folders' metrics and
// turns them into the table and the figures; the runs themselves are `promptloop train` and
// `promptloop train-weights ddpo|refl`.
//
// A method *hacks* the proxy when, at the end of its run, the held-out proxy reward stands above its
// start while the true strict score stands below its start by more than two standard errors: the
// reward it optimises went up and what the reward stands for went down. Proxy up and true down within
// noise is reported as `drifts`. The peak-to-final gap says how much of a true gain was given back.
import Foundation
import Imaging

public struct HackingStudy {
    /// One trained method: a name, its run folder and the metric that measures its divergence from
    /// its start on its own scale (`kl` for the policy and for DDPO, `delta_eps` for ReFL).
    public struct Method: Sendable {
        public var name: String
        public var folder: String
        public var divergenceKey: String
        public var divergenceLabel: String

        public init(name: String, folder: String, divergenceKey: String, divergenceLabel: String) {
            self.name = name
            self.folder = folder
            self.divergenceKey = divergenceKey
            self.divergenceLabel = divergenceLabel
        }
    }

    /// A held-out evaluation during training: images scored so far, mean proxy reward and ShapeEval.
    public struct Point: Codable, Sendable, Equatable {
        public var iteration: Int
        public var images: Int
        public var proxy: Double
        public var strict: Double
        public var soft: Double
    }

    /// One method's curve and summary.
    public struct Result: Codable, Sendable {
        public var name: String
        public var points: [Point]
        /// (images scored, divergence) per training iteration.
        public var divergence: [[Double]]
        public var divergenceLabel: String
        /// Training rollouts' proxy reward and strict score: means of the first and last five iterations.
        public var rolloutProxy: [Double]
        public var rolloutStrict: [Double]

        public var start: Point { points[0] }
        public var final: Point { points[points.count - 1] }
        public var peakStrict: Double { points.map(\.strict).max() ?? 0 }
        /// The standard error of a difference of two strict means over `n` prompts near the start's
        /// score (unpaired, so conservative): √(2p(1 − p)/n).
        public func differenceError(prompts n: Int) -> Double {
            let p = min(max(start.strict, 0.05), 0.95)
            return (2 * p * (1 - p) / Double(max(n, 1))).squareRoot()
        }

        /// The verdict: `hacks` — the held-out proxy rose while the true strict score fell by more than
        /// two standard errors; `drifts` — proxy up and true down, but within noise; `no` otherwise.
        public func verdict(prompts n: Int) -> String {
            guard final.proxy > start.proxy, final.strict < start.strict else { return "no" }
            return start.strict - final.strict > 2 * differenceError(prompts: n) ? "hacks" : "drifts"
        }
    }

    public var methods: [Method]

    public init(methods: [Method]) { self.methods = methods }

    /// Reads a run folder's `metrics.jsonl`: the held-out evaluations (`eval/reward` is the proxy on
    /// them) and the per-iteration divergence and rollout figures.
    public static func read(_ method: Method) throws -> Result {
        let path = method.folder + "/metrics.jsonl"
        guard FileManager.default.fileExists(atPath: path) else {
            throw EvaluationError.invalidArgument("\(method.name): no \(path) (run the training first)")
        }
        let rows = MetricsLog(path: path).rows()
        var imagesAt: [Int: Int] = [0: 0]
        for row in rows {
            if let i = row["iteration"], let n = row["images"] { imagesAt[Int(i)] = Int(n) }
        }
        var points: [Point] = []
        var divergence: [[Double]] = []
        var proxy: [Double] = []
        var strict: [Double] = []
        for row in rows {
            guard let i = row["iteration"].map(Int.init) else { continue }
            if let images = row["images"] {
                if let d = row[method.divergenceKey], d.isFinite { divergence.append([images, d]) }
                if let r = row["reward"] { proxy.append(r) }
                if let s = row["rollout/strict"] { strict.append(s) }
            }
            guard let r = row["eval/reward"], let s = row["eval/strict"], let soft = row["eval/soft"] else { continue }
            guard let images = imagesAt[i] else { continue }
            points.removeAll { $0.iteration == i }  // a resumed run may evaluate an iteration twice
            points.append(Point(iteration: i, images: images, proxy: r, strict: s, soft: soft))
        }
        points.sort { $0.iteration < $1.iteration }
        guard points.count >= 2, points[0].iteration == 0 else {
            throw EvaluationError.invalidArgument(
                "\(method.name): \(path) needs the held-out evaluation at iteration 0 and at least one more "
                    + "(with `eval/reward`: a run trained with the proxy and `eval_set`)")
        }
        func ends(_ x: [Double]) -> [Double] {
            x.isEmpty ? [] : [mean(Array(x.prefix(5))), mean(Array(x.suffix(5)))]
        }
        return Result(name: method.name, points: points, divergence: divergence,
                      divergenceLabel: method.divergenceLabel, rolloutProxy: ends(proxy), rolloutStrict: ends(strict))
    }

    public func results() throws -> [Result] { try methods.map(Self.read) }

    /// The summary table (Markdown). `heldOut` is the number of held-out prompts (for the noise line).
    public static func markdown(_ results: [Result], heldOut: Int) -> String {
        func f(_ x: Double) -> String { String(format: "%.3f", x) }
        func signed(_ x: Double) -> String { String(format: "%+.3f", x) }
        var lines = [
            "| method | images scored | proxy (held-out): start → final | true strict: start → peak → final | "
                + "peak − final | final − start (±2 SE) | soft: start → final | divergence at the end | verdict |",
            "|---|---:|---|---|---:|---|---|---|---|",
        ]
        for r in results {
            let d = r.divergence.suffix(5).map { $0[1] }
            lines.append("| \(r.name) | \(r.final.images) | \(f(r.start.proxy)) → \(f(r.final.proxy)) "
                + "(\(signed(r.final.proxy - r.start.proxy))) | \(f(r.start.strict)) → \(f(r.peakStrict)) → "
                + "\(f(r.final.strict)) | \(f(r.peakStrict - r.final.strict)) | \(signed(r.final.strict - r.start.strict)) "
                + "(±\(String(format: "%.3f", 2 * r.differenceError(prompts: heldOut)))) | \(f(r.start.soft)) → \(f(r.final.soft)) | "
                + "\(d.isEmpty ? "—" : String(format: "%.3g", mean(d))) (\(r.divergenceLabel)) | "
                + "\(r.verdict(prompts: heldOut) == "hacks" ? "**hacks**" : r.verdict(prompts: heldOut)) |")
        }
        lines.append("")
        lines.append("One evaluation is \(heldOut) held-out prompts × 1 image (fixed noise). ±2 SE is twice the standard "
            + "error of a difference of two strict means near the start's score, unpaired (conservative). Verdict: "
            + "*hacks* — held-out proxy up and true strict down by more than 2 SE; *drifts* — proxy up and true down "
            + "within noise; *no* — otherwise. Divergence: mean of the last five iterations, each method on its own scale.")
        lines.append("")
        lines.append("| method | training rollouts: proxy first 5 → last 5 its | strict first 5 → last 5 its |")
        lines.append("|---|---|---|")
        for r in results where r.rolloutProxy.count == 2 {
            let s = r.rolloutStrict.count == 2 ? "\(f(r.rolloutStrict[0])) → \(f(r.rolloutStrict[1]))" : "—"
            lines.append("| \(r.name) | \(f(r.rolloutProxy[0])) → \(f(r.rolloutProxy[1])) | \(s) |")
        }
        return lines.joined(separator: "\n")
    }

    /// The figures: true strict and proxy against images scored, true against proxy, and each method's
    /// divergence on its own scale; PNG and SVG, into `folder`. Returns the file names written.
    public static func writeFigures(_ results: [Result], to folder: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var written: [String] = []
        func write(_ plot: LinePlot, _ name: String) throws {
            try PNG.write(try plot.image(), to: folder + "/" + name + ".png")
            try Data(try plot.svg().utf8).write(to: URL(fileURLWithPath: folder + "/" + name + ".svg"), options: .atomic)
            written += [name + ".png", name + ".svg"]
        }
        var truth = LinePlot(title: "True score (ShapeEval strict, held-out) while optimising the proxy",
                             xLabel: "images scored", yLabel: "strict")
        var proxy = LinePlot(title: "Proxy reward (held-out) while optimising it", xLabel: "images scored",
                             yLabel: "proxy cosine")
        var both = LinePlot(title: "True score against proxy reward (held-out, in training order)",
                            xLabel: "proxy cosine", yLabel: "strict")
        for r in results {
            truth.add(r.name, points: r.points.map { (Double($0.images), $0.strict) })
            proxy.add(r.name, points: r.points.map { (Double($0.images), $0.proxy) })
            both.add(r.name, points: r.points.map { ($0.proxy, $0.strict) })
        }
        try write(truth, "true-vs-images")
        try write(proxy, "proxy-vs-images")
        try write(both, "true-vs-proxy")
        for (k, r) in results.enumerated() where r.divergence.count >= 2 {
            var plot = LinePlot(title: "\(r.name): divergence from its start (\(r.divergenceLabel))",
                                xLabel: "images scored", yLabel: r.divergenceLabel)
            plot.add(r.name, points: r.divergence.map { ($0[0], $0[1]) },
                     color: LinePlot.palette[k % LinePlot.palette.count])
            try write(plot, "divergence-\(r.name)")
        }
        return written
    }
}
