import Foundation
import Testing

@testable import Tokenizers

/// Behaviour on small inline configurations and the CLIP fixture: special cases, options, errors.
@Suite struct TokenizerTests {
    /// A tiny tokenizer.json: byte-level BPE over "a", "b", "ab", "Ġ" with a chat special token.
    static let tinyJSON = """
        {"version": "1.0", "truncation": null, "padding": null,
         "added_tokens": [{"id": 5, "content": "<|im_start|>", "single_word": false, "lstrip": false,
                           "rstrip": false, "normalized": false, "special": true}],
         "normalizer": null,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                           "use_regex": true},
         "post_processor": null,
         "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
         "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                   "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                   "ignore_merges": false,
                   "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4},
                   "merges": [["a", "b"], ["Ġ", "ab"]]}}
        """

    func tiny(_ json: String = tinyJSON) throws(TokenizersError) -> PreTrainedTokenizer {
        let config = try TokenizerJSON.decode(Data(json.utf8), path: "inline.json")
        return try PreTrainedTokenizer(config, path: "inline.json")
    }

    @Test func tinyByteLevelBPE() throws {
        let tok = try tiny()
        #expect(tok.encode("ab ab").ids == [2, 4])
        #expect(tok.encode("<|im_start|>ab").ids == [5, 2])
        // "c" is not in the vocabulary and there is no unk token: dropped, as in tokenizers.
        #expect(tok.encode("abc").ids == [2])
        #expect(tok.decode([2, 4, 5], skipSpecialTokens: true) == "ab ab")
        #expect(tok.decode([2, 4, 5], skipSpecialTokens: false) == "ab ab<|im_start|>")
        #expect(tok.tokenToId("<|im_start|>") == 5)
        #expect(tok.idToToken(4) == "Ġab")
        #expect(tok.vocabularySize == 6)
    }

    @Test func emptyStringGivesOnlyBosAndEos() {
        let e = Fixtures.clipEOS.encode("")
        #expect(e.ids == [49406] + [Int](repeating: 49407, count: 76))
        #expect(e.attentionMask == [1, 1] + [Int](repeating: 0, count: 75))
        #expect(!e.wasTruncated)
        let bare = Fixtures.clipEOS.encode("", options: EncodingOptions())
        #expect(bare.ids == [49406, 49407])
        #expect(bare.attentionMask == [1, 1])
    }

    @Test func overlongPromptIsTruncatedAndReported() {
        let text = Array(repeating: "cat", count: 100).joined(separator: " ")
        let e = Fixtures.clipEOS.encode(text)
        #expect(e.ids.count == 77)
        #expect(e.ids.first == 49406 && e.ids.last == 49407)
        #expect(e.attentionMask.allSatisfy { $0 == 1 })
        #expect(e.wasTruncated)
        #expect(e.truncatedTokenCount == 100 - 75)
        // Left truncation keeps the end of the text.
        var options = Fixtures.clipEOS.defaultOptions
        options.truncationSide = .left
        let left = Fixtures.clipEOS.encode("dog " + text, options: options)
        #expect(left.truncatedTokenCount == 101 - 75)
        #expect(!left.ids.contains(1929))  // "dog</w>" was cut from the front.
    }

    @Test func paddingSideAndLength() {
        let options = EncodingOptions(maxLength: 8, padToMaxLength: true, padId: 0, paddingSide: .left)
        let e = Fixtures.clipEOS.encode("a photo of a cat", options: options)
        #expect(e.ids == [0, 49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(e.attentionMask == [0, 1, 1, 1, 1, 1, 1, 1])
    }

    @Test func clipDecodesToCleanText() {
        let tok = Fixtures.clipEOS
        let ids = tok.encode("A photo of an Astronaut, riding!").ids
        #expect(tok.decode(ids) == "a photo of an astronaut , riding !")
        #expect(tok.bosTokenId == 49406 && tok.eosTokenId == 49407 && tok.padTokenId == 49407)
        #expect(tok.vocabularySize == 49408)
        #expect(Fixtures.clipBang.padTokenId == 0)
    }

    @Test func clipDirectoryReadsTokenizerConfig() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("tokenizers-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.json.gz", "merges.txt.gz"] {
            try FileManager.default.copyItem(
                at: Fixtures.url("clip/\(name)"), to: dir.appendingPathComponent(name))
        }
        // As SDXL's tokenizer_2 ships it: pad "!", tokens as AddedToken objects.
        let config = """
            {"model_max_length": 77, "do_lower_case": true, "errors": "replace",
             "pad_token": "!", "unk_token": {"__type": "AddedToken", "content": "<|endoftext|>",
             "lstrip": false, "normalized": true, "rstrip": false, "single_word": false},
             "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
             "tokenizer_class": "CLIPTokenizer"}
            """
        try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try CLIPTokenizer(directory: dir)
        #expect(tok.config.padToken == "!")
        let text = Fixtures.corpus[7]
        #expect(tok.encode(text) == Fixtures.clipBang.encode(text))
    }

    @Test func wordLevelUnknownWords() throws {
        let json = """
            {"added_tokens": [], "normalizer": {"type": "Lowercase"},
             "pre_tokenizer": {"type": "WhitespaceSplit"},
             "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "red": 1, "cube": 2}, "unk_token": "[UNK]"}}
            """
        let tok = try tiny(json)
        #expect(tok.encode("Red  CUBE\tblue").ids == [1, 2, 0])
        #expect(tok.decode([1, 2, 0]) == "red cube [UNK]")
    }

    @Test func concurrentEncodingMatchesSerial() async {
        let tok = Fixtures.clipEOS
        let texts = Array(Fixtures.corpus.prefix(64))
        let serial = tok.encode(texts, options: tok.defaultOptions)
        let parallel = await withTaskGroup(of: (Int, Encoding).self) { group in
            for (i, t) in texts.enumerated() {
                group.addTask { (i, tok.encode(t)) }
            }
            var out = [Encoding?](repeating: nil, count: texts.count)
            for await (i, e) in group { out[i] = e }
            return out.map { $0! }
        }
        #expect(parallel == serial)
    }

    // MARK: errors

    @Test func missingFileNamesThePath() {
        #expect(throws: TokenizersError.missingFile(path: "/nonexistent/tokenizer.json")) {
            try PreTrainedTokenizer(tokenizerJSON: URL(fileURLWithPath: "/nonexistent/tokenizer.json"))
        }
    }

    @Test func unsupportedComponentNamesFieldAndValue() {
        let json = Self.tinyJSON.replacingOccurrences(
            of: #""pre_tokenizer": {"type": "ByteLevel""#, with: #""pre_tokenizer": {"type": "Metaspace""#)
        do {
            _ = try tiny(json)
            Issue.record("expected an error")
        } catch {
            #expect(
                error == .unsupported(path: "inline.json", field: "pre_tokenizer.type", value: "Metaspace"))
            #expect(error.description.contains("pre_tokenizer.type"))
            #expect(error.description.contains("Metaspace"))
        }
        let model = Self.tinyJSON.replacingOccurrences(of: #""type": "BPE""#, with: #""type": "Unigram""#)
        let unigram = TokenizersError.unsupported(path: "inline.json", field: "model.type", value: "Unigram")
        #expect(throws: unigram) {
            try tiny(model)
        }
    }

    @Test func corruptFileNamesTheField() throws {
        let json = Self.tinyJSON.replacingOccurrences(of: #""ab": 2"#, with: #""ab": "two""#)
        do {
            _ = try tiny(json)
            Issue.record("expected an error")
        } catch {
            guard case .corruptFile(_, let field, _) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(field.hasPrefix("model.vocab"))
        }
        // A merge whose parts are not in the vocabulary.
        let merge = Self.tinyJSON.replacingOccurrences(of: #"["a", "b"]"#, with: #"["a", "z"]"#)
        let missing = TokenizersError.missingToken(path: "inline.json", field: "model.merges.0", token: "z")
        #expect(throws: missing) {
            try tiny(merge)
        }
    }

    @Test func corruptGzipIsReported() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("bad-\(UUID().uuidString).json.gz")
        try Data([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02, 0x03]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect {
            try PreTrainedTokenizer(tokenizerJSON: url)
        } throws: { error in
            guard let e = error as? TokenizersError, case .unreadableFile(let path, _) = e else {
                return false
            }
            return path == url.path
        }
    }

    @Test func canonicallyEquivalentTokensStayDistinct() throws {
        // "é" precomposed (U+00E9) and decomposed (e + U+0301) are different tokens.
        let json = """
            {"added_tokens": [], "pre_tokenizer": {"type": "WhitespaceSplit"},
             "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "\\u00e9": 1, "e\\u0301": 2}}}
            """
        let tok = try tiny(json)
        #expect(tok.encode("\u{e9} e\u{301}").ids == [1, 2])
    }
}
