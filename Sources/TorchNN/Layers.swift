import Torch

/// A module that maps one tensor to one tensor.
public protocol UnaryModule {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// `y = x·Wᵀ + b`. Registers `weight` `[out, in]` and `bias` `[out]` (as `torch.nn.Linear`).
///
/// When the store carries a ``LoRAInjection`` whose targets name this layer (PEFT's rule: the key
/// is a target or ends with `.` + a target), the layer also registers `lora_A.weight` `[r, in]`
/// (Kaiming-uniform) and `lora_B.weight` `[out, r]` (zeros) as adapter parameters and adds
/// `scaling · B(A(x))` — so a model built with an injection plan is a PEFT-adapted model with
/// PEFT's keys, without its code knowing.
public final class Linear: UnaryModule {
    public let weight: Tensor
    public let bias: Tensor?
    public let inFeatures: Int
    public let outFeatures: Int
    /// The injected adapter, if any: A, B, the scaling, and the store whose `adaptersEnabled` switches it.
    public let adapter: (a: Tensor, b: Tensor, scaling: Double, store: ParameterStore)?

    public init(_ path: ParameterPath, _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = path.parameter("weight", [outFeatures, inFeatures], .kaimingUniform(fanIn: inFeatures))
        self.bias = bias ? path.parameter("bias", [outFeatures], .kaimingUniform(fanIn: inFeatures)) : nil
        if let plan = path.store.loraInjection, plan.targets(path.key) {
            let a = (path / "lora_A").parameter("weight", [plan.rank, inFeatures], .kaimingUniform(fanIn: inFeatures),
                                                isAdapter: true)
            let b = (path / "lora_B").parameter("weight", [outFeatures, plan.rank], .zeros, isAdapter: true)
            adapter = (a, b, plan.alpha / Double(plan.rank), path.store)
        } else {
            adapter = nil
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = x.linear(weight, bias)
        guard let adapter, adapter.store.adaptersEnabled else { return y }
        return y + x.linear(adapter.a).linear(adapter.b) * adapter.scaling
    }
}

/// Which `Linear` layers of a model get a LoRA adapter as it is built (``ParameterStore/loraInjection``):
/// rank, alpha and PEFT's `target_modules` (`to_q`, `to_out.0`, …).
public struct LoRAInjection: Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var targetModules: Set<String>

    public init(rank: Int, alpha: Double, targetModules: Set<String>) {
        self.rank = rank
        self.alpha = alpha
        self.targetModules = targetModules
    }

    /// PEFT's matching: the module's key equals a target or ends with `.` + a target.
    public func targets(_ key: String) -> Bool {
        targetModules.contains { key == $0 || key.hasSuffix("." + $0) }
    }
}

/// 2-D convolution. Registers `weight` `[out, in/groups, k, k]` and `bias` `[out]` (as `torch.nn.Conv2d`).
public final class Conv2d: UnaryModule {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int
    public let dilation: Int
    public let groups: Int

    public init(_ path: ParameterPath, _ inChannels: Int, _ outChannels: Int, kernelSize: Int,
                stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d \(path.key): channels \(inChannels)→\(outChannels) not divisible by groups \(groups)")
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let fanIn = inChannels / groups * kernelSize * kernelSize
        weight = path.parameter("weight", [outChannels, inChannels / groups, kernelSize, kernelSize],
                                .kaimingUniform(fanIn: fanIn))
        self.bias = bias ? path.parameter("bias", [outChannels], .kaimingUniform(fanIn: fanIn)) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias, stride: (stride, stride), padding: (padding, padding),
                 dilation: (dilation, dilation), groups: groups)
    }
}

/// Group normalisation over `[N, C, ...]`. Registers `weight` and `bias` `[C]` when affine.
public final class GroupNorm: UnaryModule {
    public let groups: Int
    public let eps: Double
    public let weight: Tensor?
    public let bias: Tensor?

    public init(_ path: ParameterPath, groups: Int, channels: Int, eps: Double = 1e-5, affine: Bool = true) {
        precondition(channels % groups == 0, "GroupNorm \(path.key): \(channels) channels, \(groups) groups")
        self.groups = groups
        self.eps = eps
        weight = affine ? path.parameter("weight", [channels], .ones) : nil
        bias = affine ? path.parameter("bias", [channels], .zeros) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps) }
}

/// Layer normalisation over the last dimension. Registers `weight` and (optionally) `bias`.
public final class LayerNorm: UnaryModule {
    public let dim: Int
    public let eps: Double
    public let weight: Tensor?
    public let bias: Tensor?

    public init(_ path: ParameterPath, _ dim: Int, eps: Double = 1e-5, affine: Bool = true, bias: Bool = true) {
        self.dim = dim
        self.eps = eps
        weight = affine ? path.parameter("weight", [dim], .ones) : nil
        self.bias = affine && bias ? path.parameter("bias", [dim], .zeros) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm([dim], weight: weight, bias: bias, eps: eps) }
}

/// RMS normalisation (Llama / Qwen2 `RMSNorm`): `x / √(mean(x²) + ε) · weight`, computed in float32.
public final class RMSNorm: UnaryModule {
    public let dim: Int
    public let eps: Double
    public let weight: Tensor

    public init(_ path: ParameterPath, _ dim: Int, eps: Double = 1e-6) {
        self.dim = dim
        self.eps = eps
        weight = path.parameter("weight", [dim], .ones)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        // transformers upcasts to float32 for the statistics and casts back before the weight.
        let inputType = x.dtype
        let normed = x.to(.float32).rmsNorm([dim], eps: eps).to(inputType)
        return weight * normed
    }
}

/// A lookup table. Registers `weight` `[count, dim]`, initialised N(0, 1) as `torch.nn.Embedding`.
public final class Embedding {
    public let weight: Tensor

    public init(_ path: ParameterPath, count: Int, dim: Int) {
        weight = path.parameter("weight", [count, dim], .normal(mean: 0, std: 1))
    }

    public func callAsFunction(_ indices: Tensor) -> Tensor { indices.embedding(weight) }
}

/// Inverted dropout driven by an explicit generator; the identity unless `training` is set.
public final class Dropout: UnaryModule {
    public let probability: Double
    public let generator: Generator
    public var training = false

    public init(_ probability: Double, generator: Generator) {
        precondition((0..<1).contains(probability), "dropout probability \(probability) not in [0, 1)")
        self.probability = probability
        self.generator = generator
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        training && probability > 0 ? x.dropout(probability, generator: generator) : x
    }
}
