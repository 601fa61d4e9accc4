import CTorch

/// Errors from the `Torch` target: files, user input and device requests.
///
/// Shape or dtype errors inside tensor math are programming errors and trap with libtorch's
/// message instead (see ``Tensor``).
public enum TorchError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case io(path: String, message: String)
    case truncated(path: String, message: String)
    case badHeader(path: String, message: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case offsetsOutOfRange(path: String, tensor: String, message: String)
    case overlappingTensors(path: String, first: String, second: String)
    case sizeMismatch(path: String, tensor: String, message: String)
    case missingTensor(path: String, tensor: String)
    case deviceUnavailable(String)
    case invalidArgument(String)
    case libtorch(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "file not found: \(path)"
        case .io(let path, let message): return "\(path): \(message)"
        case .truncated(let path, let message): return "\(path): truncated file: \(message)"
        case .badHeader(let path, let message): return "\(path): bad safetensors header: \(message)"
        case .unknownDType(let path, let tensor, let dtype):
            return "\(path): tensor `\(tensor)` has unsupported dtype \(dtype)"
        case .offsetsOutOfRange(let path, let tensor, let message):
            return "\(path): tensor `\(tensor)` data offsets out of range: \(message)"
        case .overlappingTensors(let path, let first, let second):
            return "\(path): tensors `\(first)` and `\(second)` overlap"
        case .sizeMismatch(let path, let tensor, let message):
            return "\(path): tensor `\(tensor)`: \(message)"
        case .missingTensor(let path, let tensor): return "\(path): no tensor named `\(tensor)`"
        case .deviceUnavailable(let message): return message
        case .invalidArgument(let message): return message
        case .libtorch(let message): return "libtorch: \(message)"
        }
    }
}

/// The text of the last libtorch exception on this thread.
@usableFromInline
func lastTorchError() -> String { String(cString: ct_last_error()) }

/// Traps with libtorch's message: the failure of an op is a programming error (bad shape, dtype).
@usableFromInline
func torchFailure(_ op: @autoclosure () -> String) -> Never {
    fatalError("libtorch \(op()): \(lastTorchError())")
}

/// Wraps a handle returned by the shim, trapping with the libtorch message on NULL.
@inlinable
func wrap(_ handle: ct_tensor?, _ op: @autoclosure () -> String = #function) -> Tensor {
    guard let handle else { torchFailure(op()) }
    return Tensor(handle: handle)
}

@inlinable
func check(_ status: Int32, _ op: @autoclosure () -> String = #function) {
    if status != 0 { torchFailure(op()) }
}
