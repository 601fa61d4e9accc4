// Mirrors `AddedVocabulary` of Hugging Face `tokenizers` 0.23
// (`tokenizers/src/tokenizer/added_vocabulary.rs`).

/// A piece of input text: either plain text still to be tokenized, or an added token's id.
enum TextSegment {
    case text([Unicode.Scalar])
    case token(Int)
}

/// Added tokens (special tokens like `<|im_start|>` and user-added words), matched in the text
/// before the model sees it: leftmost-longest, non-normalized ones on the raw text, normalized
/// ones on the normalized text.
struct AddedVocabulary: Sendable {
    struct Entry: Sendable {
        var scalars: [Unicode.Scalar]
        var config: AddedTokenConfig
    }

    /// Candidate entries by first scalar, longest first; [0] raw, [1] normalized.
    private var byFirst: [[Unicode.Scalar: [Entry]]] = [[:], [:]]
    /// Bitmaps of ASCII first scalars and whether any first scalar is non-ASCII, per kind, so
    /// that most positions are rejected without a dictionary lookup.
    private var asciiFirst: [(UInt64, UInt64)] = [(0, 0), (0, 0)]
    private var nonASCIIFirst: [Bool] = [false, false]
    private(set) var tokens: [AddedTokenConfig] = []
    private(set) var contentToId: [String: Int] = [:]
    private(set) var idToContent: [Int: String] = [:]
    private(set) var specialIds: Set<Int> = []

    init(_ tokens: [AddedTokenConfig], normalizer: Normalizer?) {
        for t in tokens { add(t, normalizer: normalizer) }
    }

    var isEmpty: Bool { tokens.isEmpty }

    mutating func add(_ token: AddedTokenConfig, normalizer: Normalizer?) {
        guard contentToId[token.content] == nil, !token.content.isEmpty else { return }
        tokens.append(token)
        contentToId[token.content] = token.id
        idToContent[token.id] = token.content
        if token.special { specialIds.insert(token.id) }
        var scalars = Array(token.content.unicodeScalars)
        let kind = token.normalized ? 1 : 0
        if token.normalized, let normalizer { normalizer.apply(&scalars) }
        guard let first = scalars.first else { return }
        byFirst[kind][first, default: []].append(Entry(scalars: scalars, config: token))
        if first.value < 64 {
            asciiFirst[kind].0 |= 1 << UInt64(first.value)
        } else if first.value < 128 {
            asciiFirst[kind].1 |= 1 << UInt64(first.value - 64)
        } else {
            nonASCIIFirst[kind] = true
        }
        byFirst[kind][first]!.sort { $0.scalars.count > $1.scalars.count }
    }

    /// Whether there are added tokens matched on raw (`normalized == false`) or normalized text.
    func has(normalized: Bool) -> Bool { !byFirst[normalized ? 1 : 0].isEmpty }

    /// Splits `s` around the added tokens of one kind.
    func split(_ s: [Unicode.Scalar], normalized: Bool, into out: inout [TextSegment]) {
        let table = byFirst[normalized ? 1 : 0]
        if table.isEmpty || s.isEmpty {
            if !s.isEmpty { out.append(.text(s)) }
            return
        }
        let kind = normalized ? 1 : 0
        let (low, high) = asciiFirst[kind]
        let nonASCII = nonASCIIFirst[kind]
        var startOffset = 0
        var i = 0
        while i < s.count {
            let v = s[i].value
            let possible =
                v < 64
                ? (low >> UInt64(v)) & 1 != 0
                : v < 128 ? (high >> UInt64(v - 64)) & 1 != 0 : nonASCII
            guard possible, let candidates = table[s[i]] else {
                i += 1
                continue
            }
            var matched: Entry?
            for e in candidates where i + e.scalars.count <= s.count {
                if s[i..<(i + e.scalars.count)].elementsEqual(e.scalars) {
                    matched = e
                    break
                }
            }
            guard let entry = matched else {
                i += 1
                continue
            }
            var start = i
            var stop = i + entry.scalars.count
            let t = entry.config
            if t.singleWord {
                let startOK = start == 0 || !CharClass.isAlphanumeric(s[start - 1])
                let stopOK = stop == s.count || !CharClass.isAlphanumeric(s[stop])
                if !startOK || !stopOK {
                    i += 1
                    continue
                }
            }
            if t.lstrip {
                while start > startOffset && CharClass.isSpace(s[start - 1]) { start -= 1 }
            }
            if t.rstrip {
                while stop < s.count && CharClass.isSpace(s[stop]) { stop += 1 }
            }
            if startOffset < start { out.append(.text(Array(s[startOffset..<start]))) }
            out.append(.token(t.id))
            startOffset = stop
            i = stop
        }
        if startOffset < s.count { out.append(.text(Array(s[startOffset...]))) }
    }
}
