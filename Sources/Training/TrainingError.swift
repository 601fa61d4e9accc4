/// Errors from the training helpers: checkpoints, logs and resumed runs. Each names the file.
public enum TrainingError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A checkpoint file lacks what a checkpoint holds (step, parameter, generator state).
    case notACheckpoint(path: String, reason: String)
    /// A run folder holds a checkpoint written with other settings.
    case mismatchedRun(path: String, saved: String, requested: String)
    /// A log file could not be read or written.
    case logIO(path: String, reason: String)
    /// A training value went bad (a non-finite loss, say).
    case diverged(String)
    /// A folder or file that cannot be created or written.
    case unwritable(path: String, reason: String)
    /// Another live process holds the run folder's lock.
    case locked(folder: String, holder: String)

    public var description: String {
        switch self {
        case .notACheckpoint(let path, let reason): return "\(path): not a training checkpoint (\(reason))"
        case .mismatchedRun(let path, let saved, let requested):
            return "\(path) was written by `\(saved)`, not `\(requested)`: use the same options to resume, "
                + "or another run folder"
        case .logIO(let path, let reason): return "cannot write the log \(path): \(reason)"
        case .diverged(let message): return message
        case .unwritable(let path, let reason): return "cannot write \(path): \(reason)"
        case .locked(let folder, let holder):
            return "\(folder) is in use by another run (process \(holder)); wait for it to end or use another run folder"
        }
    }
}
