import Foundation

/// An exclusive lock on a run folder, held while a training run writes into it.
///
/// It is an `flock` on `folder/.lock`, which the kernel releases when the process ends however it
/// ends, so a lock file left by a killed run is recognised as stale and taken over. The file
/// records the holder's pid for the message a second run gets. Taking the lock also removes the
/// temporary files an interrupted checkpoint write left (`.checkpoint….tmp-…`): no one else can be
/// writing them.
public final class RunLock {
    public let path: String
    private let fd: Int32

    /// Locks `folder` (creating it), or throws ``TrainingError/locked(folder:holder:)``.
    public init(folder: String) throws {
        try RunLock.createFolder(folder)
        path = folder + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError.logIO(path: path, reason: "cannot open the lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let holder = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw TrainingError.locked(folder: folder, holder: holder)
        }
        self.fd = fd
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        let stale = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in stale where name.hasPrefix(".checkpoint") && name.contains(".tmp-") {
            try? FileManager.default.removeItem(atPath: folder + "/" + name)
        }
    }

    /// Creates a run folder (and its parents), or throws ``TrainingError/unwritable(path:reason:)``.
    public static func createFolder(_ folder: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw TrainingError.unwritable(path: folder, reason: "it is a file") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.unwritable(path: folder, reason: "cannot create the folder (\(error.localizedDescription))")
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
