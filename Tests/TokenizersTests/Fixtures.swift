import Foundation
import Testing

@testable import Tokenizers

/// Fixtures written by `scripts/fixtures/tokenizers_fixtures.py` (tokenizers 0.23.3,
/// transformers 5.24.0, open-clip-torch 3.3.0):
///
///     .venv/bin/python scripts/fixtures/tokenizers_fixtures.py
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static let corpus: [String] = {
        let data = try! Data(contentsOf: url("corpus.json"))
        return try! JSONDecoder().decode([String].self, from: data)
    }()

    /// One reference encoding.
    struct Case: Decodable {
        var ids: [Int]
        var mask: [Int]
        var fullLength: Int
        var noSpecial: [Int]
        var decode: String
        var decodeSpecial: String?

        enum CodingKeys: String, CodingKey {
            case ids
            case mask
            case fullLength = "full_length"
            case noSpecial = "no_special"
            case decode
            case decodeSpecial = "decode_special"
        }
    }

    struct Reference: Decodable {
        var maxLength: Int?
        var padToken: String?
        var padId: Int?
        var paddingSide: String?
        var cases: [Case]

        enum CodingKeys: String, CodingKey {
            case maxLength = "max_length"
            case padToken = "pad_token"
            case padId = "pad_id"
            case paddingSide = "padding_side"
            case cases
        }
    }

    static func reference(_ name: String) -> Reference {
        let data = try! Data(contentsOf: url("reference_\(name).json"))
        return try! JSONDecoder().decode(Reference.self, from: data)
    }

    static let clipReferences: [String: Reference] = {
        let data = try! Data(contentsOf: url("reference_clip.json"))
        return try! JSONDecoder().decode([String: Reference].self, from: data)
    }()

    /// CLIP from `vocab.json.gz` + `merges.txt.gz`, padding with `<|endoftext|>` (SD1.x).
    static let clipEOS: CLIPTokenizer = try! CLIPTokenizer(
        vocab: url("clip/vocab.json.gz"), merges: url("clip/merges.txt.gz"))

    /// The same vocabulary padding with `!` (SD2.x, SDXL's second tokenizer).
    static let clipBang: CLIPTokenizer = try! CLIPTokenizer(
        vocab: url("clip/vocab.json.gz"), merges: url("clip/merges.txt.gz"),
        config: CLIPTokenizerConfig(padToken: "!"))

    /// CLIP from the `tokenizer.json` that transformers saved.
    static let clipJSON: CLIPTokenizer = try! CLIPTokenizer(tokenizerJSON: url("clip/tokenizer.json.gz"))
}
