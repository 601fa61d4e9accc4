/// Errors from loading parameters and building modules.
public enum NNError: Error, CustomStringConvertible, Equatable {
    /// Strict loading found problems; the message names the first ones and the file.
    case loadFailed(LoadReport)
    case invalidConfig(String)
    case invalidState(String)

    public var description: String {
        switch self {
        case .loadFailed(let report): return report.summary
        case .invalidConfig(let message): return "invalid configuration: \(message)"
        case .invalidState(let message): return "invalid state: \(message)"
        }
    }
}

/// What a load found: keys the model wanted but the file lacks, keys in the file the model does
/// not have, and keys whose shapes differ.
public struct LoadReport: Equatable, Sendable {
    public struct Mismatch: Equatable, Sendable {
        public var key: String
        public var expected: [Int]
        public var found: [Int]
        public var file: String
    }

    public var missing: [(key: String, file: String)] = []
    public var unused: [(key: String, file: String)] = []
    public var mismatched: [Mismatch] = []
    public var loaded: Int = 0

    public var isClean: Bool { missing.isEmpty && unused.isEmpty && mismatched.isEmpty }

    public static func == (a: LoadReport, b: LoadReport) -> Bool {
        a.missing.map(\.key) == b.missing.map(\.key) && a.unused.map(\.key) == b.unused.map(\.key)
            && a.mismatched == b.mismatched && a.loaded == b.loaded
    }

    /// One paragraph a user can act on, naming keys and files.
    public var summary: String {
        var lines: [String] = []
        func more(_ n: Int) -> String { n > 1 ? " (and \(n - 1) more)" : "" }
        if let first = missing.first {
            lines.append("missing weight `\(first.key)` in \(first.file)\(more(missing.count))")
        }
        if let first = mismatched.first {
            lines.append("weight `\(first.key)` in \(first.file) has shape \(first.found) but the model "
                + "expects \(first.expected)\(more(mismatched.count))")
        }
        if let first = unused.first {
            lines.append("unused weight `\(first.key)` in \(first.file) (the model has no such parameter)"
                + more(unused.count))
        }
        return lines.isEmpty ? "all \(loaded) weights loaded" : lines.joined(separator: "; ")
    }
}

/// Errors from model folders and their configs: a missing file, a config that does not decode or
/// holds a value out of range, a setting PromptLoop does not implement. Every message names the file.
public enum ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingFile(String)
    case badConfig(file: String, message: String)
    case unsupported(file: String, field: String, value: String)

    /// The same error naming `path` where it named only the file's name (`scheduler_config.json`).
    public func located(at path: String) -> ModelError {
        switch self {
        case .badConfig(let file, let message) where path.hasSuffix(file): return .badConfig(file: path, message: message)
        case .unsupported(let file, let field, let value) where path.hasSuffix(file):
            return .unsupported(file: path, field: field, value: value)
        default: return self
        }
    }

    public var description: String {
        switch self {
        case .missingFile(let path): return "missing file: \(path)"
        case .badConfig(let file, let message): return "\(file): \(message)"
        case .unsupported(let file, let field, let value):
            return "\(file): `\(field)` = \(value) is not supported by PromptLoop"
        }
    }
}
