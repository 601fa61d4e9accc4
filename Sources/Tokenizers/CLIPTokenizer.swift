import Foundation

// Mirrors transformers' `CLIPTokenizer` (transformers 5.24.0, `models/clip/tokenization_clip.py`),
// the tokenizer of SD1.x / SD2.x / SDXL text encoders: NFC, whitespace runs → one space, lower
// case, CLIP's split regex, byte-level BPE with the `</w>` end-of-word suffix, bos/eos around the
// text, padded and truncated to `model_max_length` (77).

/// `tokenizer_config.json` fields a CLIP tokenizer reads.
public struct CLIPTokenizerConfig: Decodable, Sendable, Equatable {
    /// Length every encoding is padded and truncated to (77 for CLIP), special tokens included.
    public var modelMaxLength: Int
    /// Begin-of-text token, `<|startoftext|>`.
    public var bosToken: String
    /// End-of-text token, `<|endoftext|>`.
    public var eosToken: String
    /// Unknown token (CLIP uses `<|endoftext|>`; byte-level BPE never needs it).
    public var unkToken: String
    /// SD1.x pads with `<|endoftext|>`, SD2.x and SDXL's second tokenizer with `!`.
    public var padToken: String

    enum CodingKeys: String, CodingKey {
        case modelMaxLength = "model_max_length"
        case bosToken = "bos_token"
        case eosToken = "eos_token"
        case unkToken = "unk_token"
        case padToken = "pad_token"
    }

    /// A token field: a string, or an `AddedToken` object with a `content` field.
    struct TokenField: Decodable {
        var content: String

        enum CodingKeys: String, CodingKey {
            case content
        }

        init(from decoder: any Decoder) throws {
            if let s = try? decoder.singleValueContainer().decode(String.self) {
                content = s
            } else {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                content = try c.decode(String.self, forKey: .content)
            }
        }
    }

    /// The SD1.x defaults; pass `padToken: "!"` for SD2.x and SDXL's second tokenizer.
    public init(
        modelMaxLength: Int = 77, bosToken: String = "<|startoftext|>", eosToken: String = "<|endoftext|>",
        unkToken: String = "<|endoftext|>", padToken: String = "<|endoftext|>"
    ) {
        self.modelMaxLength = modelMaxLength
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.unkToken = unkToken
        self.padToken = padToken
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPTokenizerConfig()
        // Absent or absurd (transformers writes 1e30 for "no limit") lengths fall back to CLIP's 77.
        let length = (try? c.decodeIfPresent(Double.self, forKey: .modelMaxLength)) ?? nil
        modelMaxLength = length.flatMap { $0 > 0 && $0 < 1e9 ? Int($0) : nil } ?? d.modelMaxLength
        bosToken = try c.decodeIfPresent(TokenField.self, forKey: .bosToken)?.content ?? d.bosToken
        eosToken = try c.decodeIfPresent(TokenField.self, forKey: .eosToken)?.content ?? d.eosToken
        unkToken = try c.decodeIfPresent(TokenField.self, forKey: .unkToken)?.content ?? d.unkToken
        padToken = try c.decodeIfPresent(TokenField.self, forKey: .padToken)?.content ?? d.padToken
    }

    /// Rejects configurations that cannot encode anything.
    public func validate(path: String) throws(TokenizersError) {
        guard modelMaxLength >= 2 else {
            throw .unsupported(path: path, field: "model_max_length", value: "\(modelMaxLength) (need ≥ 2)")
        }
    }
}

/// CLIP's byte-level BPE tokenizer, as transformers' `CLIPTokenizer` / `CLIPTokenizerFast`.
///
/// ```swift
/// let tok = try CLIPTokenizer(directory: URL(fileURLWithPath: "sd-v1-5/tokenizer"))
/// let e = tok.encode("a photo of an astronaut")
/// // e.ids.count == 77: [49406, 320, 1125, 539, 550, 18376, 49407, 49407, …]
/// ```
public struct CLIPTokenizer: Tokenizer {
    let base: PreTrainedTokenizer
    /// The configuration in use.
    public let config: CLIPTokenizerConfig

    static let splitRegex =
        #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#

    /// Loads a diffusers/transformers tokenizer folder: `tokenizer_config.json` (optional) and either
    /// `tokenizer.json` or `vocab.json` + `merges.txt` (each may also be gzip-compressed as `.gz`).
    public init(directory: URL) throws(TokenizersError) {
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        var config = CLIPTokenizerConfig()
        if tokenizerFileExists(configURL) {
            config = try decodeJSON(
                CLIPTokenizerConfig.self, from: try readTokenizerFile(configURL), path: configURL.path)
        }
        let json = directory.appendingPathComponent("tokenizer.json")
        if tokenizerFileExists(json) {
            try self.init(tokenizerJSON: json, config: config)
        } else {
            try self.init(
                vocab: directory.appendingPathComponent("vocab.json"),
                merges: directory.appendingPathComponent("merges.txt"), config: config)
        }
    }

    /// Loads CLIP's `vocab.json` and `merges.txt` (as transformers' `CLIPTokenizer` does).
    public init(vocab: URL, merges: URL, config: CLIPTokenizerConfig = .init()) throws(TokenizersError) {
        let vocabData = try readTokenizerFile(vocab)
        let vocabPairs: [(String, Int)]
        do {
            guard let pairs = try VocabScanner.pairs(in: vocabData, at: []) else {
                throw TokenizersError.corruptFile(
                    path: vocab.path, field: "(root)", reason: "not a JSON object")
            }
            vocabPairs = pairs
        } catch let error as TokenizersError {
            throw error
        } catch {
            throw .corruptFile(path: vocab.path, field: "(root)", reason: "\(error)")
        }
        var vocabMap: [String: Int] = [:]
        for (t, id) in vocabPairs { vocabMap[t] = id }
        let text = String(decoding: try readTokenizerFile(merges), as: UTF8.self)
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(49_000)
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.isEmpty || (i == 0 && line.hasPrefix("#version")) { continue }
            guard let pair = splitMergeLine(line) else {
                throw .corruptFile(
                    path: merges.path, field: "line \(i + 1)", reason: "`\(line)` is not `a b`")
            }
            pairs.append(pair)
        }
        guard let bos = vocabMap[config.bosToken] else {
            throw .missingToken(path: vocab.path, field: "bos_token", token: config.bosToken)
        }
        guard let eos = vocabMap[config.eosToken] else {
            throw .missingToken(path: vocab.path, field: "eos_token", token: config.eosToken)
        }
        let json = TokenizerJSON(
            model: ModelConfig(
                bpeVocab: vocabPairs, merges: pairs, unkToken: config.unkToken, endOfWordSuffix: "</w>"),
            normalizer: NormalizerConfig(
                type: "Sequence",
                normalizers: [
                    NormalizerConfig(type: "NFC"),
                    NormalizerConfig(type: "Replace", pattern: .regex(#"\s+"#), content: " "),
                    NormalizerConfig(type: "Lowercase"),
                ]),
            preTokenizer: PreTokenizerConfig(
                type: "Sequence",
                pretokenizers: [
                    PreTokenizerConfig(
                        type: "Split", pattern: .regex(Self.splitRegex), behavior: "Removed", invert: true),
                    PreTokenizerConfig(type: "ByteLevel", addPrefixSpace: false, useRegex: true),
                ]),
            postProcessor: PostProcessorConfig(
                type: "RobertaProcessing", sep: TokenAndId(token: config.eosToken, id: eos),
                cls: TokenAndId(token: config.bosToken, id: bos)),
            decoder: DecoderConfig(type: "ByteLevel"))
        try self.init(json, path: vocab.path, config: config, vocabLookup: vocabMap)
    }

    /// Loads a CLIP `tokenizer.json` (as `CLIPTokenizerFast` saves it).
    public init(tokenizerJSON url: URL, config: CLIPTokenizerConfig = .init()) throws(TokenizersError) {
        let json = try TokenizerJSON.load(url)
        var lookup: [String: Int] = [:]
        for (t, id) in json.model.vocab { lookup[t] = id }
        for t in json.addedTokens { lookup[t.content] = t.id }
        try self.init(json, path: url.path, config: config, vocabLookup: lookup)
    }

    private init(
        _ json: TokenizerJSON, path: String, config: CLIPTokenizerConfig, vocabLookup: [String: Int]
    ) throws(TokenizersError) {
        try config.validate(path: path)
        func id(_ token: String, _ field: String) throws(TokenizersError) -> Int {
            guard let id = vocabLookup[token] else {
                throw .missingToken(path: path, field: field, token: token)
            }
            return id
        }
        let bos = try id(config.bosToken, "bos_token")
        let eos = try id(config.eosToken, "eos_token")
        let unk = try id(config.unkToken, "unk_token")
        let pad = try id(config.padToken, "pad_token")
        // transformers registers every special token of the config as a special added token, so
        // e.g. a `!` pad token is matched as its own token anywhere in the text.
        let specials = [
            (config.bosToken, bos), (config.eosToken, eos), (config.unkToken, unk),
            (config.padToken, pad),
        ].map { AddedTokenConfig(id: $0.1, content: $0.0) }
        let options = EncodingOptions(maxLength: config.modelMaxLength, padToMaxLength: true, padId: pad)
        base = try PreTrainedTokenizer(
            json, path: path, options: options, bos: bos, eos: eos, pad: pad, extraAdded: specials,
            endOfWordSuffix: json.model.endOfWordSuffix ?? "</w>")
        self.config = config
    }

    public var defaultOptions: EncodingOptions { base.defaultOptions }
    public var vocabularySize: Int { base.vocabularySize }
    public var bosTokenId: Int? { base.bosTokenId }
    public var eosTokenId: Int? { base.eosTokenId }
    public var padTokenId: Int? { base.padTokenId }

    public func encode(_ text: String, options: EncodingOptions) -> Encoding {
        base.encode(text, options: options)
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        base.decode(ids, skipSpecialTokens: skipSpecialTokens)
    }

    public func tokenToId(_ token: String) -> Int? { base.tokenToId(token) }

    public func idToToken(_ id: Int) -> String? { base.idToToken(id) }
}
