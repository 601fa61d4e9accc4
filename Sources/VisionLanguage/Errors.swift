/// Errors from the vision-language policy that are not about model files (those are `ModelError`):
/// prompts, token ids, images and generation settings out of range.
public enum VisionLanguageError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        }
    }
}
