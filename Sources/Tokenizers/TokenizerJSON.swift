import Foundation

// MARK: - tokenizer.json, as Hugging Face `tokenizers` (0.23) writes it

/// The decoded contents of a Hugging Face `tokenizer.json`.
///
/// Component objects keep the JSON key names verbatim in their `CodingKeys` so that a field named
/// in an error message can be found in the file with grep; each property is the camelCase of its
/// key and means what the `tokenizers` documentation says it means. To build a tokenizer from
/// another source (e.g. GGUF metadata), write the equivalent tokenizer.json bytes and call
/// ``decode(_:path:)``.
public struct TokenizerJSON: Decodable, Sendable {
    public var version: String?
    public var truncation: TruncationConfig?
    public var padding: PaddingConfig?
    public var addedTokens: [AddedTokenConfig]
    public var normalizer: NormalizerConfig?
    public var preTokenizer: PreTokenizerConfig?
    public var model: ModelConfig
    public var postProcessor: PostProcessorConfig?
    public var decoder: DecoderConfig?

    enum CodingKeys: String, CodingKey {
        case version
        case truncation
        case padding
        case addedTokens = "added_tokens"
        case normalizer
        case preTokenizer = "pre_tokenizer"
        case model
        case postProcessor = "post_processor"
        case decoder
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        truncation = try c.decodeIfPresent(TruncationConfig.self, forKey: .truncation)
        padding = try c.decodeIfPresent(PaddingConfig.self, forKey: .padding)
        addedTokens = try c.decodeIfPresent([AddedTokenConfig].self, forKey: .addedTokens) ?? []
        normalizer = try c.decodeIfPresent(NormalizerConfig.self, forKey: .normalizer)
        preTokenizer = try c.decodeIfPresent(PreTokenizerConfig.self, forKey: .preTokenizer)
        model = try c.decode(ModelConfig.self, forKey: .model)
        postProcessor = try c.decodeIfPresent(PostProcessorConfig.self, forKey: .postProcessor)
        self.decoder = try c.decodeIfPresent(DecoderConfig.self, forKey: .decoder)
    }

    init(
        model: ModelConfig, normalizer: NormalizerConfig?, preTokenizer: PreTokenizerConfig?,
        postProcessor: PostProcessorConfig?, decoder: DecoderConfig?
    ) {
        self.version = "1.0"
        self.truncation = nil
        self.padding = nil
        self.addedTokens = []
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
    }

    /// Reads and decodes `url` (plain or gzip-compressed).
    public static func load(_ url: URL) throws(TokenizersError) -> TokenizerJSON {
        try decode(try readTokenizerFile(url), path: url.path)
    }

    /// Decodes tokenizer.json contents; `path` names the source in errors.
    public static func decode(_ data: Data, path: String) throws(TokenizersError) -> TokenizerJSON {
        var json = try decodeJSON(TokenizerJSON.self, from: data, path: path)
        // Re-read the vocabulary keeping every key exactly as written (see `VocabScanner`).
        do {
            if let pairs = try VocabScanner.pairs(in: data, at: ["model", "vocab"]) {
                json.model.vocab = pairs
            }
        } catch {
            throw .corruptFile(path: path, field: "model.vocab", reason: "\(error)")
        }
        return json
    }
}

/// Decodes `type` from JSON `data`, mapping `DecodingError` to ``TokenizersError/corruptFile``.
func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws(TokenizersError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as DecodingError {
        let (codingPath, reason): ([any CodingKey], String) = {
            switch error {
            case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .keyNotFound(_, let ctx),
                .dataCorrupted(let ctx):
                return (ctx.codingPath, ctx.debugDescription)
            @unknown default:
                return ([], "\(error)")
            }
        }()
        var field = codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        if case .keyNotFound(let key, _) = error {
            field += (field.isEmpty ? "" : ".") + key.stringValue
        }
        throw .corruptFile(path: path, field: field.isEmpty ? "(root)" : field, reason: reason)
    } catch {
        throw .corruptFile(path: path, field: "(root)", reason: "\(error)")
    }
}

/// `truncation` of tokenizer.json.
public struct TruncationConfig: Codable, Sendable {
    public var direction: String?
    public var maxLength: Int
    public var strategy: String?
    public var stride: Int?

    enum CodingKeys: String, CodingKey {
        case direction
        case maxLength = "max_length"
        case strategy
        case stride
    }
}

/// `padding` of tokenizer.json. `strategy` is `"BatchLongest"` or `{"Fixed": n}`.
public struct PaddingConfig: Decodable, Sendable {
    public var fixedLength: Int?
    public var direction: String?
    public var padToMultipleOf: Int?
    public var padId: Int
    public var padToken: String?

    enum CodingKeys: String, CodingKey {
        case strategy
        case direction
        case padToMultipleOf = "pad_to_multiple_of"
        case padId = "pad_id"
        case padToken = "pad_token"
    }

    enum StrategyKeys: String, CodingKey {
        case fixed = "Fixed"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let strategy = try? c.nestedContainer(keyedBy: StrategyKeys.self, forKey: .strategy) {
            fixedLength = try strategy.decode(Int.self, forKey: .fixed)
        } else {
            fixedLength = nil
        }
        direction = try c.decodeIfPresent(String.self, forKey: .direction)
        padToMultipleOf = try c.decodeIfPresent(Int.self, forKey: .padToMultipleOf)
        padId = try c.decodeIfPresent(Int.self, forKey: .padId) ?? 0
        padToken = try c.decodeIfPresent(String.self, forKey: .padToken)
    }
}

/// One entry of `added_tokens`.
public struct AddedTokenConfig: Codable, Sendable, Equatable {
    public var id: Int
    public var content: String
    public var singleWord: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool
    public var special: Bool

    enum CodingKeys: String, CodingKey {
        case id
        case content
        case singleWord = "single_word"
        case lstrip
        case rstrip
        case normalized
        case special
    }

    public init(
        id: Int, content: String, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
        normalized: Bool = false, special: Bool = true
    ) {
        self.id = id
        self.content = content
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.special = special
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int.self, forKey: .id)
        content = try c.decode(String.self, forKey: .content)
        singleWord = try c.decodeIfPresent(Bool.self, forKey: .singleWord) ?? false
        lstrip = try c.decodeIfPresent(Bool.self, forKey: .lstrip) ?? false
        rstrip = try c.decodeIfPresent(Bool.self, forKey: .rstrip) ?? false
        special = try c.decodeIfPresent(Bool.self, forKey: .special) ?? false
        normalized = try c.decodeIfPresent(Bool.self, forKey: .normalized) ?? !special
    }
}

/// A split pattern: `{"String": "…"}` (literal) or `{"Regex": "…"}`.
public enum PatternConfig: Codable, Sendable, Equatable {
    case string(String)
    case regex(String)

    enum CodingKeys: String, CodingKey {
        case string = "String"
        case regex = "Regex"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let s = try c.decodeIfPresent(String.self, forKey: .string) {
            self = .string(s)
        } else {
            self = .regex(try c.decode(String.self, forKey: .regex))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .string(let s): try c.encode(s, forKey: .string)
        case .regex(let s): try c.encode(s, forKey: .regex)
        }
    }
}

/// `normalizer`: one object with a `type` and that type's fields.
public final class NormalizerConfig: Decodable, Sendable {
    public let type: String
    public let normalizers: [NormalizerConfig]?
    public let pattern: PatternConfig?
    public let content: String?
    public let prepend: String?
    public let stripLeft: Bool?
    public let stripRight: Bool?

    enum CodingKeys: String, CodingKey {
        case type
        case normalizers
        case pattern
        case content
        case prepend
        case stripLeft = "strip_left"
        case stripRight = "strip_right"
    }

    public init(
        type: String, normalizers: [NormalizerConfig]? = nil, pattern: PatternConfig? = nil,
        content: String? = nil
    ) {
        self.type = type
        self.normalizers = normalizers
        self.pattern = pattern
        self.content = content
        self.prepend = nil
        self.stripLeft = nil
        self.stripRight = nil
    }
}

/// `pre_tokenizer`: one object with a `type` and that type's fields.
public final class PreTokenizerConfig: Decodable, Sendable {
    public let type: String
    public let pretokenizers: [PreTokenizerConfig]?
    public let pattern: PatternConfig?
    public let behavior: String?
    public let invert: Bool?
    public let addPrefixSpace: Bool?
    public let useRegex: Bool?
    public let individualDigits: Bool?

    enum CodingKeys: String, CodingKey {
        case type
        case pretokenizers
        case pattern
        case behavior
        case invert
        case addPrefixSpace = "add_prefix_space"
        case useRegex = "use_regex"
        case individualDigits = "individual_digits"
    }

    public init(
        type: String, pretokenizers: [PreTokenizerConfig]? = nil, pattern: PatternConfig? = nil,
        behavior: String? = nil, invert: Bool? = nil, addPrefixSpace: Bool? = nil,
        useRegex: Bool? = nil
    ) {
        self.type = type
        self.pretokenizers = pretokenizers
        self.pattern = pattern
        self.behavior = behavior
        self.invert = invert
        self.addPrefixSpace = addPrefixSpace
        self.useRegex = useRegex
        self.individualDigits = nil
    }
}

/// `model`: BPE or WordLevel.
public struct ModelConfig: Decodable, Sendable {
    public var type: String?
    /// `(token, id)` pairs, keys exactly as written in the file.
    public var vocab: [(String, Int)]
    /// Merges as pairs; tokenizer.json stores either `"a b"` strings or `["a", "b"]` arrays.
    public var merges: [(String, String)]
    public var dropout: Double?
    public var unkToken: String?
    public var continuingSubwordPrefix: String?
    public var endOfWordSuffix: String?
    public var fuseUnk: Bool
    public var byteFallback: Bool
    public var ignoreMerges: Bool

    enum CodingKeys: String, CodingKey {
        case type
        case vocab
        case merges
        case dropout
        case unkToken = "unk_token"
        case continuingSubwordPrefix = "continuing_subword_prefix"
        case endOfWordSuffix = "end_of_word_suffix"
        case fuseUnk = "fuse_unk"
        case byteFallback = "byte_fallback"
        case ignoreMerges = "ignore_merges"
    }

    init(
        bpeVocab vocab: [(String, Int)], merges: [(String, String)], unkToken: String?,
        endOfWordSuffix: String?
    ) {
        type = "BPE"
        self.vocab = vocab
        self.merges = merges
        dropout = nil
        self.unkToken = unkToken
        continuingSubwordPrefix = nil
        self.endOfWordSuffix = endOfWordSuffix
        fuseUnk = false
        byteFallback = false
        ignoreMerges = false
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        let map = try c.decodeIfPresent([String: Int].self, forKey: .vocab) ?? [:]
        vocab = map.sorted { $0.value < $1.value }.map { ($0.key, $0.value) }
        if let pairs = try? c.decodeIfPresent([[String]].self, forKey: .merges) {
            merges = []
            merges.reserveCapacity(pairs.count)
            for (i, p) in pairs.enumerated() {
                guard p.count == 2 else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .merges, in: c, debugDescription: "merge \(i) is not a pair")
                }
                merges.append((p[0], p[1]))
            }
        } else {
            let lines = try c.decodeIfPresent([String].self, forKey: .merges) ?? []
            merges = []
            merges.reserveCapacity(lines.count)
            for (i, line) in lines.enumerated() {
                guard let pair = splitMergeLine(line) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .merges, in: c, debugDescription: "merge \(i) `\(line)` is not `a b`")
                }
                merges.append(pair)
            }
        }
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout)
        unkToken = try c.decodeIfPresent(String.self, forKey: .unkToken)
        continuingSubwordPrefix = try c.decodeIfPresent(String.self, forKey: .continuingSubwordPrefix)
        endOfWordSuffix = try c.decodeIfPresent(String.self, forKey: .endOfWordSuffix)
        fuseUnk = try c.decodeIfPresent(Bool.self, forKey: .fuseUnk) ?? false
        byteFallback = try c.decodeIfPresent(Bool.self, forKey: .byteFallback) ?? false
        ignoreMerges = try c.decodeIfPresent(Bool.self, forKey: .ignoreMerges) ?? false
    }
}

/// Splits a `merges.txt` line `"a b"` at its single space.
func splitMergeLine(_ line: some StringProtocol) -> (String, String)? {
    guard let space = line.firstIndex(of: " ") else { return nil }
    let a = line[..<space]
    let b = line[line.index(after: space)...]
    guard !a.isEmpty, !b.isEmpty, !b.contains(" ") else { return nil }
    return (String(a), String(b))
}

/// `post_processor`.
public final class PostProcessorConfig: Decodable, Sendable {
    public let type: String
    public let processors: [PostProcessorConfig]?
    public let single: [TemplatePiece]?
    public let specialTokens: [String: TemplateSpecialToken]?
    public let sep: TokenAndId?
    public let cls: TokenAndId?

    enum CodingKeys: String, CodingKey {
        case type
        case processors
        case single
        case specialTokens = "special_tokens"
        case sep
        case cls
    }

    init(type: String, sep: TokenAndId, cls: TokenAndId) {
        self.type = type
        self.processors = nil
        self.single = nil
        self.specialTokens = nil
        self.sep = sep
        self.cls = cls
    }
}

/// `["<|endoftext|>", 49407]` in Roberta/Bert processors.
public struct TokenAndId: Decodable, Sendable {
    public var token: String
    public var id: Int

    public init(token: String, id: Int) {
        self.token = token
        self.id = id
    }

    public init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        token = try c.decode(String.self)
        id = try c.decode(Int.self)
    }
}

/// One element of a `TemplateProcessing` template: `{"SpecialToken": {"id": …}}` or
/// `{"Sequence": {"id": "A"}}`.
public enum TemplatePiece: Decodable, Sendable {
    case specialToken(String)
    case sequence(String)

    enum CodingKeys: String, CodingKey {
        case specialToken = "SpecialToken"
        case sequence = "Sequence"
    }

    struct Inner: Decodable {
        var id: String
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let s = try c.decodeIfPresent(Inner.self, forKey: .specialToken) {
            self = .specialToken(s.id)
        } else {
            self = .sequence(try c.decode(Inner.self, forKey: .sequence).id)
        }
    }
}

/// An entry of `TemplateProcessing.special_tokens`.
public struct TemplateSpecialToken: Decodable, Sendable {
    public var id: String
    public var ids: [Int]
    public var tokens: [String]

    enum CodingKeys: String, CodingKey {
        case id
        case ids
        case tokens
    }
}

/// `decoder`.
public final class DecoderConfig: Decodable, Sendable {
    public let type: String
    public let decoders: [DecoderConfig]?

    enum CodingKeys: String, CodingKey {
        case type
        case decoders
    }

    init(type: String) {
        self.type = type
        self.decoders = nil
    }
}
