// Mirrors the post-processors of Hugging Face `tokenizers` 0.23 (`tokenizers/src/processors`), for
// single sequences.

/// Adds special tokens around an encoded sequence.
struct PostProcessor: Sendable {
    /// Ids placed before and after the sequence.
    var prefix: [Int] = []
    var suffix: [Int] = []

    var addedCount: Int { prefix.count + suffix.count }

    init() {}

    init(
        _ config: PostProcessorConfig, path: String, field: String = "post_processor"
    ) throws(TokenizersError) {
        switch config.type {
        case "ByteLevel":
            break
        case "RobertaProcessing", "BertProcessing":
            guard let cls = config.cls, let sep = config.sep else {
                throw .corruptFile(path: path, field: field + ".cls", reason: "missing cls or sep")
            }
            prefix = [cls.id]
            suffix = [sep.id]
        case "TemplateProcessing":
            guard let single = config.single else {
                throw .corruptFile(path: path, field: field + ".single", reason: "missing")
            }
            var seenSequence = false
            for (i, piece) in single.enumerated() {
                switch piece {
                case .sequence(let name):
                    guard !seenSequence else {
                        throw .unsupported(
                            path: path, field: "\(field).single.\(i)", value: "second $\(name)")
                    }
                    seenSequence = true
                case .specialToken(let name):
                    guard let token = config.specialTokens?[name] else {
                        throw .corruptFile(
                            path: path, field: "\(field).special_tokens",
                            reason: "no entry for `\(name)` used by `single`")
                    }
                    if seenSequence { suffix += token.ids } else { prefix += token.ids }
                }
            }
        case "Sequence":
            for (i, p) in (config.processors ?? []).enumerated() {
                let inner = try PostProcessor(p, path: path, field: "\(field).processors.\(i)")
                prefix = inner.prefix + prefix
                suffix += inner.suffix
            }
        default:
            throw .unsupported(path: path, field: field + ".type", value: config.type)
        }
    }
}
