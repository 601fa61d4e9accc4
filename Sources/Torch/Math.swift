import CTorch

infix operator .== : ComparisonPrecedence
infix operator .!= : ComparisonPrecedence
infix operator .< : ComparisonPrecedence
infix operator .<= : ComparisonPrecedence
infix operator .> : ComparisonPrecedence
infix operator .>= : ComparisonPrecedence

// MARK: binary (broadcasting)

extension Tensor {
    @usableFromInline func binary(_ op: Int, _ other: Tensor) -> Tensor {
        wrap(ct_binary(Int32(op), handle, other.handle), "binary op \(op)")
    }

    @usableFromInline func binary(_ op: Int, _ scalar: Double, reversed: Bool = false) -> Tensor {
        wrap(ct_binary_scalar(Int32(op), handle, scalar, reversed ? 1 : 0), "binary op \(op)")
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_ADD, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_SUB, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_MUL, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_DIV, b) }
    public static func + (a: Tensor, b: Double) -> Tensor { a.binary(CT_ADD, b) }
    public static func - (a: Tensor, b: Double) -> Tensor { a.binary(CT_SUB, b) }
    public static func * (a: Tensor, b: Double) -> Tensor { a.binary(CT_MUL, b) }
    public static func / (a: Tensor, b: Double) -> Tensor { a.binary(CT_DIV, b) }
    public static func + (a: Double, b: Tensor) -> Tensor { b.binary(CT_ADD, a, reversed: true) }
    public static func - (a: Double, b: Tensor) -> Tensor { b.binary(CT_SUB, a, reversed: true) }
    public static func * (a: Double, b: Tensor) -> Tensor { b.binary(CT_MUL, a, reversed: true) }
    public static func / (a: Double, b: Tensor) -> Tensor { b.binary(CT_DIV, a, reversed: true) }
    public static prefix func - (a: Tensor) -> Tensor { a.unary(CT_NEG) }

    public static func .== (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_EQ, b) }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_NE, b) }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_LT, b) }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_LE, b) }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_GT, b) }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_GE, b) }
    public static func .== (a: Tensor, b: Double) -> Tensor { a.binary(CT_EQ, b) }
    public static func .!= (a: Tensor, b: Double) -> Tensor { a.binary(CT_NE, b) }
    public static func .< (a: Tensor, b: Double) -> Tensor { a.binary(CT_LT, b) }
    public static func .<= (a: Tensor, b: Double) -> Tensor { a.binary(CT_LE, b) }
    public static func .> (a: Tensor, b: Double) -> Tensor { a.binary(CT_GT, b) }
    public static func .>= (a: Tensor, b: Double) -> Tensor { a.binary(CT_GE, b) }

    public func pow(_ exponent: Tensor) -> Tensor { binary(CT_POW, exponent) }
    public func pow(_ exponent: Double) -> Tensor { binary(CT_POW, exponent) }
    public func maximum(_ other: Tensor) -> Tensor { binary(CT_MAXIMUM, other) }
    public func minimum(_ other: Tensor) -> Tensor { binary(CT_MINIMUM, other) }
    public func logicalAnd(_ other: Tensor) -> Tensor { binary(CT_LOGICAL_AND, other) }
    public func logicalOr(_ other: Tensor) -> Tensor { binary(CT_LOGICAL_OR, other) }
    public func remainder(_ other: Double) -> Tensor { binary(CT_REMAINDER, other) }
    public func floorDivide(_ other: Double) -> Tensor { binary(CT_FLOOR_DIVIDE, other) }
    public func atan2(_ other: Tensor) -> Tensor { binary(CT_ATAN2, other) }

    /// Elementwise choice: `a` where `condition` is true, else `b`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        wrap(ct_where(condition.handle, a.handle, b.handle))
    }

    /// Clamps into `[min, max]`; either bound may be omitted.
    public func clamp(min: Double? = nil, max: Double? = nil) -> Tensor {
        wrap(ct_clamp(handle, min == nil ? 0 : 1, min ?? 0, max == nil ? 0 : 1, max ?? 0))
    }
}

// MARK: unary

extension Tensor {
    @usableFromInline func unary(_ op: Int) -> Tensor { wrap(ct_unary(Int32(op), handle), "unary op \(op)") }

    public func exp() -> Tensor { unary(CT_EXP) }
    public func log() -> Tensor { unary(CT_LOG) }
    public func sqrt() -> Tensor { unary(CT_SQRT) }
    public func rsqrt() -> Tensor { unary(CT_RSQRT) }
    public func sigmoid() -> Tensor { unary(CT_SIGMOID) }
    public func tanh() -> Tensor { unary(CT_TANH) }
    public func silu() -> Tensor { unary(CT_SILU) }
    /// GELU; `approximateTanh` selects the tanh approximation (`approximate="tanh"`).
    public func gelu(approximateTanh: Bool = false) -> Tensor { unary(approximateTanh ? CT_GELU_TANH : CT_GELU) }
    public func relu() -> Tensor { unary(CT_RELU) }
    public func abs() -> Tensor { unary(CT_ABS) }
    public func sin() -> Tensor { unary(CT_SIN) }
    public func cos() -> Tensor { unary(CT_COS) }
    public func logicalNot() -> Tensor { unary(CT_LOGICAL_NOT) }
    public func floor() -> Tensor { unary(CT_FLOOR) }
    public func ceil() -> Tensor { unary(CT_CEIL) }
    public func round() -> Tensor { unary(CT_ROUND) }
    public func sign() -> Tensor { unary(CT_SIGN) }
    public func reciprocal() -> Tensor { unary(CT_RECIPROCAL) }
    public func log1p() -> Tensor { unary(CT_LOG1P) }
    public func expm1() -> Tensor { unary(CT_EXPM1) }
    public func isnan() -> Tensor { unary(CT_ISNAN) }
    public func isfinite() -> Tensor { unary(CT_ISFINITE) }
    public func erf() -> Tensor { unary(CT_ERF) }
    public func square() -> Tensor { unary(CT_SQUARE) }
    public func logSigmoid() -> Tensor { unary(CT_LOG_SIGMOID) }
    public func softplus() -> Tensor { unary(CT_SOFTPLUS) }
}

// MARK: reductions

extension Tensor {
    @usableFromInline func reduce(_ op: Int, _ dims: [Int], _ keepDim: Bool) -> Tensor {
        wrap(dims.withInt64s { ct_reduce(Int32(op), handle, $0, Int32(dims.count), keepDim ? 1 : 0) },
             "reduction \(op)")
    }

    /// Sum over `dims` (all dimensions when empty).
    public func sum(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_SUM, dims, keepDim) }
    public func sum(dim: Int, keepDim: Bool = false) -> Tensor { reduce(CT_SUM, [dim], keepDim) }
    public func mean(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_MEAN, dims, keepDim) }
    public func mean(dim: Int, keepDim: Bool = false) -> Tensor { reduce(CT_MEAN, [dim], keepDim) }
    /// Maximum values over `dims` (all when empty).
    public func max(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_AMAX, dims, keepDim) }
    public func max(dim: Int, keepDim: Bool = false) -> Tensor { reduce(CT_AMAX, [dim], keepDim) }
    public func min(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_AMIN, dims, keepDim) }
    public func min(dim: Int, keepDim: Bool = false) -> Tensor { reduce(CT_AMIN, [dim], keepDim) }
    public func logsumexp(dims: [Int] = [], keepDim: Bool = false) -> Tensor {
        reduce(CT_LOGSUMEXP, dims, keepDim)
    }
    public func logsumexp(dim: Int, keepDim: Bool = false) -> Tensor { reduce(CT_LOGSUMEXP, [dim], keepDim) }
    public func prod(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_PROD, dims, keepDim) }
    public func all(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_ALL, dims, keepDim) }
    public func any(dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_ANY, dims, keepDim) }

    /// Variance with Bessel's correction by default (`correction: 1`, as PyTorch).
    public func variance(dims: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
        wrap(dims.withInt64s { ct_var(handle, $0, Int32(dims.count), correction, keepDim ? 1 : 0, 0) })
    }

    /// Standard deviation with Bessel's correction by default (`correction: 1`, as PyTorch).
    public func std(dims: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
        wrap(dims.withInt64s { ct_var(handle, $0, Int32(dims.count), correction, keepDim ? 1 : 0, 1) })
    }

    public func argmax(dim: Int, keepDim: Bool = false) -> Tensor {
        wrap(ct_argmax(handle, Int64(dim), keepDim ? 1 : 0))
    }

    public func argmin(dim: Int, keepDim: Bool = false) -> Tensor {
        wrap(ct_argmin(handle, Int64(dim), keepDim ? 1 : 0))
    }

    /// Maximum values and their indices along `dim`.
    public func maxWithIndices(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
        var v: ct_tensor?
        var i: ct_tensor?
        check(ct_max_dim(handle, Int64(dim), keepDim ? 1 : 0, &v, &i), "max")
        return (Tensor(handle: v!), Tensor(handle: i!))
    }

    public func cumsum(dim: Int) -> Tensor { wrap(ct_cumsum(handle, Int64(dim))) }

    /// The `k` largest (or smallest) values along `dim` and their indices.
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true)
        -> (values: Tensor, indices: Tensor)
    {
        var v: ct_tensor?
        var i: ct_tensor?
        check(ct_topk(handle, Int64(k), Int64(dim), largest ? 1 : 0, sorted ? 1 : 0, &v, &i), "topk")
        return (Tensor(handle: v!), Tensor(handle: i!))
    }

    /// Stable sort along `dim`.
    public func sort(dim: Int = -1, descending: Bool = false) -> (values: Tensor, indices: Tensor) {
        var v: ct_tensor?
        var i: ct_tensor?
        check(ct_sort(handle, Int64(dim), descending ? 1 : 0, &v, &i), "sort")
        return (Tensor(handle: v!), Tensor(handle: i!))
    }
}
