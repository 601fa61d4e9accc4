// DDPO's advantages and objective (Black et al. 2023; ddpo-pytorch semantics): per-prompt reward
// statistics with a minimum count and a batch fallback, advantages clipped, and the PPO-style
// clipped surrogate on each denoising step's log-density ratio.
import Foundation
import Torch

/// Each prompt's recent rewards (at most `bufferSize`), persisting across iterations. A prompt with
/// fewer than `minCount` rewards is normalised by the whole batch's mean and std instead.
public struct PerPromptStatTracker: Codable, Sendable, Equatable {
    public let bufferSize: Int
    public let minCount: Int
    public private(set) var buffers: [String: [Double]] = [:]

    public init(bufferSize: Int, minCount: Int) {
        self.bufferSize = bufferSize
        self.minCount = minCount
    }

    /// Adds the batch's rewards and returns each one's advantage: (r − mean) / (std + 1e-6), the
    /// population std, over the prompt's buffer or (below `minCount`) the batch.
    public mutating func update(prompts: [String], rewards: [Double]) -> [Double] {
        precondition(prompts.count == rewards.count, "one reward per prompt")
        func stats(_ xs: [Double]) -> (Double, Double) {
            let m = xs.reduce(0, +) / Double(xs.count)
            return (m, (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count)).squareRoot() + 1e-6)
        }
        let batch = stats(rewards)
        var advantages = [Double](repeating: 0, count: rewards.count)
        var order: [String] = []
        for p in prompts where !order.contains(p) { order.append(p) }
        for prompt in order {
            let rows = prompts.indices.filter { prompts[$0] == prompt }
            var buffer = buffers[prompt] ?? []
            buffer += rows.map { rewards[$0] }
            if buffer.count > bufferSize { buffer.removeFirst(buffer.count - bufferSize) }
            buffers[prompt] = buffer
            let (mean, std) = buffer.count < minCount ? batch : stats(buffer)
            for i in rows { advantages[i] = (rewards[i] - mean) / std }
        }
        return advantages
    }
}

public enum DDPO {
    /// The clipped surrogate of one denoising step, `[B]` log-densities now and at sampling time:
    /// mean over the batch of max(−A·ρ, −A·clamp(ρ, 1 − ε, 1 + ε)) with A clipped to ±`advantageClip`;
    /// also ½·mean((log ρ)²) (the approximate KL ddpo-pytorch logs) and the fraction of clipped ratios.
    public static func loss(logProb: Tensor, oldLogProb: Tensor, advantages: [Double], clipRange: Double,
                            advantageClip: Double) -> (loss: Tensor, approxKL: Double, clipFraction: Double) {
        let a = Tensor(advantages.map { Float(Swift.min(Swift.max($0, -advantageClip), advantageClip)) })
            .to(logProb.dtype)
        let logRatio = logProb - oldLogProb.detached()
        let ratio = logRatio.exp()
        let unclipped = a * ratio * -1
        let clipped = a * ratio.clamp(min: 1 - clipRange, max: 1 + clipRange) * -1
        let loss = unclipped.maximum(clipped).mean()
        let (kl, fraction) = withNoGrad {
            ((logRatio.square().mean() * 0.5).item(), ((ratio - 1).abs() .> clipRange).to(.float32).mean().item())
        }
        return (loss, kl, fraction)
    }
}
