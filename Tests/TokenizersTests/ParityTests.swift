import Foundation
import Testing

@testable import Tokenizers

/// Identical ids, attention masks, truncation counts and decodes to Hugging Face on the fixture
/// corpus. Expected values come from `scripts/fixtures/tokenizers_fixtures.py`, e.g. for CLIP:
///
///     tok = CLIPTokenizer(vocab="vocab.json", merges="merges.txt", pad_token=…, model_max_length=77)
///     tok(corpus, padding="max_length", max_length=77, truncation=True)
@Suite struct ParityTests {
    /// Compares one tokenizer against a reference over the whole corpus; returns mismatches.
    func check(
        _ tokenizer: any Tokenizer, _ reference: Fixtures.Reference, options: EncodingOptions
    ) {
        let corpus = Fixtures.corpus
        #expect(corpus.count >= 300)
        #expect(reference.cases.count == corpus.count)
        var failures = 0
        for (text, expected) in zip(corpus, reference.cases) {
            let e = tokenizer.encode(text, options: options)
            let unlimited = EncodingOptions()
            let full = tokenizer.encode(text, options: unlimited)
            let bare = tokenizer.encode(text, options: EncodingOptions(addSpecialTokens: false))
            let maxLength = options.maxLength ?? Int.max
            let ok =
                e.ids == expected.ids && e.attentionMask == expected.mask
                && full.ids.count == expected.fullLength && bare.ids == expected.noSpecial
                && e.truncatedTokenCount == max(0, expected.fullLength - maxLength)
                && tokenizer.decode(full.ids, skipSpecialTokens: true) == expected.decode
                && (expected.decodeSpecial == nil
                    || tokenizer.decode(full.ids, skipSpecialTokens: false) == expected.decodeSpecial)
            if !ok {
                failures += 1
                if failures <= 5 {
                    Issue.record(
                        """
                        mismatch for \(String(reflecting: text))
                          got      \(bare.ids) → \(e.ids) mask \(e.attentionMask) \
                        cut \(e.truncatedTokenCount)
                          expected \(expected.noSpecial) → \(expected.ids) mask \(expected.mask) \
                        full \(expected.fullLength)
                          decode   \(String(reflecting: tokenizer.decode(full.ids, skipSpecialTokens: true)))
                          expected \(String(reflecting: expected.decode))
                        """)
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(corpus.count) strings differ")
    }

    func clipOptions(_ reference: Fixtures.Reference) -> EncodingOptions {
        EncodingOptions(maxLength: reference.maxLength, padToMaxLength: true, padId: reference.padId ?? 0)
    }

    @Test func clipFromVocabAndMergesPaddingWithEOS() {
        let ref = Fixtures.clipReferences["eos"]!
        #expect(ref.padId == 49407)
        check(Fixtures.clipEOS, ref, options: clipOptions(ref))
        // The default options are the same: pad and cut to 77 with the configured pad token.
        #expect(Fixtures.clipEOS.defaultOptions == clipOptions(ref))
    }

    @Test func clipFromVocabAndMergesPaddingWithBang() {
        let ref = Fixtures.clipReferences["bang"]!
        #expect(ref.padId == 0)
        check(Fixtures.clipBang, ref, options: clipOptions(ref))
        #expect(Fixtures.clipBang.defaultOptions == clipOptions(ref))
    }

    @Test func clipFromTokenizerJSON() {
        let ref = Fixtures.clipReferences["eos"]!
        check(Fixtures.clipJSON, ref, options: clipOptions(ref))
    }

    @Test(arguments: ["gpt2", "smol", "qwen2", "llama3", "wordlevel", "wordlevel_split", "bpe_unk"])
    func tokenizerJSON(name: String) throws {
        let tokenizer = try PreTrainedTokenizer(tokenizerJSON: Fixtures.url("\(name)/tokenizer.json"))
        check(tokenizer, Fixtures.reference(name), options: tokenizer.defaultOptions)
    }
}
