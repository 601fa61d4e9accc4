// Issue 13's any-N_R suite: one adapter (trained with random N_R) run at several numbers of
// refinements, closed and open loop, against plain sampling — strict score against N_R as a table
// (95% paired bootstrap intervals over prompts) and a plot. The images come from `MethodEvaluation`
// (cached per image, shared with `eval methods`: the N_R = 5 rows are the main table's `grpo` and
// `grpo-open`).
import Foundation
import Imaging

public struct StepsSuite {
    /// The numbers of refinements of the sweep.
    public var counts: [Int]
    /// The policy adapter (PEFT folder) the rows run.
    public var adapter: String

    public init(counts: [Int], adapter: String) {
        self.counts = counts
        self.adapter = adapter
    }

    /// The rows: plain first (the baseline of the differences), then closed and open loop per N_R. The
    /// N_R = 5 rows carry the main table's names so that they share its cache.
    public var methods: [MethodSpec] {
        var out = [MethodSpec(name: "plain", mode: .none)]
        for mode in [RolloutMode.closed, .open] {
            for n in counts {
                let name = n == 5 ? (mode == .closed ? "grpo" : "grpo-open") : "grpo-\(mode.rawValue)-\(n)"
                out.append(MethodSpec(name: name, mode: mode, refinements: n, adapter: adapter))
            }
        }
        return out
    }

    /// One row of the sweep: overall strict with its interval, and the paired difference from plain.
    public struct Row: Codable, Sendable {
        public var mode: String
        public var refinements: Int
        public var strict: PairedBootstrap.Estimate
        public var minusPlain: PairedBootstrap.Estimate
    }

    /// Strict overall per (mode, N_R) from a comparison of ``methods`` (same order).
    public func rows(_ table: ComparisonTable) throws -> [Row] {
        let plain = table.items[0]
        return try zip(methods, table.items).dropFirst().map { spec, items in
            Row(mode: spec.mode.rawValue, refinements: spec.refinements,
                strict: try table.bootstrap.estimate(items, value: \.strict).overall,
                minusPlain: try table.bootstrap.estimate(items, minus: plain, value: \.strict).overall)
        }
    }

    public static func markdown(_ rows: [Row], plain: PairedBootstrap.Estimate) -> String {
        func cell(_ e: PairedBootstrap.Estimate, signed: Bool = false) -> String { e.formatted(signed: signed) }
        var lines = ["| N_R | closed loop | closed − plain | open loop | open − plain |", "|---:|---|---|---|---|",
                     "| 0 (plain) | \(cell(plain)) | | \(cell(plain)) | |"]
        let counts = Array(Set(rows.map(\.refinements))).sorted()
        for n in counts {
            let c = rows.first { $0.mode == "closed" && $0.refinements == n }
            let o = rows.first { $0.mode == "open" && $0.refinements == n }
            lines.append("| \(n) | \(c.map { cell($0.strict) } ?? "—") | \(c.map { cell($0.minusPlain, signed: true) } ?? "—") | "
                + "\(o.map { cell($0.strict) } ?? "—") | \(o.map { cell($0.minusPlain, signed: true) } ?? "—") |")
        }
        return lines.joined(separator: "\n")
    }

    /// Strict against N_R, closed and open loop, plain as N_R = 0 (PNG and SVG at `path` + .png/.svg).
    public static func plot(_ rows: [Row], plain: PairedBootstrap.Estimate, to path: String) throws {
        var plot = LinePlot(title: "Strict score against the number of refinements (shipped adapter)",
                            xLabel: "N_R (refinements)", yLabel: "strict (eval)")
        for mode in ["closed", "open"] {
            let points = rows.filter { $0.mode == mode }.sorted { $0.refinements < $1.refinements }
                .map { (Double($0.refinements), $0.strict.mean) }
            if !points.isEmpty { plot.add("\(mode) loop", points: [(0, plain.mean)] + points) }
        }
        let top = Double(rows.map(\.refinements).max() ?? 1)
        plot.add("plain", points: [(0, plain.mean), (top, plain.mean)])
        try PNG.write(try plot.image(), to: path + ".png")
        try Data(try plot.svg().utf8).write(to: URL(fileURLWithPath: path + ".svg"), options: .atomic)
    }
}
