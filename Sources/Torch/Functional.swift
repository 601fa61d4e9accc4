import CTorch

/// Interpolation modes for ``Tensor/interpolate(size:mode:alignCorners:)``.
public enum InterpolationMode: Int32, Sendable {
    case nearest = 0, bilinear = 1, bicubic = 2
    /// Anti-aliased variants (`F.interpolate(..., antialias=True)`), close to PIL's filters when
    /// shrinking.
    case bilinearAntialiased = 3, bicubicAntialiased = 4
}

extension Tensor {
    public func matmul(_ other: Tensor) -> Tensor { wrap(ct_matmul(handle, other.handle)) }
    /// Batched matrix product of `[B, n, m]` and `[B, m, p]`.
    public func bmm(_ other: Tensor) -> Tensor { wrap(ct_bmm(handle, other.handle)) }

    /// `x · weightᵀ + bias`, as `torch.nn.functional.linear`.
    public func linear(_ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
        wrap(ct_linear(handle, weight.handle, bias?.handle))
    }

    /// 2-D convolution of `[N, C, H, W]` input with `[O, C/groups, kH, kW]` weights.
    public func conv2d(_ weight: Tensor, _ bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                       padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
        let s = [Int64(stride.0), Int64(stride.1)]
        let p = [Int64(padding.0), Int64(padding.1)]
        let d = [Int64(dilation.0), Int64(dilation.1)]
        return wrap(ct_conv2d(handle, weight.handle, bias?.handle, s, p, d, Int64(groups)))
    }

    /// Resizes `[N, C, H, W]` to `size` (height, width).
    public func interpolate(size: (Int, Int), mode: InterpolationMode = .nearest, alignCorners: Bool = false)
        -> Tensor
    {
        wrap(ct_interpolate(handle, Int64(size.0), Int64(size.1), mode.rawValue, alignCorners ? 1 : 0))
    }

    /// Resizes `[N, C, H, W]` by an integer-valued factor (as `F.interpolate(scale_factor=)`).
    public func interpolate(scale: Double, mode: InterpolationMode = .nearest, alignCorners: Bool = false)
        -> Tensor
    {
        let s = shape
        let h = Int((Double(s[2]) * scale).rounded(.down))
        let w = Int((Double(s[3]) * scale).rounded(.down))
        return interpolate(size: (h, w), mode: mode, alignCorners: alignCorners)
    }

    public func groupNorm(groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5) -> Tensor {
        wrap(ct_group_norm(handle, Int64(groups), weight?.handle, bias?.handle, eps))
    }

    /// Layer norm over the trailing `normalizedShape` dimensions.
    public func layerNorm(_ normalizedShape: [Int], weight: Tensor? = nil, bias: Tensor? = nil,
                          eps: Double = 1e-5) -> Tensor {
        wrap(normalizedShape.withInt64s {
            ct_layer_norm(handle, $0, Int32(normalizedShape.count), weight?.handle, bias?.handle, eps)
        })
    }

    /// RMS norm over the trailing `normalizedShape` dimensions: `x / sqrt(mean(x²) + eps) · weight`.
    public func rmsNorm(_ normalizedShape: [Int], weight: Tensor? = nil, eps: Double = 1e-6) -> Tensor {
        wrap(normalizedShape.withInt64s {
            ct_rms_norm(handle, $0, Int32(normalizedShape.count), weight?.handle, eps)
        })
    }

    public func softmax(dim: Int) -> Tensor { wrap(ct_softmax(handle, Int64(dim))) }
    public func logSoftmax(dim: Int) -> Tensor { wrap(ct_log_softmax(handle, Int64(dim))) }

    /// Rows of `weight` picked by this integer tensor (an embedding lookup).
    public func embedding(_ weight: Tensor) -> Tensor { wrap(ct_embedding(weight.handle, handle)) }
}

/// Scaled dot-product attention over `[..., L, E]` queries and `[..., S, E]` keys/values.
///
/// `mask` is boolean (true = attend) or additive (added to the scores) and broadcasts to
/// `[..., L, S]`; `causal` masks future positions; `scale` defaults to `1/sqrt(E)`. With
/// `groupedQuery`, keys and values may have fewer heads than the queries (a divisor of them), each
/// serving a group of query heads without being copied.
public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil,
                                      causal: Bool = false, scale: Double? = nil,
                                      groupedQuery: Bool = false) -> Tensor {
    wrap(ct_sdpa(query.handle, key.handle, value.handle, mask?.handle, causal ? 1 : 0,
                 scale == nil ? 0 : 1, scale ?? 0, groupedQuery ? 1 : 0))
}
