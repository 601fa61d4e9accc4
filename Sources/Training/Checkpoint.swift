import Foundation
import Torch
import TorchNN

/// A training checkpoint in one safetensors file, written atomically: model parameters
/// (`param.<store>.<key>`), optimizer moments (`optim.<key>`), generator states (`rng.<name>`) and
/// the step and configuration in the metadata. Loading restores all of them, so an interrupted run
/// continues with the same batches, noise and updates it would have had.
public enum TrainingCheckpoint {
    /// `selection` picks the parameters saved (`.adapters` for a LoRA run whose base is frozen).
    public static func save(to path: String, stores: [String: ParameterStore], optimizer: AdamW,
                            generators: [String: Generator], step: Int, metadata: [String: String] = [:],
                            selection: ParameterStore.Selection = .all) throws {
        var tensors: [String: Tensor] = [:]
        for (name, store) in stores {
            for (key, t) in store.state(selection) { tensors["param.\(name).\(key)"] = t }
        }
        for (key, t) in optimizer.state() { tensors["optim.\(key)"] = t }
        for (name, g) in generators { tensors["rng.\(name)"] = g.state }
        var meta = metadata
        meta["step"] = String(step)
        // The previous checkpoint moves aside (a rename: no copy, and a file of its own) until the
        // next save: should the newest ever be found torn, the run resumes from the one before,
        // and while the new one is being written, the previous one is what a resume finds.
        let previous = previousPath(of: path)
        let moved = FileManager.default.fileExists(atPath: path)
        if moved, rename(path, previous) != 0 {
            throw TrainingError.unwritable(path: previous, reason: String(cString: strerror(errno)))
        }
        do {
            try SafeTensors.write(tensors, metadata: meta, to: path, checksum: true)
        } catch {
            // A failed write (a full disk, say) leaves the last checkpoint where it was.
            if moved { rename(previous, path) }
            throw error
        }
    }

    /// Where ``save(to:stores:optimizer:generators:step:metadata:selection:)`` keeps the checkpoint
    /// before the newest.
    public static func previousPath(of path: String) -> String { path + ".prev" }

    /// The newest complete checkpoint for `path`: `path` itself when it opens and its checksum
    /// holds, else the previous one (with a warning on stderr), else nil when neither exists.
    /// Throws naming the file when a checkpoint exists but none is complete.
    public static func latestComplete(path: String) throws -> String? {
        let fm = FileManager.default
        var failure: Error?
        for candidate in [path, previousPath(of: path)] where fm.fileExists(atPath: candidate) {
            do {
                let file = try SafeTensorsFile(path: candidate)
                try file.verifyChecksum()
                guard file.metadata["step"] != nil else {
                    throw TrainingError.notACheckpoint(path: candidate, reason: "no step in the metadata")
                }
                if candidate != path, let failure {
                    FileHandle.standardError.write(Data("warning: \(failure); resuming from \(candidate)\n".utf8))
                }
                return candidate
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return nil
    }

    /// The checkpoint to resume for `path` (see ``latestComplete(path:)``), checked to have been
    /// written by the same run: nil when there is none.
    ///
    /// A run folder's checkpoint is resumed only by the command that wrote it: this throws when
    /// the saved signature differs.
    public static func resumable(path: String, signature: String) throws -> String? {
        guard let found = try latestComplete(path: path) else { return nil }
        if let saved = try SafeTensorsFile(path: found).metadata["run"], saved != signature {
            throw TrainingError.mismatchedRun(path: found, saved: saved, requested: signature)
        }
        return found
    }

    /// Whether a checkpoint written by the same run exists for `path` (see ``resumable(path:signature:)``).
    public static func resumeCheck(path: String, signature: String) throws -> Bool {
        try resumable(path: path, signature: signature) != nil
    }

    /// Restores a checkpoint into the given stores, optimizer and generators; returns the step and
    /// the metadata. Every parameter must be present with its shape.
    public static func load(from path: String, stores: [String: ParameterStore], optimizer: AdamW,
                            generators: [String: Generator], selection: ParameterStore.Selection = .all) throws
        -> (step: Int, metadata: [String: String])
    {
        let file = try SafeTensorsFile(path: path)
        try file.verifyChecksum()
        guard let stepText = file.metadata["step"], let step = Int(stepText) else {
            throw TrainingError.notACheckpoint(path: path, reason: "no step in the metadata")
        }
        for (name, store) in stores {
            let prefix = "param.\(name)."
            try store.load(from: RenamedSource(file) { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : nil },
                           selection: selection)
        }
        var optim: [String: Tensor] = [:]
        for key in file.names where key.hasPrefix("optim.") { optim[String(key.dropFirst(6))] = try file.tensor(key) }
        do { try optimizer.load(state: optim) } catch {
            throw TrainingError.notACheckpoint(path: path, reason: "optimizer state: \(error)")
        }
        for (name, g) in generators {
            guard file.info("rng.\(name)") != nil else {
                throw TrainingError.notACheckpoint(path: path, reason: "no state for generator `\(name)`")
            }
            do { try g.setState(try file.tensor("rng.\(name)")) } catch {
                throw TrainingError.notACheckpoint(path: path, reason: "generator `\(name)`: \(error)")
            }
        }
        return (step, file.metadata)
    }
}

/// Appends `step,loss,…` rows to a CSV file (created with a header on first use).
public struct LossLog {
    public let path: String
    public let columns: [String]

    public init(path: String, columns: [String]) {
        self.path = path
        self.columns = columns
    }

    /// Drops rows past `step` (after resuming from an earlier checkpoint), keeping the header.
    public func truncate(after step: Int) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        guard !lines.isEmpty else { return }
        let header = lines.removeFirst()
        let kept = lines.filter { Int($0.split(separator: ",").first ?? "") ?? 0 <= step }
        do {
            try ([header] + kept).joined(separator: "\n").appending("\n").write(toFile: path, atomically: true,
                                                                                encoding: .utf8)
        } catch {
            throw TrainingError.logIO(path: path, reason: error.localizedDescription)
        }
    }

    public func append(_ values: [Double], step: Int) throws {
        let line = ([String(step)] + values.map { String(format: "%.6g", $0) }).joined(separator: ",") + "\n"
        if !FileManager.default.fileExists(atPath: path) {
            do {
                try (["step"] + columns).joined(separator: ",").appending("\n").write(toFile: path, atomically: true,
                                                                                      encoding: .utf8)
            } catch {
                throw TrainingError.logIO(path: path, reason: error.localizedDescription)
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.logIO(path: path, reason: "cannot open it for appending")
        }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
    }

    /// The logged rows (step, values).
    public func rows() -> [(step: Int, values: [Double])] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let parts = line.split(separator: ",")
            guard let step = Int(parts.first ?? "") else { return nil }
            return (step, parts.dropFirst().compactMap { Double($0) })
        }
    }
}
