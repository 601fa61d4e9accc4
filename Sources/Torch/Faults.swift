import CZlib
import Foundation

/// Faults the reliability tests inject into a real process through the environment variable
/// `PROMPTLOOP_FAULTS`: a comma-separated list of `kind@n`, where n counts from 1.
///
/// - `nan-loss@n`, `inf-loss@n`: the loss of training step (iteration) n is multiplied by NaN / +∞
///   before the backward pass, so the gradients are poisoned too.
/// - `nan-grad@n`, `inf-grad@n`: after the backward pass of step n, one gradient entry is set to NaN / +∞.
/// - `nan-reward@n`, `inf-reward@n`: the first reward of iteration n is NaN / +∞ (GRPO).
/// - `kill-in-checkpoint@n`: the process SIGKILLs itself inside its n-th checkpoint write, after
///   half of the temporary file is on disk.
///
/// Nothing reads the variable unless it is set; unknown kinds are ignored with a warning on stderr.
public enum Faults {
    static let table: [String: Set<Int>] = parse(ProcessInfo.processInfo.environment["PROMPTLOOP_FAULTS"] ?? "")
    nonisolated(unsafe) static var checkpointWrites = 0
    static let lock = NSLock()

    static let kinds: Set<String> = ["nan-loss", "inf-loss", "nan-grad", "inf-grad", "nan-reward", "inf-reward",
                                     "kill-in-checkpoint"]

    static func parse(_ text: String) -> [String: Set<Int>] {
        var out: [String: Set<Int>] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "@")
            guard parts.count == 2, let n = Int(parts[1]), kinds.contains(String(parts[0])) else {
                FileHandle.standardError.write(Data("PROMPTLOOP_FAULTS: ignoring `\(item)`\n".utf8))
                continue
            }
            out[String(parts[0]), default: []].insert(n)
        }
        return out
    }

    /// Whether fault `kind` fires at step `n` (1-based).
    public static func fires(_ kind: String, at n: Int) -> Bool { table[kind]?.contains(n) ?? false }

    /// The value a `nan-…` / `inf-…` fault of `family` (`loss`, `grad`, `reward`) injects at step
    /// `n`, or nil.
    public static func poison(_ family: String, at n: Int) -> Double? {
        if fires("nan-\(family)", at: n) { return .nan }
        if fires("inf-\(family)", at: n) { return .infinity }
        return nil
    }

    /// Called by ``writeAtomically(_:to:)`` for checkpoint files, after half the data is written.
    static func checkpointWriteHalfway(_ path: String) {
        guard let counts = table["kill-in-checkpoint"] else { return }
        lock.lock()
        checkpointWrites += 1
        let n = checkpointWrites
        lock.unlock()
        if counts.contains(n) { kill(getpid(), SIGKILL) }
    }
}

/// CRC-32 (IEEE, as zlib and PNG) of `bytes`, continuing from `crc` (zlib's, in chunks of at most 1 GiB).
public func checksumCRC32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    var c = UInt(crc)
    var offset = 0
    while offset < bytes.count {
        let n = Swift.min(bytes.count - offset, 1 << 30)
        c = CZlib.crc32(c, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), UInt32(n))
        offset += n
    }
    return UInt32(truncatingIfNeeded: c)
}
