import Foundation

// MARK: - Character classes, as Oniguruma (the regex engine of `tokenizers`) defines them

/// Character classes of the regex patterns used by tokenizers. ASCII is looked up in a table.
enum CharClass {
    @inline(__always)
    static func asciiLetter(_ v: UInt32) -> Bool { (v | 0x20) >= 97 && (v | 0x20) <= 122 }

    @inline(__always)
    static func asciiSpace(_ v: UInt32) -> Bool { v == 32 || (v >= 9 && v <= 13) }

    /// `\p{L}`.
    @inline(__always)
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return asciiLetter(s.value) }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return true
        default:
            return false
        }
    }

    /// `\p{N}` (also Rust's `char::is_numeric`).
    @inline(__always)
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return s.value >= 48 && s.value <= 57 }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `\s` (the White_Space property; also Rust's `char::is_whitespace`).
    @inline(__always)
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return asciiSpace(s.value) }
        return s.properties.isWhitespace
    }

    /// `\w` in Unicode mode: Alphabetic, marks, decimal numbers, connector punctuation, joiners.
    @inline(__always)
    static func isWord(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 {
            return asciiLetter(s.value) || (s.value >= 48 && s.value <= 57) || s.value == 95
        }
        if s.value == 0x200C || s.value == 0x200D { return true }
        let p = s.properties
        if p.isAlphabetic { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return true
        default:
            return false
        }
    }

    /// Rust's `char::is_alphanumeric`.
    static func isAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        s.properties.isAlphabetic || isNumber(s)
    }

    /// The punctuation test of the `Punctuation` and `BertPreTokenizer` pre-tokenizers.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 {
            let v = s.value
            return (v >= 33 && v <= 47) || (v >= 58 && v <= 64) || (v >= 91 && v <= 96)
                || (v >= 123 && v <= 126)
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}

// MARK: - Patterns

/// Finds the non-overlapping, leftmost matches of a split pattern in a run of scalars.
///
/// The regexes that real tokenizers use (GPT-2's, Llama-3's, Qwen2's, CLIP's, `\s+`,
/// `\w+|[^\w\s]+`) are hand-compiled scanners, because a general regex engine costs far more than
/// the rest of encoding; any other regex goes to `NSRegularExpression` (ICU), whose syntax agrees
/// with Oniguruma's on the constructs tokenizer files use.
enum SplitPattern: Sendable {
    case gpt2
    case qwen2
    case llama3
    case clip
    case whitespaceRuns
    case wordsAndPunctuation
    case literal([Unicode.Scalar])
    case regex(RegexBox)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"#
        + #"\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"#
        + #"\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let clipSource =
        #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#

    /// Builds the scanner for a tokenizer.json pattern; `path`/`field` name it in errors.
    static func make(_ config: PatternConfig, path: String, field: String) throws(TokenizersError)
        -> SplitPattern
    {
        switch config {
        case .string(let s):
            guard !s.isEmpty else { throw .unsupported(path: path, field: field, value: "empty pattern") }
            return .literal(Array(s.unicodeScalars))
        case .regex(let source):
            switch source {
            case gpt2Source: return .gpt2
            case qwen2Source: return .qwen2
            case llama3Source: return .llama3
            case clipSource: return .clip
            case #"\s+"#: return .whitespaceRuns
            case #"\w+|[^\w\s]+"#: return .wordsAndPunctuation
            default:
                do {
                    return .regex(RegexBox(try NSRegularExpression(pattern: source)))
                } catch {
                    throw .unsupported(path: path, field: field, value: "regex `\(source)` (\(error))")
                }
            }
        }
    }

    /// Appends the match ranges (scalar offsets into `s`) to `out`.
    func matches(_ s: [Unicode.Scalar], into out: inout [Range<Int>]) {
        switch self {
        case .gpt2: scan(s, &out, Self.gpt2Match)
        case .qwen2: scan(s, &out) { Self.qwenMatch($0, $1, maxDigits: 1) }
        case .llama3: scan(s, &out) { Self.qwenMatch($0, $1, maxDigits: 3) }
        case .clip: scan(s, &out, Self.clipMatch)
        case .whitespaceRuns:
            scan(s, &out) { s, i in
                guard CharClass.isSpace(s[i]) else { return nil }
                var j = i + 1
                while j < s.count && CharClass.isSpace(s[j]) { j += 1 }
                return j
            }
        case .wordsAndPunctuation:
            scan(s, &out) { s, i in
                if CharClass.isWord(s[i]) {
                    var j = i + 1
                    while j < s.count && CharClass.isWord(s[j]) { j += 1 }
                    return j
                }
                if CharClass.isSpace(s[i]) { return nil }
                var j = i + 1
                while j < s.count && !CharClass.isWord(s[j]) && !CharClass.isSpace(s[j]) { j += 1 }
                return j
            }
        case .literal(let lit):
            scan(s, &out) { s, i in
                guard i + lit.count <= s.count else { return nil }
                for k in 0..<lit.count where s[i + k] != lit[k] { return nil }
                return i + lit.count
            }
        case .regex(let box):
            box.matches(s, into: &out)
        }
    }

    /// Runs `match` at every position; a non-nil result is the end of a match starting there.
    @inline(__always)
    private func scan(
        _ s: [Unicode.Scalar], _ out: inout [Range<Int>], _ match: ([Unicode.Scalar], Int) -> Int?
    ) {
        var i = 0
        while i < s.count {
            if let end = match(s, i), end > i {
                out.append(i..<end)
                i = end
            } else {
                i += 1
            }
        }
    }

    // MARK: hand-compiled regexes

    @inline(__always)
    private static func isOther(_ c: Unicode.Scalar) -> Bool {
        !CharClass.isSpace(c) && !CharClass.isLetter(c) && !CharClass.isNumber(c)
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (`ſ` folds to `s`).
    @inline(__always)
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func low(_ c: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return c }
            if c.value >= 65 && c.value <= 90 { return Unicode.Scalar(c.value + 32)! }
            if c.value == 0x17F { return "s" }
            return c
        }
        let c1 = low(s[i + 1])
        switch c1 {
        case "s", "t", "m", "d": return i + 2
        case "r", "v":
            if i + 2 < s.count && low(s[i + 2]) == "e" { return i + 3 }
        case "l":
            if i + 2 < s.count && low(s[i + 2]) == "l" { return i + 3 }
        default: break
        }
        return nil
    }

    /// `\s+(?!\S)|\s+` at a whitespace position.
    @inline(__always)
    private static func trailingSpaces(_ s: [Unicode.Scalar], _ i: Int) -> Int? {
        guard CharClass.isSpace(s[i]) else { return nil }
        var j = i + 1
        while j < s.count && CharClass.isSpace(s[j]) { j += 1 }
        if j == s.count { return j }
        return j - 1 > i ? j - 1 : j
    }

    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    private static func gpt2Match(_ s: [Unicode.Scalar], _ i: Int) -> Int? {
        if let e = contraction(s, i, caseInsensitive: false) { return e }
        let j = s[i] == " " ? i + 1 : i
        if j < s.count {
            let c = s[j]
            var k = j + 1
            if CharClass.isLetter(c) {
                while k < s.count && CharClass.isLetter(s[k]) { k += 1 }
                return k
            }
            if CharClass.isNumber(c) {
                while k < s.count && CharClass.isNumber(s[k]) { k += 1 }
                return k
            }
            if isOther(c) {
                while k < s.count && isOther(s[k]) { k += 1 }
                return k
            }
        }
        return trailingSpaces(s, i)
    }

    /// Qwen2 (`maxDigits` 1) and Llama-3 (`maxDigits` 3):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|`
    /// `\s*[\r\n]+|\s+(?!\S)|\s+`.
    private static func qwenMatch(_ s: [Unicode.Scalar], _ i: Int, maxDigits: Int) -> Int? {
        if let e = contraction(s, i, caseInsensitive: true) { return e }
        let c = s[i]
        let isNewline = c == "\r" || c == "\n"
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if CharClass.isLetter(c) {
            var k = i + 1
            while k < s.count && CharClass.isLetter(s[k]) { k += 1 }
            return k
        }
        let isNum = CharClass.isNumber(c)
        if !isNewline && !isNum && i + 1 < s.count && CharClass.isLetter(s[i + 1]) {
            var k = i + 2
            while k < s.count && CharClass.isLetter(s[k]) { k += 1 }
            return k
        }
        // \p{N}{1,k}
        if isNum {
            var k = i + 1
            while k < s.count && k - i < maxDigits && CharClass.isNumber(s[k]) { k += 1 }
            return k
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let j = c == " " ? i + 1 : i
        if j < s.count && isOther(s[j]) {
            var k = j + 1
            while k < s.count && isOther(s[k]) { k += 1 }
            while k < s.count && (s[k] == "\r" || s[k] == "\n") { k += 1 }
            return k
        }
        guard CharClass.isSpace(c) else { return nil }
        // \s*[\r\n]+ : ends after the last newline of the whitespace run.
        var k = i
        var lastNewline = -1
        while k < s.count && CharClass.isSpace(s[k]) {
            if s[k] == "\r" || s[k] == "\n" { lastNewline = k }
            k += 1
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        return trailingSpaces(s, i)
    }

    private static let startOfText = Array("<|startoftext|>".unicodeScalars)
    private static let endOfText = Array("<|endoftext|>".unicodeScalars)

    /// CLIP: `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|`
    /// `[^\s\p{L}\p{N}]+`.
    private static func clipMatch(_ s: [Unicode.Scalar], _ i: Int) -> Int? {
        let c = s[i]
        if c == "<" {
            for lit in [startOfText, endOfText] where i + lit.count <= s.count {
                if s[i..<(i + lit.count)].elementsEqual(lit) { return i + lit.count }
            }
        }
        if let e = contraction(s, i, caseInsensitive: false) { return e }
        var k = i + 1
        if CharClass.isLetter(c) {
            while k < s.count && CharClass.isLetter(s[k]) { k += 1 }
            return k
        }
        if CharClass.isNumber(c) { return k }
        if isOther(c) {
            while k < s.count && isOther(s[k]) { k += 1 }
            return k
        }
        return nil
    }
}

/// A compiled `NSRegularExpression`, for patterns without a hand-compiled scanner.
final class RegexBox: @unchecked Sendable {
    // NSRegularExpression is immutable and documented thread-safe.
    let regex: NSRegularExpression

    init(_ regex: NSRegularExpression) {
        self.regex = regex
    }

    func matches(_ s: [Unicode.Scalar], into out: inout [Range<Int>]) {
        var text = String.UnicodeScalarView()
        text.append(contentsOf: s)
        let string = String(text)
        // UTF-16 offset → scalar offset.
        var utf16ToScalar = [Int](repeating: 0, count: string.utf16.count + 1)
        var u = 0
        for (k, scalar) in s.enumerated() {
            let w = scalar.utf16.count
            for d in 0..<w { utf16ToScalar[u + d] = k }
            u += w
        }
        utf16ToScalar[u] = s.count
        let ns = string as NSString
        for m in regex.matches(in: string, range: NSRange(location: 0, length: ns.length)) {
            let r = m.range
            guard r.length > 0 else { continue }
            out.append(utf16ToScalar[r.location]..<utf16ToScalar[r.location + r.length])
        }
    }
}
