/// Everything that can go wrong reading a GGUF file. Each case names the file, and the key or tensor
/// concerned, so that the message says what to fix.
public enum GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The first four bytes are not `GGUF`.
    case badMagic(path: String, found: [UInt8])
    /// A GGUF version other than 2 or 3.
    case unsupportedVersion(path: String, version: UInt32)
    /// The file ends before `what` (which starts at byte `offset` and needs `needed` bytes) is complete.
    case truncated(path: String, what: String, offset: Int, needed: Int, fileSize: Int)
    /// A metadata value has a type code that GGUF does not define.
    case unknownValueType(path: String, key: String, code: UInt32)
    /// A metadata key is malformed, duplicated, of the wrong type, or out of range.
    case invalidMetadata(path: String, key: String, reason: String)
    /// A required metadata key is absent.
    case missingMetadata(path: String, key: String)
    /// A tensor's shape is malformed (no dimensions, zero or overflowing sizes, rows not whole blocks).
    case invalidTensorShape(path: String, tensor: String, reason: String)
    /// A tensor's data lies (partly) outside the file, or is not aligned.
    case offsetOutOfRange(path: String, tensor: String, offset: Int, byteCount: Int, fileSize: Int)
    /// A tensor whose ggml type this reader cannot dequantise (or does not know at all).
    case unsupportedTensorType(path: String, tensor: String, type: GGMLType)
    /// Two tensors share a name.
    case duplicateTensor(path: String, tensor: String)
    /// No tensor of that name in the file.
    case tensorNotFound(path: String, tensor: String)
    /// The file's tokenizer metadata describes a tokenizer this reader cannot rebuild.
    case unsupportedTokenizer(path: String, key: String, value: String)

    /// A message naming the file and what is wrong with it.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open GGUF file \(path): \(reason)"
        case .badMagic(let path, let found):
            let hex = found.map { String($0, radix: 16) }.joined(separator: " ")
            return "\(path) is not a GGUF file (magic bytes \(hex), expected 47 47 55 46 `GGUF`)"
        case .unsupportedVersion(let path, let version):
            return "\(path): GGUF version \(version) is not supported (only versions 2 and 3)"
        case .truncated(let path, let what, let offset, let needed, let fileSize):
            return "\(path) is truncated: \(what) needs \(needed) bytes at offset \(offset), "
                + "but the file has \(fileSize) bytes"
        case .unknownValueType(let path, let key, let code):
            return "\(path): metadata `\(key)` has unknown GGUF value type \(code)"
        case .invalidMetadata(let path, let key, let reason):
            return "\(path): metadata `\(key)` is invalid: \(reason)"
        case .missingMetadata(let path, let key):
            return "\(path): required metadata `\(key)` is missing"
        case .invalidTensorShape(let path, let tensor, let reason):
            return "\(path): tensor `\(tensor)` has an invalid shape: \(reason)"
        case .offsetOutOfRange(let path, let tensor, let offset, let byteCount, let fileSize):
            return "\(path): tensor `\(tensor)` data (\(byteCount) bytes at offset \(offset)) lies outside "
                + "the file (\(fileSize) bytes) or is misaligned"
        case .unsupportedTensorType(let path, let tensor, let type):
            return "\(path): tensor `\(tensor)` has ggml type \(type), which this reader cannot dequantise "
                + "(supported: \(GGMLType.dequantisable.map(\.description).joined(separator: ", ")))"
        case .duplicateTensor(let path, let tensor):
            return "\(path): tensor `\(tensor)` appears more than once"
        case .tensorNotFound(let path, let tensor):
            return "\(path): no tensor named `\(tensor)`"
        case .unsupportedTokenizer(let path, let key, let value):
            return "\(path): cannot build a tokenizer from `\(key)` = \(value)"
        }
    }
}
