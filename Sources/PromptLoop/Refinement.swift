// The MDP of PromptLoop (DESIGN.md §1): states a policy sees, the actions it takes, and when it acts.
//
// Steps are 0-based, k = 0…T−1. Refining at step k means: after step k the policy sees x̂₀ from step
// k's UNet output, and its prompt is used from step k + 1 on (the pipeline's callback rule). The
// prompt until the first refinement is the user's query.
import Foundation
import Imaging

/// How a rollout refines the prompt.
public enum RolloutMode: String, Sendable, CaseIterable, Codable {
    /// Plain sampling with the query.
    case none
    /// One rewrite of the query before step 0, without an image (the RePrompt style).
    case feedForward = "feed-forward"
    /// At each refinement step the VAE decodes x̂₀ and the policy, seeing it, writes the next prompt.
    case closed
    /// The same refinement steps, but every prompt is written before step 0 without images, each
    /// from the previous one; sampling then runs uninterrupted.
    case open
}

/// What the policy sees when it acts: one user turn of its chat.
public struct RefinementState: Sendable {
    /// The user's query (what the reward scores against).
    public var query: String
    /// The prompt in use until now.
    public var prompt: String
    /// The step after which the policy acts (−1: before sampling, feed-forward).
    public var step: Int
    /// Steps of the whole sampling run, T.
    public var totalSteps: Int
    /// The decoded x̂₀ of step `step` (closed loop only).
    public var image: RGBImage?

    public init(query: String, prompt: String, step: Int, totalSteps: Int, image: RGBImage? = nil) {
        self.query = query
        self.prompt = prompt
        self.step = step
        self.totalSteps = totalSteps
        self.image = image
    }

    /// `pN` with N = round(10·(k+1)/T): progress in tenths, so a policy trained at 20 steps serves 50.
    public var progressWord: String {
        let n = totalSteps > 0 ? (10 * Double(step + 1) / Double(totalSteps)).rounded() : 0
        return "p\(Int(Swift.max(0, Swift.min(10, n))))"
    }

    /// The user turn's text (the image placeholder, when there is an image, is the policy's to add):
    /// `query: …`, `prompt: …` and the progress word, one per line.
    public var text: String { "query: \(query)\nprompt: \(prompt)\n\(progressWord)" }
}

/// One action: the policy's reply to a state, parsed into the next prompt.
public struct RefinementAction: Sendable {
    public var state: RefinementState
    /// Generated token ids (up to and including the stop token when there is one).
    public var tokens: [Int]
    /// Log-probability of each generated token under the sampling temperature.
    public var logProbs: [Double]
    /// The decoded reply.
    public var reply: String
    /// The prompt used from the next step on: the parsed reply, or the current prompt when the action
    /// is invalid.
    public var prompt: String
    /// False for an empty reply, one cut at `max_new_tokens` with no stop token, or one that does not
    /// decode; such an action keeps the current prompt.
    public var valid: Bool
    /// True when generation stopped at `max_new_tokens` without a stop token.
    public var truncated: Bool

    public init(state: RefinementState, tokens: [Int], logProbs: [Double], reply: String, prompt: String, valid: Bool,
                truncated: Bool) {
        (self.state, self.tokens, self.logProbs, self.reply, self.prompt, self.valid, self.truncated) =
            (state, tokens, logProbs, reply, prompt, valid, truncated)
    }

    /// The action a reply gives in `state`: the reply's first line, trimmed, is the next prompt; empty
    /// or truncated replies keep the current prompt and are invalid.
    public static func parse(reply: String, tokens: [Int], logProbs: [Double], stopped: Bool,
                             state: RefinementState) -> RefinementAction {
        let line = reply.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let prompt = line.trimmingCharacters(in: .whitespaces)
        let valid = stopped && !prompt.isEmpty
        return RefinementAction(state: state, tokens: tokens, logProbs: logProbs, reply: reply,
                                prompt: valid ? prompt : state.prompt, valid: valid, truncated: !stopped)
    }
}

/// A policy that writes prompts: given a batch of states, one action each.
public protocol RefinementPolicy: AnyObject {
    func act(_ states: [RefinementState]) throws -> [RefinementAction]
}

/// When the policy acts.
public enum RefinementSteps {
    /// Inference's equal intervals: R = {⌊i·W/N_R⌋ : i < N_R} with W = ⌊window·T⌋ (window 1: the
    /// paper's intervals over all steps; N_R = 5, T = 20 → 0, 4, 8, 12, 16). Steps past T − 2 (after
    /// which no step would use the prompt) and repeats are dropped.
    public static func equalIntervals(count: Int, steps: Int, window: Double = 1) -> [Int] {
        guard count > 0, steps > 1 else { return [] }
        let span = Swift.max(1, Int((Swift.min(1, Swift.max(0, window)) * Double(steps)).rounded(.down)))
        var out: [Int] = []
        for i in 0..<count {
            let k = i * span / count
            if k <= steps - 2, out.last != k { out.append(k) }
        }
        return out
    }
}
