import Foundation
import Torch

/// Learning-rate schedules; `rate(at:)` gives the rate for a 0-based optimizer step, with the
/// same multipliers as the `transformers` / `diffusers` schedule helpers.
public enum LRSchedule: Sendable, Equatable {
    case constant(Double)
    /// Linear warm-up from 0 to `peak` over `warmup` steps, then constant.
    case warmupConstant(peak: Double, warmup: Int)
    /// Linear warm-up, then linear decay to 0 at `total` (`get_linear_schedule_with_warmup`).
    case warmupLinear(peak: Double, warmup: Int, total: Int)
    /// Linear warm-up, then half a cosine down to `minimum` at `total`
    /// (`get_cosine_schedule_with_warmup` when `minimum` is 0).
    case warmupCosine(peak: Double, warmup: Int, total: Int, minimum: Double = 0)

    public func rate(at step: Int) -> Double {
        switch self {
        case .constant(let lr):
            return lr
        case .warmupConstant(let peak, let warmup):
            return step < warmup ? peak * Double(step) / Double(Swift.max(1, warmup)) : peak
        case .warmupLinear(let peak, let warmup, let total):
            if step < warmup { return peak * Double(step) / Double(Swift.max(1, warmup)) }
            return peak * Swift.max(0, Double(total - step) / Double(Swift.max(1, total - warmup)))
        case .warmupCosine(let peak, let warmup, let total, let minimum):
            if step < warmup { return peak * Double(step) / Double(Swift.max(1, warmup)) }
            let progress = Double(step - warmup) / Double(Swift.max(1, total - warmup))
            let factor = Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * Swift.min(1, progress))))
            return minimum + (peak - minimum) * factor
        }
    }
}

/// An exponential moving average of parameters, as diffusers' `EMAModel`:
/// `decay_t = min(decay, (1 + t) / (10 + t))` (or the warm-up form `1 − (1 + t/γ)^−p`),
/// `shadow ← shadow − (1 − decay_t)·(shadow − θ)`.
public final class EMA {
    public let decay: Double
    public let minDecay: Double
    public let updateAfterStep: Int
    public let warmup: (inverseGamma: Double, power: Double)?
    public private(set) var optimizationStep = 0
    /// The averaged copies, one per tracked parameter.
    public let shadow: [Tensor]
    private let parameters: [Tensor]

    public init(_ parameters: [Tensor], decay: Double = 0.9999, minDecay: Double = 0, updateAfterStep: Int = 0,
                warmup: (inverseGamma: Double, power: Double)? = nil) {
        self.parameters = parameters
        self.decay = decay
        self.minDecay = minDecay
        self.updateAfterStep = updateAfterStep
        self.warmup = warmup
        shadow = parameters.map { $0.detached().clone() }
    }

    /// The decay used at the current step (before the step counter advances).
    public func currentDecay() -> Double {
        let step = Swift.max(0, optimizationStep - updateAfterStep - 1)
        if step <= 0 { return 0 }
        let value: Double
        if let warmup {
            value = 1 - Foundation.pow(1 + Double(step) / warmup.inverseGamma, -warmup.power)
        } else {
            value = (1 + Double(step)) / (10 + Double(step))
        }
        return Swift.max(Swift.min(value, decay), minDecay)
    }

    /// Folds the parameters' current values into the average.
    public func update() {
        optimizationStep += 1
        let d = currentDecay()
        withNoGrad {
            for (s, p) in zip(shadow, parameters) { s.lerp_(p.detached(), weight: 1 - d) }
        }
    }

    /// Copies the averaged values into the live parameters.
    public func copyToParameters() {
        withNoGrad { for (s, p) in zip(shadow, parameters) { p.copy_(s) } }
    }
}
