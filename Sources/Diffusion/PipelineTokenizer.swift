import Foundation
import TorchNN
import Tokenizers

/// The pipeline's tokenizer adapter: pads and truncates to the text encoder's length, as the SD
/// pipelines call their tokenizers (`padding="max_length", truncation=True`).
public struct PipelineTokenizer: PromptTokenizer {
    public let base: any Tokenizer
    public let maxLength: Int
    /// Padding id: `pad_token` of `tokenizer_config.json` when given, else the tokenizer's own.
    public let padId: Int

    public init(base: any Tokenizer, maxLength: Int, padId: Int? = nil) {
        self.base = base
        self.maxLength = maxLength
        self.padId = padId ?? base.padTokenId ?? base.eosTokenId ?? 0
    }

    public func tokenize(_ text: String) -> (ids: [Int], truncated: Bool) {
        var options = base.defaultOptions
        options.maxLength = maxLength
        options.padToMaxLength = true
        options.padLength = nil
        options.padId = padId
        let encoding = base.encode(text, options: options)
        return (encoding.ids, encoding.wasTruncated)
    }

    /// Loads `tokenizer/`: CLIP's BPE (`vocab.json` + `merges.txt`, or a CLIP `tokenizer.json`),
    /// else any `tokenizer.json` (e.g. the WordLevel tokenizer of the embedded model).
    public static func load(folder: String, maxLength: Int) throws -> PipelineTokenizer {
        let url = URL(fileURLWithPath: folder)
        let fm = FileManager.default
        guard fm.fileExists(atPath: folder) else { throw ModelError.missingFile("tokenizer folder \(folder)") }
        let isCLIP = fm.fileExists(atPath: url.appendingPathComponent("merges.txt").path)
            || (try? String(contentsOf: url.appendingPathComponent("tokenizer_config.json"), encoding: .utf8))?
                .contains("CLIPTokenizer") == true
        let tokenizer: any Tokenizer = isCLIP
            ? try CLIPTokenizer(directory: url)
            : try PreTrainedTokenizer(tokenizerJSON: url.appendingPathComponent("tokenizer.json"))
        return PipelineTokenizer(base: tokenizer, maxLength: maxLength,
                                 padId: configuredToken("pad_token", in: url).flatMap(tokenizer.tokenToId))
    }

    /// A special token named in `tokenizer_config.json` (a string or an AddedToken object).
    static func configuredToken(_ key: String, in folder: URL) -> String? {
        let path = folder.appendingPathComponent("tokenizer_config.json")
        guard let data = try? Data(contentsOf: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        if let s = object[key] as? String { return s }
        return (object[key] as? [String: Any])?["content"] as? String
    }
}

