import CTorch

/// Where a tensor lives.
public enum Device: Equatable, Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    /// Number of CUDA devices this process can use (0 on a CPU-only machine or build).
    public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }

    /// Parses `cpu`, `cuda` or `cuda:N`.
    public init(parsing text: String) throws {
        let lower = text.lowercased()
        if lower == "cpu" {
            self = .cpu
        } else if lower == "cuda" {
            self = .cuda(0)
        } else if lower.hasPrefix("cuda:"), let index = Int(lower.dropFirst(5)), index >= 0 {
            self = .cuda(index)
        } else {
            throw TorchError.invalidArgument("unknown device `\(text)`: use cpu, cuda or cuda:N")
        }
    }

    /// Throws ``TorchError/deviceUnavailable(_:)`` when the device cannot be used here.
    ///
    /// Call this where a user picks a device (a `--device` option), before any tensor is made on it.
    public func validate() throws {
        guard case .cuda(let index) = self else { return }
        let count = Device.cudaDeviceCount
        if count == 0 {
            throw TorchError.deviceUnavailable(
                "CUDA was requested but no CUDA device is available on this machine "
                    + "(or this binary was built without PROMPTLOOP_CUDA=1)")
        }
        if index >= count {
            throw TorchError.deviceUnavailable(
                "CUDA device \(index) was requested but only \(count) device(s) exist")
        }
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let index): return "cuda:\(index)"
        }
    }

    var code: Int32 {
        switch self {
        case .cpu: return Int32(CT_CPU)
        case .cuda: return Int32(CT_CUDA)
        }
    }

    var index: Int32 {
        switch self {
        case .cpu: return 0
        case .cuda(let index): return Int32(index)
        }
    }
}

/// libtorch's intra-op thread pool size.
public enum Threads {
    public static var count: Int {
        get { Int(ct_get_num_threads()) }
        set { ct_set_num_threads(Int32(newValue)) }
    }
}
