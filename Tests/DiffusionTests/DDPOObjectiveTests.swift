import Foundation
import Testing
import Torch
@testable import Diffusion

/// DDPO's advantages and clipped surrogate on hand-computed cases (ddpo-pytorch semantics).
@Suite struct DDPOObjectiveTests {
    @Test func perPromptStatisticsWithABatchFallback() {
        var tracker = PerPromptStatTracker(bufferSize: 3, minCount: 2)
        // First batch: "a" has two rewards (its own stats), "b" one (the batch's stats).
        let first = tracker.update(prompts: ["a", "b", "a"], rewards: [1, 4, 3])
        // a: mean 2, population std 1 → ∓1; b: batch mean 8/3, std √(14/9)
        let batchStd = (14.0 / 9).squareRoot() + 1e-6
        let one: Double = 1 + 1e-6
        let expectedFirst: [Double] = [-1 / one, (4 - 8.0 / 3) / batchStd, 1 / one]
        for i in 0..<3 { #expect(abs(first[i] - expectedFirst[i]) < 1e-9, "row \(i)") }
        // Second batch: "a" keeps its last three rewards [3, 5, 7]... buffer [1, 3, 5] then [3, 5, 7].
        let second = tracker.update(prompts: ["a", "a"], rewards: [5, 7])
        let std: Double = (8.0 / 3).squareRoot() + 1e-6  // population std of [3, 5, 7]
        #expect(tracker.buffers["a"] == [3, 5, 7])
        #expect(abs(second[0]) < 1e-9)
        #expect(abs(second[1] - 2 / std) < 1e-9)
    }

    @Test func clippedSurrogateByHand() {
        let old = Tensor([Float(0), 0, 0])
        let now = Tensor([Float(0.5), -0.5, 0])  // ratios e^0.5, e^−0.5, 1
        let (loss, kl, fraction) = DDPO.loss(logProb: now, oldLogProb: old, advantages: [2, 9, -1], clipRange: 0.1,
                                             advantageClip: 5)
        // Row 0, A = 2: max(−2·e^0.5, −2·1.1) = −2.2. Row 1, A = 5 (clipped): max(−5·e^−0.5, −5·0.9) = −5e^−0.5.
        // Row 2, A = −1: max(1, 1) = 1.
        let e: Double = exp(-0.5)
        let expected: Double = (-2.2 - 5 * e + 1) / 3
        let got: Double = loss.item()
        #expect(abs(got - expected) < 1e-6, "\(got) vs \(expected)")
        let expectedKL: Double = 0.5 * 0.5 / 3
        #expect(abs(kl - expectedKL) < 1e-7)
        #expect(abs(fraction - 2.0 / 3) < 1e-7)
        // At ratio 1 the loss is −mean(A) and its gradient −A/B per row.
        let same = Tensor([Float(0), 0, 0]).requiringGrad()
        let at1 = DDPO.loss(logProb: same, oldLogProb: old, advantages: [2, 9, -1], clipRange: 0.1, advantageClip: 5)
        let at1Loss: Double = at1.loss.item()
        #expect(abs(at1Loss + 2) < 1e-6)
        at1.loss.backward()
        let grad: [Float] = same.grad!.toArray(Float.self)
        let expectedGrad: [Float] = [-2.0 / 3, -5.0 / 3, 1.0 / 3]
        for i in 0..<3 { #expect(abs(grad[i] - expectedGrad[i]) < 1e-6, "row \(i)") }
    }
}
