import Foundation
import Torch

/// AdamW (Loshchilov & Hutter, decoupled weight decay), step for step the arithmetic of
/// `torch.optim.AdamW`'s default single-tensor implementation:
///
///     θ ← θ·(1 − lr·λ)
///     m ← m + (1 − β₁)(g − m)            v ← β₂·v + (1 − β₂)·g²
///     θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// Parameters without a gradient are skipped and keep their own step count, as in PyTorch.
public final class AdamW {
    public let parameters: [Tensor]
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    private var expAvg: [Tensor?]
    private var expAvgSq: [Tensor?]
    private var steps: [Int]

    public init(_ parameters: [Tensor], learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                eps: Double = 1e-8, weightDecay: Double = 0.01) {
        self.parameters = parameters
        self.learningRate = learningRate
        (beta1, beta2) = betas
        self.eps = eps
        self.weightDecay = weightDecay
        expAvg = Array(repeating: nil, count: parameters.count)
        expAvgSq = Array(repeating: nil, count: parameters.count)
        steps = Array(repeating: 0, count: parameters.count)
    }

    /// Number of updates applied to the first parameter (the usual "global step").
    public var stepCount: Int { steps.first ?? 0 }

    /// Applies one update from the current gradients.
    public func step() {
        withNoGrad {
            for (i, p) in parameters.enumerated() {
                guard let g = p.grad else { continue }
                steps[i] += 1
                let t = Double(steps[i])
                let m = expAvg[i] ?? p.zerosLike().detached()
                let v = expAvgSq[i] ?? p.zerosLike().detached()
                expAvg[i] = m
                expAvgSq[i] = v
                p.mul_(1 - learningRate * weightDecay)
                m.lerp_(g, weight: 1 - beta1)
                v.mul_(beta2)
                v.addcmul_(g, g, value: 1 - beta2)
                let bias1 = 1 - Foundation.pow(beta1, t)
                let bias2Sqrt = (1 - Foundation.pow(beta2, t)).squareRoot()
                let denom = v.sqrt() / bias2Sqrt + eps
                p.addcdiv_(m, denom, value: -(learningRate / bias1))
            }
        }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Moments and step counts, for checkpoints (`exp_avg.N`, `exp_avg_sq.N`, `step.N`).
    public func state() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for i in parameters.indices {
            out["step.\(i)"] = Tensor(scalar: Int64(steps[i]))
            if let m = expAvg[i], let v = expAvgSq[i] {
                out["exp_avg.\(i)"] = m
                out["exp_avg_sq.\(i)"] = v
            }
        }
        return out
    }

    /// Restores a ``state()``; throws when it does not fit these parameters.
    public func load(state: [String: Tensor]) throws {
        for (i, p) in parameters.enumerated() {
            guard let step = state["step.\(i)"] else {
                throw NNError.invalidState("optimizer state lacks `step.\(i)` (\(parameters.count) parameters)")
            }
            steps[i] = Int(step.item())
            if let m = state["exp_avg.\(i)"], let v = state["exp_avg_sq.\(i)"] {
                guard m.shape == p.shape, v.shape == p.shape else {
                    throw NNError.invalidState(
                        "optimizer moments for parameter \(i) have shape \(m.shape), parameter has \(p.shape)")
                }
                expAvg[i] = m.to(p.device, p.dtype)
                expAvgSq[i] = v.to(p.device, p.dtype)
            } else {
                expAvg[i] = nil
                expAvgSq[i] = nil
            }
        }
        if state.keys.contains(where: { $0.hasPrefix("step.") && Int($0.dropFirst(5)).map { $0 >= parameters.count } ?? true }) {
            throw NNError.invalidState("optimizer state has more parameters than the \(parameters.count) given")
        }
    }
}

/// Scales gradients so that their joint 2-norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`; returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double) -> Double {
    let grads = parameters.compactMap(\.grad)
    guard !grads.isEmpty else { return 0 }
    return withNoGrad {
        let norms = grads.map { $0.to(.float32).square().sum().sqrt() }
        let total = Tensor.stack(norms).square().sum().sqrt()
        let coefficient = (maxNorm / (total + 1e-6)).clamp(max: 1)
        for g in grads { g.copy_(g * coefficient.to(g.dtype)) }
        return total.item()
    }
}
