import Foundation

// Mirrors the BPE model of Hugging Face `tokenizers` 0.23 (`tokenizers/src/models/bpe/model.rs`),
// the model of GPT-2, Llama-3, Qwen2, SmolLM2 and CLIP tokenizers.

/// Byte-pair encoding: a piece starts as one symbol per character and adjacent symbols are merged
/// in order of merge rank (lowest first, leftmost on ties) until no merge applies.
final class BPEModel: TokenizerModel {
    /// Keyed by scalars: Swift `String` equality is canonical equivalence, tokenizers' is not.
    let vocab: [PieceKey: Int]
    let idToTokenTable: [Int: String]
    /// `(left id << 32 | right id)` → (rank, merged id).
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkId: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let prefix: [Unicode.Scalar]
    let suffix: [Unicode.Scalar]
    /// Initial symbol ids by character: plain, with suffix, with prefix, with prefix and suffix.
    private let charIds: [[Unicode.Scalar: Int]]
    private let byteFallbackIds: [Int]?
    private let cache = PieceCache(capacity: 100_000)

    /// - Parameters:
    ///   - path: the file the configuration came from, for error messages.
    init(
        vocab: [(String, Int)], merges: [(String, String)], unkToken: String?, prefix: String?,
        suffix: String?, fuseUnk: Bool, byteFallback: Bool, ignoreMerges: Bool, dropout: Double?,
        path: String
    ) throws(TokenizersError) {
        if let dropout, dropout > 0 {
            throw .unsupported(path: path, field: "model.dropout", value: "\(dropout)")
        }
        var keyed: [PieceKey: Int] = [:]
        keyed.reserveCapacity(vocab.count)
        var reverse: [Int: String] = [:]
        reverse.reserveCapacity(vocab.count)
        for (t, i) in vocab {
            keyed[PieceKey(Array(t.unicodeScalars))] = i
            reverse[i] = t
        }
        self.vocab = keyed
        idToTokenTable = reverse
        let p = Array((prefix ?? "").unicodeScalars)
        let s = Array((suffix ?? "").unicodeScalars)
        self.prefix = p
        self.suffix = s
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        if let unkToken {
            guard let id = keyed[PieceKey(Array(unkToken.unicodeScalars))] else {
                throw .missingToken(path: path, field: "model.unk_token", token: unkToken)
            }
            unkId = id
        } else {
            unkId = nil
        }
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            let sa = Array(a.unicodeScalars)
            let sb = Array(b.unicodeScalars)
            guard let ia = keyed[PieceKey(sa)] else {
                throw .missingToken(path: path, field: "model.merges.\(rank)", token: a)
            }
            guard let ib = keyed[PieceKey(sb)] else {
                throw .missingToken(path: path, field: "model.merges.\(rank)", token: b)
            }
            // tokenizers: `format!("{}{}", a, &b[prefix_len..])`.
            let merged = sa + (!p.isEmpty && sb.starts(with: p) ? sb[p.count...] : sb[...])
            guard let im = keyed[PieceKey(merged)] else {
                throw .missingToken(
                    path: path, field: "model.merges.\(rank)", token: stringFromScalars(merged))
            }
            let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
            // The first (lowest-rank) occurrence of a pair wins, as in `tokenizers`.
            if table[key] == nil { table[key] = (Int32(rank), Int32(im)) }
        }
        self.merges = table
        var maps = [[Unicode.Scalar: Int]](repeating: [:], count: 4)
        for (token, id) in vocab {
            var body = Array(token.unicodeScalars)[...]
            var kind = 0
            if !s.isEmpty && body.count > s.count && body.suffix(s.count).elementsEqual(s) {
                body = body.dropLast(s.count)
                kind |= 1
            }
            if !p.isEmpty && body.count > p.count && body.starts(with: p) {
                body = body.dropFirst(p.count)
                kind |= 2
            }
            if body.count == 1 { maps[kind][body.first!] = id }
        }
        charIds = maps
        if byteFallback {
            byteFallbackIds = (0..<256).map { b in
                keyed[PieceKey(Array(String(format: "<0x%02X>", b).unicodeScalars))] ?? -1
            }
        } else {
            byteFallbackIds = nil
        }
    }

    var vocabularySize: Int { vocab.count }

    func tokenToId(_ token: String) -> Int? { vocab[PieceKey(Array(token.unicodeScalars))] }

    func idToToken(_ id: Int) -> String? { idToTokenTable[id] }

    func tokenize(_ piece: [Unicode.Scalar], into ids: inout [Int]) {
        if piece.isEmpty { return }
        let key = PieceKey(piece)
        if let hit = cache.get(key) {
            ids.append(contentsOf: hit)
            return
        }
        let result = encodeWord(piece)
        cache.set(key, result)
        ids.append(contentsOf: result)
    }

    private func encodeWord(_ piece: [Unicode.Scalar]) -> [Int] {
        if ignoreMerges, let id = vocab[PieceKey(piece)] { return [id] }
        // Initial symbols.
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        var lastWasUnk = false
        let hasPrefix = !prefix.isEmpty
        let hasSuffix = !suffix.isEmpty
        for (k, c) in piece.enumerated() {
            var kind = 0
            if hasSuffix && k == piece.count - 1 { kind |= 1 }
            if hasPrefix && k > 0 { kind |= 2 }
            if let id = charIds[kind][c] {
                symbols.append(Int32(id))
                lastWasUnk = false
                continue
            }
            if let fallback = byteFallbackIds {
                let bytes = Array(c.utf8)
                if bytes.allSatisfy({ fallback[Int($0)] >= 0 }) {
                    for b in bytes { symbols.append(Int32(fallback[Int(b)])) }
                    lastWasUnk = false
                    continue
                }
            }
            if let unkId {
                if !(fuseUnk && lastWasUnk) { symbols.append(Int32(unkId)) }
                lastWasUnk = true
            }
        }
        if symbols.count < 2 { return symbols.map(Int.init) }
        // ranks[i]: rank of merging symbols[i] and symbols[i + 1].
        var ranks = [Int32](repeating: .max, count: symbols.count - 1)
        var mergedIds = [Int32](repeating: 0, count: symbols.count - 1)
        @inline(__always) func lookup(_ i: Int) {
            let key = UInt64(UInt32(symbols[i])) << 32 | UInt64(UInt32(symbols[i + 1]))
            if let m = merges[key] {
                ranks[i] = m.rank
                mergedIds[i] = m.id
            } else {
                ranks[i] = .max
            }
        }
        for i in 0..<ranks.count { lookup(i) }
        while !ranks.isEmpty {
            var best = 0
            var bestRank = ranks[0]
            for i in 1..<ranks.count where ranks[i] < bestRank {
                bestRank = ranks[i]
                best = i
            }
            if bestRank == .max { break }
            symbols[best] = mergedIds[best]
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            mergedIds.remove(at: best)
            if best > 0 { lookup(best - 1) }
            if best < ranks.count { lookup(best) }
        }
        return symbols.map(Int.init)
    }
}
