// Rebuilds a Hugging Face `tokenizer.json` from GGUF tokenizer metadata, as transformers 5.24.0 does
// in `integrations/gguf/gguf_tokenizer_mapping.py` (`byte_level_tokenizer`, `add_gguf_special_tokens`,
// `set_split_regex`), with one addition: `tokenizer.ggml.pre` = "smollm" gets SmolLM2's own
// pre-tokenizer (individual digits, then byte-level), which llama.cpp applies and transformers'
// mapping lacks (it falls back to plain ByteLevel). The two differ only where whitespace precedes a
// digit: ByteLevel cuts "a  1" into "a", " ", " 1" (tokens a Ġ Ġ 1), SmolLM2's own tokenizer.json,
// which the model was trained with, into "a", "  ", "1" (a ĠĠ 1). The fixture commits both id lists.
import Foundation

/// The tokenizer a GGUF file describes in its `tokenizer.*` metadata.
///
/// ```swift
/// let file = try GGUFFile(url: ggufURL)
/// let gguf = try GGUFTokenizer(file)
/// let json = try TokenizerJSON.decode(try gguf.tokenizerJSON(), path: file.path)  // Tokenizers target
/// let tokenizer = try PreTrainedTokenizer(json, path: file.path)
/// ```
public struct GGUFTokenizer: Sendable {
    /// `tokenizer.ggml.model`; only `"gpt2"` (byte-level BPE) is supported.
    public let model: String
    /// `tokenizer.ggml.pre` (llama.cpp's pre-tokenizer name), if present.
    public let preTokenizer: String?
    /// `tokenizer.ggml.tokens`, spelled as in the file.
    public let tokens: [String]
    /// `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte); all 1 if absent.
    public let tokenTypes: [Int]
    /// `tokenizer.ggml.merges` as pairs.
    public let merges: [(String, String)]
    /// `tokenizer.ggml.bos_token_id` (SmolLM2: 1, `<|im_start|>`).
    public let bosTokenId: Int?
    /// `tokenizer.ggml.eos_token_id` (SmolLM2: 2, `<|im_end|>`).
    public let eosTokenId: Int?
    /// `tokenizer.ggml.unknown_token_id`.
    public let unknownTokenId: Int?
    /// `tokenizer.ggml.padding_token_id`.
    public let paddingTokenId: Int?
    /// `tokenizer.ggml.add_bos_token` (false if absent).
    public let addBosToken: Bool
    /// `tokenizer.ggml.add_eos_token` (false if absent).
    public let addEosToken: Bool
    /// `tokenizer.chat_template` (a Jinja string), if present.
    public let chatTemplate: String?
    /// The file the metadata came from, for errors.
    public let path: String

    /// Reads and checks the tokenizer metadata of `file`.
    public init(_ file: GGUFFile) throws(GGUFError) {
        path = file.path
        let md = file.metadata
        let path = file.path
        func string(_ key: String) throws(GGUFError) -> String? {
            guard let v = md[key] else { return nil }
            guard let s = v.stringValue else {
                throw .invalidMetadata(path: path, key: key, reason: "expected a string, found \(v.type)")
            }
            return s
        }
        func stringArray(_ key: String) throws(GGUFError) -> [String]? {
            guard let v = md[key] else { return nil }
            guard case .array(.string, let elements) = v else {
                throw .invalidMetadata(path: path, key: key, reason: "expected an array of strings")
            }
            return elements.map { $0.stringValue! }
        }
        guard let model = try string("tokenizer.ggml.model") else {
            throw .missingMetadata(path: path, key: "tokenizer.ggml.model")
        }
        guard model == "gpt2" else {
            throw .unsupportedTokenizer(path: path, key: "tokenizer.ggml.model", value: model)
        }
        self.model = model
        preTokenizer = try string("tokenizer.ggml.pre")
        guard let tokens = try stringArray("tokenizer.ggml.tokens") else {
            throw .missingMetadata(path: path, key: "tokenizer.ggml.tokens")
        }
        self.tokens = tokens
        if let v = md["tokenizer.ggml.token_type"] {
            guard let types = v.arrayValue?.compactMap(\.intValue), types.count == tokens.count else {
                throw .invalidMetadata(
                    path: path, key: "tokenizer.ggml.token_type",
                    reason: "expected \(tokens.count) integers, one per token")
            }
            tokenTypes = types
        } else {
            tokenTypes = Array(repeating: 1, count: tokens.count)
        }
        guard let mergeLines = try stringArray("tokenizer.ggml.merges") else {
            throw .missingMetadata(path: path, key: "tokenizer.ggml.merges")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeLines.count)
        for (i, line) in mergeLines.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .invalidMetadata(
                    path: path, key: "tokenizer.ggml.merges", reason: "merge \(i) `\(line)` is not `a b`")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        self.merges = merges
        func tokenId(_ key: String) throws(GGUFError) -> Int? {
            guard let v = md[key] else { return nil }
            guard let id = v.intValue, id >= 0, id < tokens.count else {
                throw .invalidMetadata(
                    path: path, key: key, reason: "\(v) is not a token id below \(tokens.count)")
            }
            return id
        }
        bosTokenId = try tokenId("tokenizer.ggml.bos_token_id")
        eosTokenId = try tokenId("tokenizer.ggml.eos_token_id")
        unknownTokenId = try tokenId("tokenizer.ggml.unknown_token_id")
        paddingTokenId = try tokenId("tokenizer.ggml.padding_token_id")
        addBosToken = md["tokenizer.ggml.add_bos_token"]?.boolValue ?? false
        addEosToken = md["tokenizer.ggml.add_eos_token"]?.boolValue ?? false
        chatTemplate = try string("tokenizer.chat_template")
        if addBosToken, bosTokenId == nil {
            throw .missingMetadata(path: path, key: "tokenizer.ggml.bos_token_id")
        }
        if addEosToken, eosTokenId == nil {
            throw .missingMetadata(path: path, key: "tokenizer.ggml.eos_token_id")
        }
        _ = try Self.preTokenizerJSON(preTokenizer, path: path)
    }

    /// The vocabulary as `tokenizer.json` spells it: tokens already in the byte-level alphabet
    /// unchanged, any other token respelled from its UTF-8 bytes (transformers' `byte_level_tokenizer`).
    public var byteLevelVocabulary: [String] {
        tokens.map { token in
            if token.unicodeScalars.allSatisfy({ ByteLevelAlphabet.scalars.contains($0) }) { return token }
            let scalars = token.utf8.map { ByteLevelAlphabet.byteToScalar[Int($0)] }
            return String(String.UnicodeScalarView(scalars))
        }
    }

    /// Special tokens of the file: token type 3 (control) spelled in the byte alphabet, as transformers
    /// adds them; `(id, content, special)`, with type 4 (user-defined) ones as non-special.
    public var addedTokens: [(id: Int, content: String, special: Bool)] {
        var out: [(Int, String, Bool)] = []
        let vocab = Set(byteLevelVocabulary)
        for (id, (token, type)) in zip(tokens, tokenTypes).enumerated() {
            if type == 3, token.unicodeScalars.allSatisfy({ ByteLevelAlphabet.scalars.contains($0) }) {
                out.append((id, token, true))
            } else if type == 4, vocab.contains(token) {
                out.append((id, token, false))
            }
        }
        return out
    }

    /// A Hugging Face `tokenizer.json` (BPE model with vocabulary and merges, byte-level
    /// pre-tokenizer and decoder, the file's control tokens as added special tokens), as UTF-8 JSON.
    /// Vocabulary entries are written in id order; a respelled duplicate keeps its last id, as in
    /// transformers.
    public func tokenizerJSON() throws(GGUFError) -> Data {
        var w = JSONWriter()
        w.raw("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n")
        w.raw("  \"added_tokens\": [")
        for (i, t) in addedTokens.enumerated() {
            w.raw(i == 0 ? "\n    " : ",\n    ")
            w.raw("{\"id\": \(t.id), \"content\": ")
            w.string(t.content)
            w.raw(", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, ")
            w.raw("\"special\": \(t.special)}")
        }
        w.raw("\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": ")
        w.raw(try Self.preTokenizerJSON(preTokenizer, path: path))
        w.raw(",\n  \"post_processor\": ")
        w.raw(postProcessorJSON())
        w.raw(",\n  \"decoder\": ")
        w.raw(#"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"#)
        w.raw(",\n  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, ")
        w.raw("\"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false, ")
        w.raw("\"byte_fallback\": false, \"ignore_merges\": false,\n    \"vocab\": {")
        let vocab = byteLevelVocabulary
        var lastId: [String: Int] = [:]
        for (id, t) in vocab.enumerated() { lastId[t] = id }
        var first = true
        for (id, t) in vocab.enumerated() where lastId[t] == id {
            w.raw(first ? "\n      " : ",\n      ")
            first = false
            w.string(t)
            w.raw(": \(id)")
        }
        w.raw("\n    },\n    \"merges\": [")
        for (i, m) in merges.enumerated() {
            w.raw(i == 0 ? "\n      [" : ",\n      [")
            w.string(m.0)
            w.raw(", ")
            w.string(m.1)
            w.raw("]")
        }
        w.raw("\n    ]\n  }\n}\n")
        return w.data
    }

    /// A `tokenizer_config.json` with the special tokens by content, the `add_*_token` flags and the
    /// chat template, as transformers' GGUF loader sets them.
    public func tokenizerConfigJSON() -> Data {
        var w = JSONWriter()
        w.raw("{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\"")
        w.raw(",\n  \"add_bos_token\": \(addBosToken),\n  \"add_eos_token\": \(addEosToken)")
        for (key, id) in [
            ("bos_token", bosTokenId), ("eos_token", eosTokenId), ("unk_token", unknownTokenId),
            ("pad_token", paddingTokenId),
        ] {
            w.raw(",\n  \"\(key)\": ")
            if let id { w.string(tokens[id]) } else { w.raw("null") }
        }
        w.raw(",\n  \"chat_template\": ")
        if let chatTemplate { w.string(chatTemplate) } else { w.raw("null") }
        w.raw("\n}\n")
        return w.data
    }

    // MARK: - Pieces

    static let gpt2ByteLevel =
        #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#

    /// llama.cpp pre-tokenizer names → the `pre_tokenizer` transformers builds for them.
    static func preTokenizerJSON(_ pre: String?, path: String) throws(GGUFError) -> String {
        switch pre {
        case nil, "default", "gpt2":
            return gpt2ByteLevel
        case "smollm":
            // SmolLM2's tokenizer.json: Digits(individual_digits) then ByteLevel; llama.cpp's "smollm"
            // regexes (`\p{N}`, then the GPT-2 pattern) split the same way.
            return #"{"type": "Sequence", "pretokenizers": ["#
                + #"{"type": "Digits", "individual_digits": true}, "# + gpt2ByteLevel + "]}"
        case let name?:
            guard let split = splitRegex[name] else {
                throw .unsupportedTokenizer(path: path, key: "tokenizer.ggml.pre", value: name)
            }
            var w = JSONWriter()
            w.raw(#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "#)
            w.string(split)
            w.raw(#"}, "behavior": "Isolated", "invert": false}, "#)
            w.raw(#"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "#)
            w.raw(#""use_regex": false}]}"#)
            return String(decoding: w.data, as: UTF8.self)
        }
    }

    static let llama3Split =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"#
        + #"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"#
        + #"|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// The subset of transformers' `GGUF_PRE_TOKENIZER_SPLITS` whose patterns the Tokenizers target runs.
    static let splitRegex: [String: String] = [
        "llama3": llama3Split, "llama-v3": llama3Split, "llama-bpe": llama3Split, "falcon3": llama3Split,
        "smaug-bpe": llama3Split, "dbrx": llama3Split, "qwen2": qwen2Split, "deepseek-r1-qwen": qwen2Split,
    ]

    func postProcessorJSON() -> String {
        guard addBosToken || addEosToken else {
            return #"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "#
                + #""use_regex": true}"#
        }
        var w = JSONWriter()
        var specials: [(String, Int)] = []
        if addBosToken, let id = bosTokenId { specials.append((tokens[id], id)) }
        w.raw(#"{"type": "TemplateProcessing", "single": ["#)
        var pieces: [String] = []
        func special(_ content: String) -> String {
            var p = JSONWriter()
            p.raw(#"{"SpecialToken": {"id": "#)
            p.string(content)
            p.raw(#", "type_id": 0}}"#)
            return String(decoding: p.data, as: UTF8.self)
        }
        if addBosToken, let id = bosTokenId { pieces.append(special(tokens[id])) }
        pieces.append(#"{"Sequence": {"id": "A", "type_id": 0}}"#)
        if addEosToken, let id = eosTokenId {
            pieces.append(special(tokens[id]))
            specials.append((tokens[id], id))
        }
        w.raw(pieces.joined(separator: ", "))
        w.raw(#"], "pair": [{"Sequence": {"id": "A", "type_id": 0}}, "#)
        w.raw(#"{"Sequence": {"id": "B", "type_id": 1}}], "#)
        w.raw(#""special_tokens": {"#)
        for (i, (content, id)) in specials.enumerated() {
            if i > 0 { w.raw(", ") }
            w.string(content)
            w.raw(": {\"id\": ")
            w.string(content)
            w.raw(", \"ids\": [\(id)], \"tokens\": [")
            w.string(content)
            w.raw("]}")
        }
        w.raw("}}")
        return String(decoding: w.data, as: UTF8.self)
    }
}

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 onwards in byte order.
enum ByteLevelAlphabet {
    static let byteToScalar: [Unicode.Scalar] = {
        var out: [Unicode.Scalar] = []
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                out.append(Unicode.Scalar(UInt32(b))!)
            } else {
                out.append(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return out
    }()
    static let scalars = Set(byteToScalar)
}

/// Minimal JSON text builder with RFC 8259 string escaping.
struct JSONWriter {
    var data = Data()

    mutating func raw(_ s: String) { data.append(contentsOf: s.utf8) }

    mutating func string(_ s: String) {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
        raw(out)
    }
}
