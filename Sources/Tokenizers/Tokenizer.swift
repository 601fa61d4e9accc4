import Foundation

// MARK: - Public API

/// Which end of a sequence padding or truncation acts on.
public enum Side: String, Sendable, Equatable {
    case left
    case right
}

/// Truncation and padding applied by ``Tokenizer/encode(_:options:)``.
///
/// ```swift
/// // What Stable Diffusion does: pad or cut every prompt to 77 tokens.
/// let options = EncodingOptions(maxLength: 77, padToMaxLength: true, padId: 49407)
/// ```
public struct EncodingOptions: Sendable, Equatable {
    /// Add the tokenizer's special tokens (bos/eos or its template).
    public var addSpecialTokens: Bool
    /// Total length (special tokens included) beyond which tokens are cut; `nil` keeps all.
    public var maxLength: Int?
    /// Which end truncation removes tokens from.
    public var truncationSide: Side
    /// Pad every encoding to `padLength ?? maxLength`.
    public var padToMaxLength: Bool
    /// Pad to this length instead of `maxLength`.
    public var padLength: Int?
    /// Id used for padding positions.
    public var padId: Int
    /// Which end padding is added to.
    public var paddingSide: Side

    /// Defaults: special tokens added, no truncation, no padding.
    public init(
        addSpecialTokens: Bool = true, maxLength: Int? = nil, truncationSide: Side = .right,
        padToMaxLength: Bool = false, padLength: Int? = nil, padId: Int = 0, paddingSide: Side = .right
    ) {
        self.addSpecialTokens = addSpecialTokens
        self.maxLength = maxLength
        self.truncationSide = truncationSide
        self.padToMaxLength = padToMaxLength
        self.padLength = padLength
        self.padId = padId
        self.paddingSide = paddingSide
    }
}

/// The result of encoding one text.
public struct Encoding: Sendable, Equatable {
    /// Token ids, special tokens and padding included.
    public var ids: [Int]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int]
    /// How many tokens truncation removed (0 when the text fit).
    public var truncatedTokenCount: Int

    /// Whether the text was longer than the maximum length and was cut.
    public var wasTruncated: Bool { truncatedTokenCount > 0 }

    public init(ids: [Int], attentionMask: [Int], truncatedTokenCount: Int = 0) {
        self.ids = ids
        self.attentionMask = attentionMask
        self.truncatedTokenCount = truncatedTokenCount
    }
}

/// A text tokenizer.
///
/// ```swift
/// let tokenizer = try CLIPTokenizer(directory: sd15.appendingPathComponent("tokenizer"))
/// let encoding = tokenizer.encode("a photo of a cat")   // 77 ids, padded
/// let text = tokenizer.decode(encoding.ids)             // "a photo of a cat"
/// ```
public protocol Tokenizer: Sendable {
    /// The options ``encode(_:)`` uses: the tokenizer's own truncation and padding configuration.
    var defaultOptions: EncodingOptions { get }
    /// Encodes `text` with explicit truncation and padding.
    func encode(_ text: String, options: EncodingOptions) -> Encoding
    /// Decodes ids to text, dropping special tokens when `skipSpecialTokens` is set.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    /// The id of `token` (model vocabulary or added tokens).
    func tokenToId(_ token: String) -> Int?
    /// The token string of `id`.
    func idToToken(_ id: Int) -> String?
    /// Number of ids, added tokens included.
    var vocabularySize: Int { get }
    /// The beginning-of-sequence token id, if the tokenizer has one.
    var bosTokenId: Int? { get }
    /// The end-of-sequence token id, if the tokenizer has one.
    var eosTokenId: Int? { get }
    /// The padding id, if the tokenizer pads.
    var padTokenId: Int? { get }
}

extension Tokenizer {
    /// Encodes `text` with ``defaultOptions``.
    public func encode(_ text: String) -> Encoding {
        encode(text, options: defaultOptions)
    }

    /// Decodes ids to text, dropping special tokens.
    public func decode(_ ids: [Int]) -> String {
        decode(ids, skipSpecialTokens: true)
    }

    /// Encodes a batch of texts with the same options (one ``Encoding`` per text, in order).
    ///
    /// With `padToMaxLength` every row has the same length, ready to stack into a tensor.
    public func encode(_ texts: [String], options: EncodingOptions) -> [Encoding] {
        texts.map { encode($0, options: options) }
    }
}

// MARK: - The tokenizer.json pipeline

/// A tokenizer described by a Hugging Face `tokenizer.json`: added tokens → normalizer →
/// pre-tokenizer → model (BPE or WordLevel) → truncation → post-processor → padding.
///
/// ```swift
/// let tok = try PreTrainedTokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
/// let ids = tok.encode("<|im_start|>user\nDraw a cat<|im_end|>").ids
/// ```
public final class PreTrainedTokenizer: Tokenizer {
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: any TokenizerModel
    let postProcessor: PostProcessor
    let decoder: TokenDecoder
    let addedVocabulary: AddedVocabulary
    /// Applied to decoded text (CLIP replaces `</w>` by a space and strips).
    let endOfWordSuffix: String?

    /// From the file's `truncation` and `padding` fields (none: no truncation, no padding).
    public let defaultOptions: EncodingOptions
    /// Set by wrappers that know their bos token (``CLIPTokenizer``); nil for plain tokenizer.json.
    public let bosTokenId: Int?
    /// Set by wrappers that know their eos token (``CLIPTokenizer``); nil for plain tokenizer.json.
    public let eosTokenId: Int?
    /// `padding.pad_id` of the file, if it pads.
    public let padTokenId: Int?

    /// Loads a `tokenizer.json` (plain or `.gz`). Its `truncation` and `padding` fields become
    /// ``defaultOptions``.
    public convenience init(tokenizerJSON url: URL) throws(TokenizersError) {
        let json = try TokenizerJSON.load(url)
        try self.init(json, path: url.path)
    }

    /// Builds the pipeline from decoded `tokenizer.json` contents; `path` names the file in errors.
    public convenience init(_ json: TokenizerJSON, path: String) throws(TokenizersError) {
        var options = EncodingOptions()
        if let t = json.truncation {
            options.maxLength = t.maxLength
            if let d = t.direction {
                guard let side = Side(rawValue: d.lowercased()) else {
                    throw .unsupported(path: path, field: "truncation.direction", value: d)
                }
                options.truncationSide = side
            }
            if let s = t.strategy, s != "LongestFirst", s != "OnlyFirst" {
                throw .unsupported(path: path, field: "truncation.strategy", value: s)
            }
        }
        if let p = json.padding {
            options.padId = p.padId
            if let n = p.fixedLength {
                options.padToMaxLength = true
                options.padLength = n
            }
            if let d = p.direction {
                guard let side = Side(rawValue: d.lowercased()) else {
                    throw .unsupported(path: path, field: "padding.direction", value: d)
                }
                options.paddingSide = side
            }
            if let m = p.padToMultipleOf, m > 1 {
                throw .unsupported(path: path, field: "padding.pad_to_multiple_of", value: "\(m)")
            }
        }
        try self.init(
            json, path: path, options: options, bos: nil, eos: nil,
            pad: json.padding.map(\.padId), extraAdded: [], endOfWordSuffix: nil)
    }

    init(
        _ json: TokenizerJSON, path: String, options: EncodingOptions, bos: Int?, eos: Int?, pad: Int?,
        extraAdded: [AddedTokenConfig], endOfWordSuffix: String?
    ) throws(TokenizersError) {
        normalizer = try json.normalizer.map { (n) throws(TokenizersError) in try Normalizer(n, path: path) }
        preTokenizer = try json.preTokenizer.map { (p) throws(TokenizersError) in
            try PreTokenizer(p, path: path)
        }
        let m = json.model
        let type = m.type ?? (m.merges.isEmpty ? "WordLevel" : "BPE")
        switch type {
        case "BPE":
            model = try BPEModel(
                vocab: m.vocab, merges: m.merges, unkToken: m.unkToken, prefix: m.continuingSubwordPrefix,
                suffix: m.endOfWordSuffix, fuseUnk: m.fuseUnk, byteFallback: m.byteFallback,
                ignoreMerges: m.ignoreMerges, dropout: m.dropout, path: path)
        case "WordLevel":
            model = try WordLevelModel(vocab: m.vocab, unkToken: m.unkToken, path: path)
        default:
            throw .unsupported(path: path, field: "model.type", value: type)
        }
        postProcessor =
            try json.postProcessor.map { (p) throws(TokenizersError) in
                try PostProcessor(p, path: path)
            } ?? PostProcessor()
        decoder = try TokenDecoder(json.decoder, path: path)
        var added = AddedVocabulary(json.addedTokens, normalizer: normalizer)
        for t in extraAdded { added.add(t, normalizer: normalizer) }
        addedVocabulary = added
        defaultOptions = options
        bosTokenId = bos
        eosTokenId = eos
        padTokenId = pad
        self.endOfWordSuffix = endOfWordSuffix
    }

    public var vocabularySize: Int {
        var n = model.vocabularySize
        for t in addedVocabulary.tokens where model.idToToken(t.id) == nil { n += 1 }
        return n
    }

    public func tokenToId(_ token: String) -> Int? {
        addedVocabulary.contentToId[token] ?? model.tokenToId(token)
    }

    public func idToToken(_ id: Int) -> String? {
        addedVocabulary.idToContent[id] ?? model.idToToken(id)
    }

    /// The ids of `text` before truncation, special tokens and padding.
    public func tokenize(_ text: String) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return ids }
        var raw: [TextSegment] = []
        addedVocabulary.split(scalars, normalized: false, into: &raw)
        let splitNormalized = addedVocabulary.has(normalized: true)
        var pieces: [[Unicode.Scalar]] = []
        var normalizedSegments: [TextSegment] = []
        for segment in raw {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(var s):
                normalizer?.apply(&s)
                normalizedSegments.removeAll(keepingCapacity: true)
                if splitNormalized {
                    addedVocabulary.split(s, normalized: true, into: &normalizedSegments)
                } else if !s.isEmpty {
                    normalizedSegments.append(.text(s))
                }
                for inner in normalizedSegments {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let t):
                        pieces.removeAll(keepingCapacity: true)
                        pieces.append(t)
                        preTokenizer?.apply(&pieces)
                        for p in pieces { model.tokenize(p, into: &ids) }
                    }
                }
            }
        }
        return ids
    }

    public func encode(_ text: String, options: EncodingOptions) -> Encoding {
        var ids = tokenize(text)
        var truncated = 0
        let added = options.addSpecialTokens ? postProcessor.addedCount : 0
        if let maxLength = options.maxLength {
            let room = max(0, maxLength - added)
            if ids.count > room {
                truncated = ids.count - room
                switch options.truncationSide {
                case .right: ids.removeLast(truncated)
                case .left: ids.removeFirst(truncated)
                }
            }
        }
        if options.addSpecialTokens && added > 0 {
            ids = postProcessor.prefix + ids + postProcessor.suffix
        }
        var mask = [Int](repeating: 1, count: ids.count)
        if options.padToMaxLength, let length = options.padLength ?? options.maxLength, ids.count < length {
            let n = length - ids.count
            let pads = [Int](repeating: options.padId, count: n)
            let zeros = [Int](repeating: 0, count: n)
            switch options.paddingSide {
            case .right:
                ids += pads
                mask += zeros
            case .left:
                ids = pads + ids
                mask = zeros + mask
            }
        }
        return Encoding(ids: ids, attentionMask: mask, truncatedTokenCount: truncated)
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if skipSpecialTokens && addedVocabulary.specialIds.contains(id) { continue }
            if let t = idToToken(id) { tokens.append(t) }
        }
        var text = decoder.decode(tokens)
        if let suffix = endOfWordSuffix, !suffix.isEmpty {
            // On scalars, not Characters: `</w>` may be followed by a combining mark.
            let needle = Array(suffix.unicodeScalars)
            let scalars = Array(text.unicodeScalars)
            var out = String.UnicodeScalarView()
            var i = 0
            while i < scalars.count {
                if scalars[i] == needle[0] && i + needle.count <= scalars.count
                    && scalars[i..<(i + needle.count)].elementsEqual(needle)
                {
                    out.append(" ")
                    i += needle.count
                } else {
                    out.append(scalars[i])
                    i += 1
                }
            }
            text = String(out.trimmingWhitespace())
        }
        return text
    }
}

extension String.UnicodeScalarView {
    /// Strips leading and trailing White_Space, as Python's `str.strip()`.
    func trimmingWhitespace() -> String.UnicodeScalarView {
        guard let first = firstIndex(where: { !CharClass.isSpace($0) }) else { return .init() }
        let last = lastIndex(where: { !CharClass.isSpace($0) })!
        return String.UnicodeScalarView(self[first...last])
    }
}
