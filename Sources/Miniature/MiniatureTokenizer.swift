import Foundation
import ShapeWorld
import Torch

/// The miniature's WordLevel tokenizer: every word of a large sample of training captions
/// (lower-cased, split as the `Whitespace` pre-tokenizer splits), `<unk>` for the rest, and CLIP's
/// start/end tokens around each prompt. Written as a Hugging Face `tokenizer.json`.
public enum MiniatureTokenizer {
    public static let specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]

    /// `text` lower-cased and split into runs of word characters and runs of other non-space
    /// characters (the `\w+|[^\w\s]+` of the `Whitespace` pre-tokenizer).
    public static func words(in text: String) -> [String] {
        enum Kind { case word, symbol, space }
        func kind(_ c: Character) -> Kind {
            if c.isWhitespace { return .space }
            return c.isLetter || c.isNumber || c == "_" ? .word : .symbol
        }
        var out: [String] = []
        var current = ""
        var currentKind = Kind.space
        for c in text.lowercased() {
            let k = kind(c)
            if k != currentKind || k == .space {
                if !current.isEmpty { out.append(current) }
                current = ""
            }
            if k != .space { current.append(c) }
            currentKind = k
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Words of `samples` training captions drawn from `seed`, sorted.
    public static func vocabulary(seed: UInt64, samples: Int) -> [String] {
        var rng = SplitMix64(seed: seed)
        let sampler = TrainingPairSampler()
        var seen = Set<String>()
        for _ in 0..<samples { seen.formUnion(words(in: sampler.sample(rng: &rng).caption)) }
        return seen.sorted()
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `folder`.
    public static func write(vocabulary: [String], maxLength: Int, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var vocab: [String: Int] = [:]
        for (i, token) in (specials + vocabulary).enumerated() where vocab[token] == nil { vocab[token] = i }
        func special(_ token: String) -> [String: Any] {
            ["id": vocab[token] ?? 0, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        func specialRef(_ token: String) -> [String: Any] { ["SpecialToken": ["id": token, "type_id": 0]] }
        let (start, end) = (vocab["<|startoftext|>"] ?? 2, vocab["<|endoftext|>"] ?? 3)
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": specials.map(special),
            "normalizer": ["type": "Lowercase"], "pre_tokenizer": ["type": "Whitespace"],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [specialRef("<|startoftext|>"), ["Sequence": ["id": "A", "type_id": 0]],
                           specialRef("<|endoftext|>")],
                "pair": [["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                "special_tokens": [
                    "<|startoftext|>": ["id": "<|startoftext|>", "ids": [start], "tokens": ["<|startoftext|>"]],
                    "<|endoftext|>": ["id": "<|endoftext|>", "ids": [end], "tokens": ["<|endoftext|>"]],
                ],
            ],
            "decoder": NSNull(),
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"],
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                            to: folder + "/tokenizer.json")
        let config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": maxLength,
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
            "unk_token": "<unk>",
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]),
                            to: folder + "/tokenizer_config.json")
    }
}
