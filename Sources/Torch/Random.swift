import CTorch

/// A seeded random generator: libtorch's own generator, so a seed gives the same draws as
/// `torch.Generator(device).manual_seed(seed)` in PyTorch (and thus the same initial noise as
/// diffusers' `randn_tensor` with that generator).
///
/// ```swift
/// let g = try Generator(seed: 42)
/// let noise = Tensor.randn([1, 4, 8, 8], generator: g)
/// ```
public final class Generator: @unchecked Sendable {
    let handle: ct_generator
    /// The seed the generator started from.
    public let seed: UInt64
    /// The device whose random algorithm the generator runs (CPU: Mersenne Twister; CUDA: Philox).
    public let device: Device

    public init(seed: UInt64, device: Device = .cpu) throws {
        try device.validate()
        guard let h = ct_generator_new(seed, device.code, device.index) else {
            throw TorchError.libtorch(lastTorchError())
        }
        self.handle = h
        self.seed = seed
        self.device = device
    }

    deinit { ct_generator_free(handle) }

    /// The full generator state (a `uint8` tensor), for checkpoints.
    public var state: Tensor { wrap(ct_generator_get_state(handle), "generator state") }

    /// Restores a state captured with ``state``.
    public func setState(_ state: Tensor) throws {
        if ct_generator_set_state(handle, state.handle) != 0 {
            throw TorchError.invalidArgument("cannot restore generator state: \(lastTorchError())")
        }
    }
}

extension Tensor {
    /// Standard normal draws, made on the generator's device and then moved to `device`
    /// (as diffusers' `randn_tensor` does with a CPU generator).
    public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device? = nil,
                             generator: Generator) -> Tensor {
        let g = generator.device
        let t = wrap(shape.withInt64s {
            ct_randn($0, Int32(shape.count), dtype.rawValue, g.code, g.index, generator.handle)
        })
        return device.map { $0 == g ? t : t.to($0) } ?? t
    }

    /// Uniform draws on [0, 1).
    public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device? = nil,
                            generator: Generator) -> Tensor {
        let g = generator.device
        let t = wrap(shape.withInt64s {
            ct_rand($0, Int32(shape.count), dtype.rawValue, g.code, g.index, generator.handle)
        })
        return device.map { $0 == g ? t : t.to($0) } ?? t
    }

    /// Integers uniformly drawn from `low..<high`.
    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64,
                               device: Device? = nil, generator: Generator) -> Tensor {
        let g = generator.device
        let t = wrap(shape.withInt64s {
            ct_randint(Int64(low), Int64(high), $0, Int32(shape.count), dtype.rawValue, g.code, g.index,
                       generator.handle)
        })
        return device.map { $0 == g ? t : t.to($0) } ?? t
    }

    /// A random permutation of `0..<n`.
    public static func randperm(_ n: Int, generator: Generator) -> Tensor {
        wrap(ct_randperm(Int64(n), generator.device.code, generator.device.index, generator.handle))
    }

    /// Draws `samples` indices per row from the (unnormalised, non-negative) weights in the last dim.
    public func multinomial(samples: Int, replacement: Bool = false, generator: Generator) -> Tensor {
        wrap(ct_multinomial(handle, Int64(samples), replacement ? 1 : 0, generator.handle))
    }

    /// 1 with probability given elementwise by this tensor, else 0.
    public func bernoulli(generator: Generator) -> Tensor {
        wrap(ct_bernoulli(handle, generator.handle))
    }

    /// Fills in place with normal draws.
    public func normal_(mean: Double = 0, std: Double = 1, generator: Generator) {
        check(ct_normal_(handle, mean, std, generator.handle), "normal_")
    }

    /// Fills in place with uniform draws on [low, high).
    public func uniform_(_ low: Double, _ high: Double, generator: Generator) {
        check(ct_uniform_(handle, low, high, generator.handle), "uniform_")
    }

    /// Inverted dropout: zeroes elements with probability `p` and scales the rest by 1/(1-p).
    public func dropout(_ p: Double, generator: Generator) -> Tensor {
        if p <= 0 { return self }
        if p >= 1 { return self * 0 }
        let keep = Tensor.full(shape, 1 - p, dtype: dtype, device: device).bernoulli(generator: generator)
        return self * keep * (1 / (1 - p))
    }
}
