import Torch
import TorchNN

/// What ``guardedStep(_:optimizer:maxNorm:step:)`` did.
public struct GuardedStep: Sendable {
    /// The loss (NaN or ±∞ when the step was skipped for it).
    public let loss: Double
    /// The gradient norm before clipping (NaN when the step never got that far).
    public let gradNorm: Double
    /// Why the update was not applied, naming the value and the step; nil when it was.
    public let skipReason: String?

    public var applied: Bool { skipReason == nil }
}

/// The backward pass, gradient clipping and the optimiser step of training step `n` (1-based),
/// applied only when the loss and every gradient are finite: otherwise the gradients are cleared,
/// the weights and the optimiser's moments are untouched, and the reason is returned. The fault
/// hooks `nan-loss@n`, `inf-loss@n`, `nan-grad@n` and `inf-grad@n` (``Faults``) poison this step.
public func guardedStep(_ loss: Tensor, optimizer: AdamW, maxNorm: Double, step n: Int) -> GuardedStep {
    var loss = loss
    if let poison = Faults.poison("loss", at: n) { loss = loss * poison }
    let value = loss.item()
    guard value.isFinite else {
        optimizer.zeroGrad()
        return GuardedStep(loss: value, gradNorm: .nan, skipReason: "the loss was \(value) at step \(n)")
    }
    loss.backward()
    return clippedStep(loss: value, optimizer: optimizer, maxNorm: maxNorm, step: n)
}

/// Gradient clipping and the optimiser step of training step `n` after several backward passes
/// accumulated the gradients of losses that sum to `loss`: applied only when `loss` and the gradient
/// norm are finite, otherwise the gradients are cleared and the reason returned. The same fault hooks
/// as ``guardedStep(_:optimizer:maxNorm:step:)``.
public func guardedAccumulatedStep(loss: Double, optimizer: AdamW, maxNorm: Double, step n: Int) -> GuardedStep {
    var value = loss
    if let poison = Faults.poison("loss", at: n) { value *= poison }
    guard value.isFinite else {
        optimizer.zeroGrad()
        return GuardedStep(loss: value, gradNorm: .nan, skipReason: "the loss was \(value) at step \(n)")
    }
    return clippedStep(loss: value, optimizer: optimizer, maxNorm: maxNorm, step: n)
}

/// The part after the backward pass: the gradient fault hook, clipping, and the step if the norm is finite.
func clippedStep(loss value: Double, optimizer: AdamW, maxNorm: Double, step n: Int) -> GuardedStep {
    if let poison = Faults.poison("grad", at: n), let grad = optimizer.parameters.lazy.compactMap(\.grad).first {
        withNoGrad { grad.reshape([-1]).narrow(dim: 0, start: 0, length: 1).fill_(poison) }
    }
    let norm = clipGradNorm(optimizer.parameters, maxNorm: maxNorm)
    guard norm.isFinite else {
        optimizer.zeroGrad()
        return GuardedStep(loss: value, gradNorm: norm, skipReason: "the gradient norm was \(norm) at step \(n)")
    }
    optimizer.step()
    return GuardedStep(loss: value, gradNorm: norm, skipReason: nil)
}

/// Counts skipped steps and stops a run after `limit` in a row, with the cause of the last.
public struct NonFiniteGuard: Sendable {
    public let limit: Int
    public private(set) var streak = 0
    public private(set) var skipped = 0

    public init(limit: Int, streak: Int = 0, skipped: Int = 0) {
        self.limit = limit
        self.streak = streak
        self.skipped = skipped
    }

    /// Records a step: `skipReason` nil for an applied update. Throws ``TrainingError/diverged(_:)``
    /// naming the cause and `context` (where to resume) after `limit` skips in a row.
    public mutating func record(_ skipReason: String?, context: String) throws {
        guard let reason = skipReason else {
            streak = 0
            return
        }
        streak += 1
        skipped += 1
        if streak >= limit {
            throw TrainingError.diverged("\(streak) steps in a row skipped for a non-finite value (max_nonfinite "
                + "\(limit)); the last: \(reason). \(context)")
        }
    }
}
