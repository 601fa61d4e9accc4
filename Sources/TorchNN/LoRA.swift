import Torch

/// A `Linear` with a low-rank adapter, named as PEFT names it.
///
/// The base weights keep their checkpoint keys (`q_proj.weight`, `q_proj.bias`); the adapter adds
/// `q_proj.lora_A.weight` `[r, in]` and `q_proj.lora_B.weight` `[out, r]` (PEFT's keys with the
/// adapter name dropped, as in `adapter_model.safetensors`). Output:
/// `base(x) + scaling · B(A(dropout(x)))` with `scaling = alpha / r` (or `alpha / √r` for rsLoRA).
/// A is initialised as PEFT does (Kaiming-uniform), B with zeros, so a new adapter changes nothing.
/// The base weights are frozen; the adapter trains.
public final class LoRALinear: UnaryModule {
    public let base: Linear
    public let rank: Int
    public let alpha: Double
    public let scaling: Double
    public let loraA: Tensor
    public let loraB: Tensor
    public let dropout: Dropout?
    /// When false the layer is exactly the base layer (the reference policy in GRPO).
    public var enabled = true
    public private(set) var merged = false

    public init(_ path: ParameterPath, _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rank: Int,
                alpha: Double, dropout: Double = 0, useRSLoRA: Bool = false) {
        precondition(rank > 0, "LoRA \(path.key): rank must be positive")
        base = Linear(path, inFeatures, outFeatures, bias: bias)
        for name in ["weight", "bias"] { path.store[path.key(name)]?.setTrainable(false) }
        self.rank = rank
        self.alpha = alpha
        scaling = useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
        loraA = (path / "lora_A").parameter("weight", [rank, inFeatures], .kaimingUniform(fanIn: inFeatures),
                                            isAdapter: true)
        loraB = (path / "lora_B").parameter("weight", [outFeatures, rank], .zeros, isAdapter: true)
        self.dropout = dropout > 0 ? Dropout(dropout, generator: path.store.generator) : nil
    }

    /// Turns adapter dropout on for training.
    public var training: Bool {
        get { dropout?.training ?? false }
        set { dropout?.training = newValue }
    }

    private func delta(_ x: Tensor) -> Tensor {
        let input = dropout.map { $0(x) } ?? x
        return input.linear(loraA).linear(loraB) * scaling
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch (enabled, merged) {
        case (true, false): return base(x) + delta(x)
        case (true, true), (false, false): return base(x)
        case (false, true): return base(x) - x.linear(loraA).linear(loraB) * scaling
        }
    }

    /// The weight change `scaling · B·A` the adapter stands for.
    public var deltaWeight: Tensor { loraB.matmul(loraA) * scaling }

    /// Folds the adapter into the base weight (for fast inference).
    public func merge() {
        guard !merged else { return }
        withNoGrad { base.weight.add_(deltaWeight.to(base.weight.dtype)) }
        merged = true
    }

    /// Undoes ``merge()``.
    public func unmerge() {
        guard merged else { return }
        withNoGrad { base.weight.add_(deltaWeight.to(base.weight.dtype), alpha: -1) }
        merged = false
    }

    /// Runs `body` with the adapters of `layers` folded into their base weights (one matmul per
    /// layer instead of three, for inference), then puts every base weight back bit for bit — from a
    /// saved copy, not by subtracting, which would leave float32 rounding in the frozen weights.
    /// Disabled or already merged layers are left as they are.
    public static func withMerged<R>(_ layers: [LoRALinear], _ body: () throws -> R) rethrows -> R {
        let folding = layers.filter { $0.enabled && !$0.merged }
        let saved = withNoGrad { folding.map { $0.base.weight.clone() } }
        for layer in folding { layer.merge() }
        defer {
            withNoGrad {
                for (layer, weight) in zip(folding, saved) {
                    layer.base.weight.copy_(weight)
                    layer.merged = false
                }
            }
        }
        return try body()
    }
}
