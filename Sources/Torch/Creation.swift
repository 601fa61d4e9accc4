import CTorch

extension Tensor {
    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32,
                            device: Device = .cpu) -> Tensor {
        wrap(shape.withInt64s { ct_full($0, Int32(shape.count), value, dtype.rawValue, device.code, device.index) })
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        full(shape, 0, dtype: dtype, device: device)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        full(shape, 1, dtype: dtype, device: device)
    }

    /// Zeros with this tensor's shape, dtype and device.
    public func zerosLike() -> Tensor { Tensor.zeros(shape, dtype: dtype, device: device) }
    public func onesLike() -> Tensor { Tensor.ones(shape, dtype: dtype, device: device) }
    public func fullLike(_ value: Double) -> Tensor { Tensor.full(shape, value, dtype: dtype, device: device) }

    /// Values `start, start + step, ...` below `end` (as `torch.arange`).
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .int64,
                              device: Device = .cpu) -> Tensor {
        wrap(ct_arange(start, end, step, dtype.rawValue, device.code, device.index))
    }

    /// `count` evenly spaced values from `start` to `end` inclusive (as `torch.linspace`).
    public static func linspace(_ start: Double, _ end: Double, count: Int, dtype: DType = .float32,
                                device: Device = .cpu) -> Tensor {
        wrap(ct_linspace(start, end, Int64(count), dtype.rawValue, device.code, device.index))
    }
}

/// Measurement helpers for `promptloop bench`.
public enum TorchBenchmark {
    /// Nanoseconds per `a + b` when the loop runs inside the C++ shim: libtorch's own cost per call,
    /// the floor under any language binding.
    public static func nativeAddNanoseconds(_ a: Tensor, _ b: Tensor, calls: Int) -> Double {
        let ns = ct_bench_binary_loop(Int32(CT_ADD), a.handle, b.handle, Int64(calls))
        if ns < 0 { torchFailure("bench add") }
        return Double(ns) / Double(calls)
    }
}
