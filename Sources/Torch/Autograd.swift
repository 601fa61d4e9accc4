import CTorch

extension Tensor {
    /// Whether autograd records operations on this tensor. Set it on leaves (parameters).
    public var requiresGrad: Bool {
        get { ct_requires_grad(handle) != 0 }
        set { check(ct_set_requires_grad(handle, newValue ? 1 : 0), "requiresGrad") }
    }

    /// Sets ``requiresGrad`` and returns the tensor, for chaining.
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) -> Tensor {
        requiresGrad = flag
        return self
    }

    /// True for tensors created by the user rather than by a recorded operation.
    public var isLeaf: Bool { ct_is_leaf(handle) != 0 }

    /// Back-propagates from this tensor (a scalar unless `gradient` is given), accumulating into
    /// the ``grad`` of every leaf that requires a gradient.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
        check(ct_backward(handle, gradient?.handle, retainGraph ? 1 : 0), "backward")
    }

    /// The accumulated gradient, or nil before any backward pass reached this tensor.
    public var grad: Tensor? {
        var out: ct_tensor?
        check(ct_grad(handle, &out), "grad")
        return out.map { Tensor(handle: $0) }
    }

    /// Clears the gradient (sets it to none, as `zero_grad(set_to_none=True)`).
    public func zeroGrad() { check(ct_zero_grad(handle), "zeroGrad") }

    /// The same data cut from the autograd graph.
    public func detached() -> Tensor { wrap(ct_detach(handle)) }
}

/// Whether autograd records operations on the current thread.
public var isGradEnabled: Bool { ct_is_grad_enabled() != 0 }

/// Runs `body` with autograd recording off on this thread (as `torch.no_grad()`), then restores it.
@discardableResult
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = ct_set_grad_enabled(0)
    defer { _ = ct_set_grad_enabled(previous) }
    return try body()
}

/// Runs `body` with autograd recording on (as `torch.enable_grad()`), then restores the setting.
@discardableResult
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    let previous = ct_set_grad_enabled(1)
    defer { _ = ct_set_grad_enabled(previous) }
    return try body()
}

// MARK: in-place updates (optimisers and parameter loading; no graph is recorded for leaves
// when called inside `withNoGrad`)

extension Tensor {
    /// Copies `source` into this tensor (broadcasting and converting dtype/device).
    public func copy_(_ source: Tensor) { check(ct_copy_(handle, source.handle), "copy_") }
    public func fill_(_ value: Double) { check(ct_fill_(handle, value), "fill_") }
    public func mul_(_ scalar: Double) { check(ct_mul_scalar_(handle, scalar), "mul_") }
    /// `self += alpha · other`.
    public func add_(_ other: Tensor, alpha: Double = 1) { check(ct_add_(handle, other.handle, alpha), "add_") }
    /// `self += weight · (end − self)`.
    public func lerp_(_ end: Tensor, weight: Double) { check(ct_lerp_(handle, end.handle, weight), "lerp_") }
    /// `self += value · a · b`.
    public func addcmul_(_ a: Tensor, _ b: Tensor, value: Double = 1) {
        check(ct_addcmul_(handle, a.handle, b.handle, value), "addcmul_")
    }
    /// `self += value · a / b`.
    public func addcdiv_(_ a: Tensor, _ b: Tensor, value: Double = 1) {
        check(ct_addcdiv_(handle, a.handle, b.handle, value), "addcdiv_")
    }
}
