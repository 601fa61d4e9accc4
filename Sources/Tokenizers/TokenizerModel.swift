import Foundation

/// The model stage of a tokenizer: turns one pre-tokenized piece into ids.
protocol TokenizerModel: Sendable {
    /// Appends the ids of `piece` to `ids`.
    func tokenize(_ piece: [Unicode.Scalar], into ids: inout [Int])
    func tokenToId(_ token: String) -> Int?
    func idToToken(_ id: Int) -> String?
    var vocabularySize: Int { get }
}

/// A piece as a dictionary key, hashed once (FNV-1a) instead of scalar by scalar.
struct PieceKey: Hashable {
    let scalars: [Unicode.Scalar]
    let hash: UInt64

    @inline(__always)
    init(_ scalars: [Unicode.Scalar]) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in scalars { h = (h ^ UInt64(c.value)) &* 0x100_0000_01b3 }
        self.scalars = scalars
        self.hash = h
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (a: PieceKey, b: PieceKey) -> Bool { a.hash == b.hash && a.scalars == b.scalars }
}

/// A thread-safe, bounded memo of piece → ids.
final class PieceCache: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [PieceKey: [Int]] = [:]
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    @inline(__always)
    func get(_ key: PieceKey) -> [Int]? {
        lock.lock()
        defer { lock.unlock() }
        return storage[key]
    }

    func set(_ key: PieceKey, _ value: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
        storage[key] = value
    }
}

@inline(__always)
func stringFromScalars(_ s: some Sequence<Unicode.Scalar>) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: s)
    return String(view)
}
