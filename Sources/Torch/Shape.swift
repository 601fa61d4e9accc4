import CTorch

/// Padding modes for ``Tensor/pad(_:mode:value:)``.
public enum PadMode: Int32, Sendable {
    case constant = 0, reflect = 1, replicate = 2
}

extension Tensor {
    public func reshape(_ shape: [Int]) -> Tensor {
        wrap(shape.withInt64s { ct_reshape(handle, $0, Int32(shape.count)) })
    }

    public func reshape(_ shape: Int...) -> Tensor { reshape(shape) }

    public func permute(_ dims: [Int]) -> Tensor {
        wrap(dims.withInt64s { ct_permute(handle, $0, Int32(dims.count)) })
    }

    public func permute(_ dims: Int...) -> Tensor { permute(dims) }

    public func transpose(_ dim0: Int, _ dim1: Int) -> Tensor {
        wrap(ct_transpose(handle, Int64(dim0), Int64(dim1)))
    }

    public func contiguous() -> Tensor { wrap(ct_contiguous(handle)) }

    /// Concatenates along an existing dimension.
    public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        var handles: [ct_tensor?] = tensors.map { $0.handle }
        return wrap(ct_cat(&handles, Int32(handles.count), Int64(dim)))
    }

    /// Stacks along a new dimension.
    public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        var handles: [ct_tensor?] = tensors.map { $0.handle }
        return wrap(ct_stack(&handles, Int32(handles.count), Int64(dim)))
    }

    /// Splits into pieces of the given sizes along `dim`.
    public func split(sizes: [Int], dim: Int = 0) -> [Tensor] {
        var out = [ct_tensor?](repeating: nil, count: sizes.count)
        check(sizes.withInt64s { ct_split_with_sizes(handle, $0, Int32(sizes.count), Int64(dim), &out) }, "split")
        return out.map { Tensor(handle: $0!) }
    }

    /// Splits into pieces of `size` along `dim` (the last may be smaller), as `torch.split`.
    public func split(size: Int, dim: Int = 0) -> [Tensor] {
        precondition(size > 0, "split: size must be positive")
        let total = self.size(dim)
        var sizes = [Int](repeating: size, count: total / size)
        if total % size != 0 { sizes.append(total % size) }
        return split(sizes: sizes, dim: dim)
    }

    /// Splits into `chunks` pieces along `dim` as `torch.chunk` does (each `ceil(n / chunks)` long).
    public func chunk(_ chunks: Int, dim: Int = 0) -> [Tensor] {
        precondition(chunks > 0, "chunk: chunks must be positive")
        let total = self.size(dim)
        let step = Swift.max(1, (total + chunks - 1) / chunks)
        return split(size: step, dim: dim)
    }

    /// A view of `length` elements starting at `start` along `dim`.
    public func narrow(dim: Int, start: Int, length: Int) -> Tensor {
        wrap(ct_narrow(handle, Int64(dim), Int64(start), Int64(length)))
    }

    /// A view of `start..<end` with `step` along `dim` (`end` clamps to the size).
    public func slice(dim: Int, start: Int = 0, end: Int = Int.max, step: Int = 1) -> Tensor {
        wrap(ct_slice(handle, Int64(dim), Int64(start), Int64(end), Int64(step)))
    }

    /// Selects one index along `dim`, removing that dimension.
    public func select(dim: Int, index: Int) -> Tensor {
        wrap(ct_select(handle, Int64(dim), Int64(index)))
    }

    /// `self[i]` along the first dimension.
    public subscript(_ index: Int) -> Tensor { select(dim: 0, index: index) }

    public func indexSelect(dim: Int, index: Tensor) -> Tensor {
        wrap(ct_index_select(handle, Int64(dim), index.handle))
    }

    public func gather(dim: Int, index: Tensor) -> Tensor {
        wrap(ct_gather(handle, Int64(dim), index.handle))
    }

    /// Out-of-place `scatter`: a copy with `src` written at `index` along `dim`.
    public func scatter(dim: Int, index: Tensor, source: Tensor) -> Tensor {
        wrap(ct_scatter(handle, Int64(dim), index.handle, source.handle))
    }

    /// Broadcasts to `shape` without copying (-1 keeps a dimension).
    public func expand(_ shape: [Int]) -> Tensor {
        wrap(shape.withInt64s { ct_expand(handle, $0, Int32(shape.count)) })
    }

    /// Tiles the tensor (as `torch.Tensor.repeat`).
    public func `repeat`(_ repeats: [Int]) -> Tensor {
        wrap(repeats.withInt64s { ct_repeat(handle, $0, Int32(repeats.count)) })
    }

    public func squeeze(_ dim: Int) -> Tensor { wrap(ct_squeeze(handle, Int64(dim))) }
    public func squeeze() -> Tensor { wrap(ct_squeeze_all(handle)) }
    public func unsqueeze(_ dim: Int) -> Tensor { wrap(ct_unsqueeze(handle, Int64(dim))) }

    public func flatten(start: Int = 0, end: Int = -1) -> Tensor {
        wrap(ct_flatten(handle, Int64(start), Int64(end)))
    }

    /// Pads trailing dimensions, `padding` given as in `torch.nn.functional.pad`
    /// (last dimension first: `[left, right, top, bottom, ...]`).
    public func pad(_ padding: [Int], mode: PadMode = .constant, value: Double = 0) -> Tensor {
        wrap(padding.withInt64s { ct_pad(handle, $0, Int32(padding.count), mode.rawValue, value) })
    }

    /// Lower triangle (elements above `diagonal` zeroed).
    public func tril(_ diagonal: Int = 0) -> Tensor { wrap(ct_tril(handle, Int64(diagonal))) }
    /// Upper triangle (elements below `diagonal` zeroed).
    public func triu(_ diagonal: Int = 0) -> Tensor { wrap(ct_triu(handle, Int64(diagonal))) }

    /// A copy with `value` wherever `mask` is true.
    public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
        wrap(ct_masked_fill(handle, mask.handle, value))
    }

    public func flip(_ dims: [Int]) -> Tensor {
        wrap(dims.withInt64s { ct_flip(handle, $0, Int32(dims.count)) })
    }
}
