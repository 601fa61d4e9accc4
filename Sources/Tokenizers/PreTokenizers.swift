// Mirrors the pre-tokenizers of Hugging Face `tokenizers` 0.23 (`tokenizers/src/pre_tokenizers`).

/// How a split keeps the pattern's matches (`SplitDelimiterBehavior` of `tokenizers`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// A pre-tokenizer: splits each piece of text into smaller pieces (and may rewrite them).
indirect enum PreTokenizer: Sendable {
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// Splits on characters for which the predicate holds.
    case splitChars(CharPredicate, SplitBehavior)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case sequence([PreTokenizer])
    case bert

    enum CharPredicate: Sendable {
        case numeric, whitespace, punctuation
        func callAsFunction(_ c: Unicode.Scalar) -> Bool {
            switch self {
            case .numeric: return CharClass.isNumber(c)
            case .whitespace: return CharClass.isSpace(c)
            case .punctuation: return CharClass.isPunctuation(c)
            }
        }
    }

    init(
        _ config: PreTokenizerConfig, path: String, field: String = "pre_tokenizer"
    ) throws(TokenizersError) {
        switch config.type {
        case "ByteLevel":
            self = .byteLevel(
                addPrefixSpace: config.addPrefixSpace ?? true, useRegex: config.useRegex ?? true)
        case "Split":
            guard let pattern = config.pattern else {
                throw .corruptFile(path: path, field: field + ".pattern", reason: "missing")
            }
            let raw = config.behavior ?? "Removed"
            guard let behavior = SplitBehavior(rawValue: raw) else {
                throw .unsupported(path: path, field: field + ".behavior", value: raw)
            }
            self = .split(
                try SplitPattern.make(pattern, path: path, field: field + ".pattern"), behavior,
                invert: config.invert ?? false)
        case "Whitespace":
            self = .split(.wordsAndPunctuation, .removed, invert: true)
        case "WhitespaceSplit":
            self = .splitChars(.whitespace, .removed)
        case "Digits":
            self = .splitChars(.numeric, (config.individualDigits ?? false) ? .isolated : .contiguous)
        case "Punctuation":
            let raw = config.behavior ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: raw) else {
                throw .unsupported(path: path, field: field + ".behavior", value: raw)
            }
            self = .splitChars(.punctuation, behavior)
        case "BertPreTokenizer":
            self = .bert
        case "Sequence":
            var list: [PreTokenizer] = []
            for (i, p) in (config.pretokenizers ?? []).enumerated() {
                list.append(try PreTokenizer(p, path: path, field: "\(field).pretokenizers.\(i)"))
            }
            self = .sequence(list)
        default:
            throw .unsupported(path: path, field: field + ".type", value: config.type)
        }
    }

    /// Replaces `pieces` by their pre-tokenized pieces. Empty pieces are dropped.
    func apply(_ pieces: inout [[Unicode.Scalar]]) {
        switch self {
        case .sequence(let list):
            for p in list { p.apply(&pieces) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            var out: [[Unicode.Scalar]] = []
            out.reserveCapacity(pieces.count * 2)
            var ranges: [Range<Int>] = []
            var found: [Range<Int>] = []
            for var piece in pieces {
                if addPrefixSpace && piece.first != " " { piece.insert(" ", at: 0) }
                if useRegex {
                    ranges.removeAll(keepingCapacity: true)
                    Self.splitRanges(piece, .isolated, &ranges, &found) { s, r in
                        SplitPattern.gpt2.matches(s, into: &r)
                    }
                    for r in ranges {
                        var mapped: [Unicode.Scalar] = []
                        mapped.reserveCapacity(r.count)
                        ByteLevelTable.encode(piece[r], into: &mapped)
                        out.append(mapped)
                    }
                } else if !piece.isEmpty {
                    var mapped: [Unicode.Scalar] = []
                    mapped.reserveCapacity(piece.count)
                    ByteLevelTable.encode(piece[...], into: &mapped)
                    out.append(mapped)
                }
            }
            pieces = out
        case .split(let pattern, let behavior, let invert):
            splitEach(&pieces, behavior, invert: invert) { s, r in pattern.matches(s, into: &r) }
        case .splitChars(let predicate, let behavior):
            splitEach(&pieces, behavior, invert: false) { s, r in
                for (i, c) in s.enumerated() where predicate(c) { r.append(i..<(i + 1)) }
            }
        case .bert:
            PreTokenizer.splitChars(.whitespace, .removed).apply(&pieces)
            PreTokenizer.splitChars(.punctuation, .isolated).apply(&pieces)
        }
    }

    private func splitEach(
        _ pieces: inout [[Unicode.Scalar]], _ behavior: SplitBehavior, invert: Bool,
        _ find: ([Unicode.Scalar], inout [Range<Int>]) -> Void
    ) {
        var out: [[Unicode.Scalar]] = []
        out.reserveCapacity(pieces.count * 2)
        var ranges: [Range<Int>] = []
        var found: [Range<Int>] = []
        for piece in pieces {
            ranges.removeAll(keepingCapacity: true)
            Self.splitRanges(piece, behavior, invert: invert, &ranges, &found, find)
            if ranges.count == 1 && ranges[0].count == piece.count {
                out.append(piece)
            } else {
                for r in ranges { out.append(Array(piece[r])) }
            }
        }
        pieces = out
    }

    /// The pieces (non-empty ranges) that splitting `s` by the matches of `find` keeps, following
    /// `NormalizedString::split` of `tokenizers`. `found` is scratch space.
    static func splitRanges(
        _ s: [Unicode.Scalar], _ behavior: SplitBehavior, invert: Bool = false, _ out: inout [Range<Int>],
        _ found: inout [Range<Int>], _ find: ([Unicode.Scalar], inout [Range<Int>]) -> Void
    ) {
        guard !s.isEmpty else { return }
        found.removeAll(keepingCapacity: true)
        find(s, &found)
        // Common cases without building the (range, isMatch) list.
        switch (behavior, invert) {
        case (.isolated, _):
            var prev = 0
            for m in found {
                if prev < m.lowerBound { out.append(prev..<m.lowerBound) }
                out.append(m)
                prev = m.upperBound
            }
            if prev < s.count { out.append(prev..<s.count) }
            return
        case (.removed, true):
            out.append(contentsOf: found)
            return
        case (.removed, false):
            var prev = 0
            for m in found {
                if prev < m.lowerBound { out.append(prev..<m.lowerBound) }
                prev = m.upperBound
            }
            if prev < s.count { out.append(prev..<s.count) }
            return
        default:
            break
        }
        // (range, isMatch) covering all of s.
        var segments: [(Range<Int>, Bool)] = []
        segments.reserveCapacity(found.count * 2 + 1)
        var prev = 0
        for m in found {
            if prev < m.lowerBound { segments.append((prev..<m.lowerBound, invert)) }
            segments.append((m, !invert))
            prev = m.upperBound
        }
        if prev < s.count { segments.append((prev..<s.count, invert)) }
        let first = out.count
        switch behavior {
        case .mergedWithPrevious:
            var previousMatch = false
            for (r, isMatch) in segments {
                if isMatch && !previousMatch && out.count > first {
                    out[out.count - 1] = out[out.count - 1].lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            var reversed: [Range<Int>] = []
            for (r, isMatch) in segments.reversed() {
                if isMatch && !previousMatch, let last = reversed.last {
                    reversed[reversed.count - 1] = r.lowerBound..<last.upperBound
                } else {
                    reversed.append(r)
                }
                previousMatch = isMatch
            }
            out.append(contentsOf: reversed.reversed())
        case .contiguous:
            var previousMatch = false
            for (r, isMatch) in segments {
                if isMatch == previousMatch && out.count > first {
                    out[out.count - 1] = out[out.count - 1].lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                previousMatch = isMatch
            }
        case .isolated, .removed:
            break
        }
    }
}
