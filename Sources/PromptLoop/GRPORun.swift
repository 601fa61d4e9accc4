// A GRPO training run as a folder: the resolved config, metrics.jsonl (TRL's names), checkpoints
// written atomically every `save_every` iterations, a learning curve, and the adapter in PEFT format
// at the end. Running the same command again resumes from the last complete checkpoint.
import Foundation
import Imaging
import Torch
import Training

/// What a run reports while it goes (the caller prints).
public enum GRPOEvent: Sendable {
    case resumed(checkpoint: String, iteration: Int)
    case iteration(ProgressMeter, GRPOIterationMetrics)
    case evaluated(iteration: Int, values: [String: Double])
    case exported(String)
}

/// A GRPO run in `folder`.
public struct GRPORun {
    public var folder: String
    public var config: GRPOConfig
    /// Stop (checkpointed) after this iteration; the same command later continues.
    public var until: Int?
    /// Also copy the final adapter here (PEFT folder).
    public var export: String?

    public init(folder: String, config: GRPOConfig, until: Int? = nil, export: String? = nil) {
        self.folder = folder
        self.config = config
        self.until = until
        self.export = export
    }

    public var checkpointPath: String { folder + "/checkpoint.safetensors" }
    public var metricsPath: String { folder + "/metrics.jsonl" }

    /// Trains (or resumes) to `until` or the last iteration; returns the trainer.
    @discardableResult
    public func run(trainer given: GRPOTrainer? = nil, progress: (GRPOEvent) -> Void = { _ in }) throws -> GRPOTrainer {
        try config.validate()
        if let until, until <= 0 { throw EvaluationError.invalidArgument("--until must be positive, got \(until)") }
        try createFolder(folder)
        let lock = try RunLock(folder: folder)
        defer { withExtendedLifetime(lock) {} }
        let trainer = try given ?? GRPOTrainer.load(config: config)
        let log = MetricsLog(path: metricsPath)
        if let found = try TrainingCheckpoint.resumable(path: checkpointPath, signature: trainer.signature) {
            try trainer.resume(from: found)
            try log.truncate(after: trainer.iteration)
            progress(.resumed(checkpoint: found, iteration: trainer.iteration))
        } else {
            try log.truncate(after: 0)
        }
        try writeAtomically(try config.json(), to: folder + "/config.json")
        let stop = Swift.min(until ?? config.iterations, config.iterations)
        if trainer.iteration == 0 && config.evalEvery > 0 && !log.has(iteration: 0) {
            var values = try prefixed(trainer.evaluate(), "eval/")
            values.merge(try prefixed(trainer.evaluate(plain: true), "eval/plain_")) { $1 }
            try log.append(["iteration": 0] + values)
            progress(.evaluated(iteration: 0, values: values))
        }
        let meter = ProgressMeter(total: stop, startingAt: trainer.iteration, unit: "iteration")
        while trainer.iteration < stop {
            let metrics = try trainer.step()
            var line = metrics.values
            line["iteration"] = Double(metrics.iteration)
            let i = metrics.iteration
            let evaluate = config.evalEvery > 0 && (i % config.evalEvery == 0 || i == config.iterations)
            if evaluate {
                let values = try prefixed(trainer.evaluate(), "eval/")
                line.merge(values) { $1 }
                progress(.evaluated(iteration: i, values: values))
            }
            try log.append(line, note: metrics.skipReason)
            if i % config.saveEvery == 0 || i == stop {
                try trainer.save(to: checkpointPath)
                try writeCurve(log)
            }
            progress(.iteration(meter, metrics))
        }
        try writeCurve(log)
        if trainer.iteration >= config.iterations {
            try trainer.saveAdapter(to: folder + "/adapter")
            progress(.exported(folder + "/adapter"))
            if let export {
                try trainer.saveAdapter(to: export)
                progress(.exported(export))
            }
        }
        return trainer
    }

    func prefixed(_ values: [String: Double], _ prefix: String) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: values.map { (prefix + $0.key, $0.value) })
    }

    func createFolder(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw EvaluationError.invalidArgument("run folder \(path) is a file")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw EvaluationError.invalidArgument("cannot create the run folder \(path): \(error.localizedDescription)")
        }
    }

    /// reward and withheld strict score against images scored (PNG).
    func writeCurve(_ log: MetricsLog) throws {
        let rows = log.rows()
        let images = Double(config.queriesPerIteration * config.groupSize)
        func series(_ key: String) -> [(Double, Double)] {
            rows.compactMap { row in
                guard let i = row["iteration"], let v = row[key], v.isFinite else { return nil }
                return (i * images, v)
            }
        }
        var plot = LinePlot(title: "GRPO (\(config.mode.rawValue), \(config.reward))", xLabel: "images scored")
        for (key, label) in [("reward", "reward (training rollouts)"), ("rollout/strict", "strict (training rollouts)"),
                             ("eval/strict", "strict (withheld queries, greedy)")] {
            let points = series(key)
            if points.count >= 2 { plot.add(label, points: points) }
        }
        let plain = series("eval/plain_strict")
        if let first = plain.first, let last = rows.compactMap({ $0["iteration"] }).max(), last > 0 {
            plot.add("strict, plain sampling (withheld)", points: [first, (last * images, first.1)])
        }
        guard !plot.series.isEmpty else { return }
        try PNG.write(try plot.image(), to: folder + "/learning_curve.png")
        try writeAtomically(Data(try plot.svg().utf8), to: folder + "/learning_curve.svg")
    }
}

/// `metrics.jsonl`: one JSON object per line, keyed by `iteration`.
public struct MetricsLog {
    public let path: String

    public init(path: String) { self.path = path }

    public func append(_ values: [String: Double], note: String? = nil) throws {
        var object: [String: Any] = values.mapValues { $0.isFinite ? $0 as Any : String(describing: $0) as Any }
        if let note { object["note"] = note }
        if let i = values["iteration"] { object["iteration"] = Int(i) }
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        data.append(0x0A)
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError.logIO(path: path, reason: "cannot create it")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.logIO(path: path, reason: "cannot open it for appending")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } catch {
            throw TrainingError.logIO(path: path, reason: error.localizedDescription)
        }
    }

    /// The logged objects (numbers only; lines that do not parse — a line torn by a kill — are skipped).
    public func rows() -> [[String: Double]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                return nil
            }
            return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }

    public func has(iteration: Int) -> Bool { rows().contains { $0["iteration"] == Double(iteration) } }

    /// Keeps the complete lines of iterations ≤ `iteration` (after resuming from a checkpoint).
    public func truncate(after iteration: Int) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let kept = text.split(separator: "\n").filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let i = (object["iteration"] as? NSNumber)?.intValue else { return false }
            return i <= iteration
        }
        let out = kept.map { $0 + "\n" }.joined()
        do { try writeAtomically(Data(out.utf8), to: path) } catch {
            throw TrainingError.logIO(path: path, reason: "\(error)")
        }
    }
}

extension Dictionary where Key == String, Value == Double {
    static func + (lhs: [String: Double], rhs: [String: Double]) -> [String: Double] {
        lhs.merging(rhs) { $1 }
    }
}
