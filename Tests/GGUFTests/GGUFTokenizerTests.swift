import Foundation
import Testing

@testable import GGUF

/// Pieces of the tokenizer rebuild that need no SmolLM2 file (its parity test is in SmolLM2Tests).
@Suite struct GGUFTokenizerTests {
    /// GPT-2's `bytes_to_unicode`: 256 distinct scalars, printable Latin-1 kept, space → Ġ, newline → Ċ.
    @Test func byteLevelAlphabet() {
        let map = ByteLevelAlphabet.byteToScalar
        #expect(map.count == 256 && Set(map).count == 256)
        #expect(map[Int(UInt8(ascii: "a"))] == "a")
        #expect(map[0x20] == "\u{120}")
        #expect(map[0x0A] == "\u{10A}")
        #expect(map[0xAD] == "\u{143}")
        #expect(map[0xFF] == "\u{FF}")
    }

    @Test func jsonStringEscapingRoundTrips() throws {
        let tricky = "quote \" backslash \\ nl \n tab \t cr \r nul \u{0} bell \u{7} ✓ 😀 \u{7F}"
        var w = JSONWriter()
        w.raw("[")
        w.string(tricky)
        w.raw("]")
        let decoded = try JSONSerialization.jsonObject(with: w.data) as? [String]
        #expect(decoded == [tricky])
    }

    @Test func fileWithoutTokenizerIsAnError() throws {
        let file = try GGUFFile(url: Fixtures.tiny)
        #expect(throws: GGUFError.missingMetadata(path: file.path, key: "tokenizer.ggml.model")) {
            try GGUFTokenizer(file)
        }
    }

    @Test func unknownPreTokenizerIsAnError() {
        #expect(
            throws: GGUFError.unsupportedTokenizer(path: "x.gguf", key: "tokenizer.ggml.pre", value: "nova")
        ) {
            try GGUFTokenizer.preTokenizerJSON("nova", path: "x.gguf")
        }
        #expect(throws: Never.self) { try GGUFTokenizer.preTokenizerJSON("qwen2", path: "x.gguf") }
    }
}
