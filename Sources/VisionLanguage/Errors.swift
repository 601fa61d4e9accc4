/// Errors from the vision-language policy: configs, checkpoints, prompts and generation settings.
public enum VisionLanguageError: Error, CustomStringConvertible {
    case missingFile(String)
    case badConfig(file: String, message: String)
    case unsupported(file: String, field: String, value: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .missingFile(let path): return "missing file: \(path)"
        case .badConfig(let file, let message): return "\(file): \(message)"
        case .unsupported(let file, let field, let value):
            return "\(file): `\(field)` = \(value) is not supported by PromptLoop"
        case .invalidArgument(let message): return message
        }
    }
}
