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

/// A trainer that an ``IterativeRun`` drives: one iteration per ``step()``, checkpoints of its whole
/// state, an evaluation of withheld queries, and an adapter to export at the end.
public protocol IterativeTrainer: AnyObject {
    /// Iterations done.
    var iteration: Int { get }
    /// What must match for a checkpoint to be resumed (the settings that change the iterations).
    var signature: String { get }
    /// The iterations of the whole run; checkpoint and evaluation periods (0: never evaluate).
    var runLength: (iterations: Int, saveEvery: Int, evalEvery: Int) { get }
    /// Images scored per iteration (the learning curve's x axis) and the curve's title.
    var imagesPerIteration: Int { get }
    var curveTitle: String { get }
    /// The resolved configuration, written as the run folder's `config.json`.
    func configJSON() throws -> Data
    func step() throws -> GRPOIterationMetrics
    /// The withheld queries with the trained adapter.
    func evaluate() throws -> [String: Double]
    /// The same without any method (plain sampling), logged once at iteration 0; nil when the
    /// trainer's start is already plain sampling.
    func evaluatePlain() throws -> [String: Double]?
    func save(to path: String) throws
    func resume(from path: String) throws
    /// Writes the trained adapter (PEFT or diffusers folder).
    func saveAdapter(to folder: String) throws
}

/// A training run as a folder: `config.json`, `metrics.jsonl`, checkpoints every `saveEvery`
/// iterations (atomic, checksummed, the previous one kept), the learning curve, and the adapter
/// under `adapterName` at the end. The same command again resumes from the last complete checkpoint;
/// a lock keeps a second run off the folder.
public struct IterativeRun {
    public var folder: String
    /// Stop (checkpointed) after this iteration; the same command later continues.
    public var until: Int?
    /// Also copy the final adapter here.
    public var export: String?
    /// The adapter's folder name inside the run folder.
    public var adapterName = "adapter"

    public init(folder: String, until: Int? = nil, export: String? = nil) {
        self.folder = folder
        self.until = until
        self.export = export
    }

    public var checkpointPath: String { folder + "/checkpoint.safetensors" }
    public var metricsPath: String { folder + "/metrics.jsonl" }

    /// Locks the folder, builds the trainer with `make` (after the lock: loading takes a while),
    /// resumes and trains to `until` or the end.
    @discardableResult
    public func run<T: IterativeTrainer>(make: () throws -> T, progress: (GRPOEvent) -> Void = { _ in }) throws -> T {
        if let until, until <= 0 { throw EvaluationError.invalidArgument("--until must be positive, got \(until)") }
        try createFolder(folder)
        let lock = try RunLock(folder: folder)
        defer { withExtendedLifetime(lock) {} }
        let trainer = try make()
        let (iterations, saveEvery, evalEvery) = trainer.runLength
        let log = MetricsLog(path: metricsPath)
        if let found = try TrainingCheckpoint.resumable(path: checkpointPath, signature: trainer.signature) {
            try trainer.resume(from: found)
            try log.truncate(after: trainer.iteration)
            progress(.resumed(checkpoint: found, iteration: trainer.iteration))
        } else {
            try log.truncate(after: 0)
        }
        try writeAtomically(try trainer.configJSON(), to: folder + "/config.json")
        let stop = Swift.min(until ?? iterations, iterations)
        if trainer.iteration == 0 && evalEvery > 0 && !log.has(iteration: 0) {
            var values = prefixed(try trainer.evaluate(), "eval/")
            if let plain = try trainer.evaluatePlain() { values.merge(prefixed(plain, "eval/plain_")) { $1 } }
            try log.append(["iteration": 0] + values)
            progress(.evaluated(iteration: 0, values: values))
        }
        let meter = ProgressMeter(total: stop, startingAt: trainer.iteration, unit: "iteration")
        while trainer.iteration < stop {
            let metrics = try trainer.step()
            var line = metrics.values
            line["iteration"] = Double(metrics.iteration)
            let i = metrics.iteration
            if evalEvery > 0 && (i % evalEvery == 0 || i == iterations) {
                let values = prefixed(try trainer.evaluate(), "eval/")
                line.merge(values) { $1 }
                progress(.evaluated(iteration: i, values: values))
            }
            try log.append(line, note: metrics.skipReason)
            if i % saveEvery == 0 || i == stop {
                try trainer.save(to: checkpointPath)
                try writeCurve(log, trainer: trainer)
            }
            progress(.iteration(meter, metrics))
        }
        try writeCurve(log, trainer: trainer)
        if trainer.iteration >= iterations {
            try trainer.saveAdapter(to: folder + "/" + adapterName)
            progress(.exported(folder + "/" + adapterName))
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

    /// reward and withheld strict score against images scored (PNG and SVG).
    func writeCurve<T: IterativeTrainer>(_ log: MetricsLog, trainer: T) throws {
        let rows = log.rows()
        let images = Double(trainer.imagesPerIteration)
        func series(_ key: String) -> [(Double, Double)] {
            rows.compactMap { row in
                guard let i = row["iteration"], let v = row[key], v.isFinite else { return nil }
                return (i * images, v)
            }
        }
        var plot = LinePlot(title: trainer.curveTitle, xLabel: "images scored")
        for (key, label) in [("reward", "reward (training rollouts)"), ("rollout/strict", "strict (training rollouts)"),
                             ("eval/strict", "strict (withheld queries)")] {
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

/// A GRPO run in `folder` (an ``IterativeRun`` of a ``GRPOTrainer``).
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
        return try IterativeRun(folder: folder, until: until, export: export)
            .run(make: { try given ?? GRPOTrainer.load(config: config) }, progress: progress)
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
