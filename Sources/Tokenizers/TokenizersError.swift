import Foundation

/// Errors raised while loading a tokenizer. Encoding and decoding never fail once a tokenizer is
/// loaded.
public enum TokenizersError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A required file does not exist.
    case missingFile(path: String)
    /// A file exists but could not be read or decompressed.
    case unreadableFile(path: String, reason: String)
    /// A file is not valid JSON or does not have the expected structure.
    case corruptFile(path: String, field: String, reason: String)
    /// The file asks for a component or an option this implementation does not support.
    case unsupported(path: String, field: String, value: String)
    /// A token that the configuration refers to is not in the vocabulary.
    case missingToken(path: String, field: String, token: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "missing tokenizer file \(path)"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .corruptFile(let path, let field, let reason):
            return "corrupt tokenizer file \(path): field `\(field)`: \(reason)"
        case .unsupported(let path, let field, let value):
            return "unsupported tokenizer configuration in \(path): `\(field)` = \(value)"
        case .missingToken(let path, let field, let token):
            return "token `\(token)` named by `\(field)` in \(path) is not in the vocabulary"
        }
    }
}
