/// Every error the ShapeWorld target throws. Each message names the thing at fault (a file, a word,
/// a prompt) so that a user can act on it.
public enum ShapeWorldError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A file could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file could not be written.
    case unwritableFile(path: String, reason: String)
    /// A prompt names no shape at all, so nothing can be scored or rendered.
    case unparseablePrompt(prompt: String, unknownWords: [String])
    /// A prompt contains words the parser does not know (raised only in strict parsing).
    case unknownWords(prompt: String, words: [String])
    /// No placement satisfies the scene specification within the attempt budget.
    case cannotPlace(description: String)
    /// An argument is out of its valid range.
    case invalidArgument(name: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "cannot read '\(path)': \(reason)"
        case .unwritableFile(let path, let reason):
            return "cannot write '\(path)': \(reason)"
        case .unparseablePrompt(let prompt, let words):
            let extra = words.isEmpty ? "" : " (unknown words: \(words.joined(separator: ", ")))"
            return "prompt '\(prompt)' names no shape (circle, square, triangle, diamond)\(extra)"
        case .unknownWords(let prompt, let words):
            return "prompt '\(prompt)' has unknown words: \(words.joined(separator: ", "))"
        case .cannotPlace(let description):
            return "cannot place the objects of '\(description)' on a 64×64 canvas without overlap"
        case .invalidArgument(let name, let reason):
            return "invalid \(name): \(reason)"
        }
    }
}
