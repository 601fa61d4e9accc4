import CTorch

/// An n-dimensional array backed by a libtorch tensor.
///
/// `Tensor` owns one reference to a libtorch tensor and releases it in `deinit`. Operations return
/// new tensors (views share storage, as in PyTorch). Math does not throw: a shape or dtype error
/// inside an op is a programming error and traps with libtorch's message.
///
/// ```swift
/// let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
/// let y = (x * 2 + 1).softmax(dim: -1)
/// print(y.toArray(Float.self))
/// ```
public final class Tensor: @unchecked Sendable {
    @usableFromInline let handle: ct_tensor

    @usableFromInline init(handle: ct_tensor) { self.handle = handle }

    deinit { ct_free(handle) }

    // MARK: properties

    /// Number of dimensions.
    public var rank: Int { Int(ct_dim(handle)) }

    /// Size of every dimension.
    public var shape: [Int] {
        let n = rank
        if n == 0 { return [] }
        var out = [Int64](repeating: 0, count: n)
        _ = ct_sizes(handle, &out)
        return out.map { Int($0) }
    }

    /// Size of one dimension; negative indices count from the end.
    public func size(_ dim: Int) -> Int {
        let s = shape
        return s[dim < 0 ? dim + s.count : dim]
    }

    /// Number of elements.
    public var count: Int { Int(ct_numel(handle)) }

    /// Bytes of the elements (`count × dtype.elementSize`).
    public var byteCount: Int { count * dtype.elementSize }

    public var dtype: DType {
        guard let d = DType(rawValue: ct_dtype(handle)) else {
            fatalError("tensor has a dtype PromptLoop does not support")
        }
        return d
    }

    public var device: Device {
        ct_device_type(handle) == Int32(CT_CUDA) ? .cuda(Int(ct_device_index(handle))) : .cpu
    }

    public var isContiguous: Bool { ct_is_contiguous(handle) != 0 }

    // MARK: Swift arrays in and out

    /// A tensor holding a copy of `values`, shaped `shape` (default: one dimension).
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil, device: Device = .cpu) {
        let shape = shape ?? [values.count]
        precondition(shape.reduce(1, *) == values.count,
                     "Tensor: \(values.count) values do not fill shape \(shape)")
        let handle = values.withUnsafeBytes { bytes in
            shape.withInt64s { ct_from_data(bytes.baseAddress, $0, Int32(shape.count), T.dtype.rawValue) }
        }
        let cpu = wrap(handle, "from array")
        self.init(handle: device == .cpu ? cpu.retainedHandle() : cpu.to(device).retainedHandle())
    }

    /// A zero-dimensional tensor holding `value`.
    public convenience init<T: TensorElement>(scalar value: T, device: Device = .cpu) {
        self.init([value], shape: [], device: device)
    }

    /// A tensor built from raw little-endian bytes of the given dtype (copied).
    public convenience init(bytes: UnsafeRawBufferPointer, dtype: DType, shape: [Int]) {
        precondition(shape.reduce(1, *) * dtype.elementSize == bytes.count,
                     "Tensor(bytes:): \(bytes.count) bytes do not fill \(shape) of \(dtype)")
        let handle = shape.withInt64s { ct_from_data(bytes.baseAddress, $0, Int32(shape.count), dtype.rawValue) }
        self.init(handle: wrap(handle, "from bytes").retainedHandle())
    }

    /// A new handle to the same tensor, owned by the caller.
    @usableFromInline func retainedHandle() -> ct_tensor {
        guard let h = ct_shallow_copy(handle) else { torchFailure("shallow copy") }
        return h
    }

    /// The elements in row-major order, converted to `T` (device and layout are handled).
    public func toArray<T: TensorElement>(_ type: T.Type = T.self) -> [T] {
        let source = dtype == T.dtype ? self : to(T.dtype)
        let n = source.count
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            check(ct_copy_data(source.handle, buffer.baseAddress, n * MemoryLayout<T>.stride), "toArray")
            initialized = n
        }
    }

    /// The raw bytes of the elements in row-major order.
    public func bytes() -> [UInt8] {
        let n = count * dtype.elementSize
        return [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
            check(ct_copy_data(handle, buffer.baseAddress, n), "bytes")
            initialized = n
        }
    }

    /// The value of a one-element tensor.
    public func item() -> Double {
        var v = 0.0
        check(ct_item(handle, &v), "item")
        return v
    }

    public func item<T: TensorElement>(_ type: T.Type) -> T {
        precondition(count == 1, "item(): tensor has \(count) elements")
        return toArray(T.self)[0]
    }

    // MARK: conversion

    public func to(_ dtype: DType) -> Tensor {
        wrap(ct_to_dtype(handle, dtype.rawValue))
    }

    public func to(_ device: Device) -> Tensor {
        wrap(ct_to_device(handle, device.code, device.index))
    }

    public func to(_ device: Device, _ dtype: DType) -> Tensor { to(device).to(dtype) }

    /// A copy with its own storage.
    public func clone() -> Tensor { wrap(ct_clone(handle)) }

    /// True when both tensors have the same shape and exactly equal elements.
    public func equal(_ other: Tensor) -> Bool {
        let r = ct_equal(handle, other.handle)
        if r < 0 { torchFailure("equal") }
        return r == 1
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let n = count
        var text = "Tensor(shape: \(shape), dtype: \(dtype), device: \(device)"
        if n <= 16, dtype != .bool {
            text += ", values: \(to(.float64).toArray(Double.self))"
        }
        return text + ")"
    }
}

extension Array where Element == Int {
    /// Calls `body` with the elements as a C `int64_t` array (no copy: `Int` is 64-bit).
    @inlinable
    func withInt64s<R>(_ body: (UnsafePointer<Int64>?) throws -> R) rethrows -> R {
        try withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: Int64.self) { try body($0.baseAddress) }
        }
    }
}
