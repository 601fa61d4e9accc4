// The rollout engine: sampling with the prompt refined by a policy, in the four modes, through one
// code path. The pipeline knows nothing of policies: it gets a step callback (closed loop), ready
// conditionings (open loop) or a rewritten prompt (feed-forward).
import Diffusion
import Foundation
import Imaging
import Torch

/// One row's trajectory: the query, every action the policy took, and the prompt schedule that
/// resulted.
public struct Trajectory: Sendable {
    public var query: String
    /// The steps at which this row refined (R).
    public var refinementSteps: [Int]
    public var actions: [RefinementAction]
    /// (first step, prompt) pairs: the query from step 0, then each refinement that changed the prompt.
    public var prompts: [(fromStep: Int, prompt: String)]
    /// The prompt the row ended with.
    public var finalPrompt: String { prompts.last?.prompt ?? query }
    /// Actions that kept the current prompt because the reply was empty or cut off.
    public var invalidActions: Int { actions.filter { !$0.valid }.count }
}

/// What a rollout gives: the final latents and images, the trajectories, and where the time went.
public struct RolloutResult {
    public var latents: Tensor
    public var images: [RGBImage]
    public var trajectories: [Trajectory]
    /// Seconds spent decoding x̂₀ for the policy (closed loop) and in the policy's generation.
    public var decodeSeconds = 0.0
    public var policySeconds = 0.0
}

/// Runs rollouts of one mode.
///
/// ```swift
/// let engine = RolloutEngine(pipeline: pipe, policy: policy, mode: .closed)
/// let r = try engine.run(queries: ["two red circles"], refinements: [RefinementSteps.equalIntervals(count: 5, steps: 20)],
///                        options: SamplingOptions(steps: 20, guidance: 5, seed: 0))
/// ```
public final class RolloutEngine {
    public let pipeline: StableDiffusionPipeline
    public let policy: RefinementPolicy?
    public let mode: RolloutMode

    public init(pipeline: StableDiffusionPipeline, policy: RefinementPolicy?, mode: RolloutMode) {
        self.pipeline = pipeline
        self.policy = policy
        self.mode = mode
    }

    /// Samples one image per query. `refinements` holds one set R per row (or one set for every
    /// row); it is ignored by `none` and `feed-forward`. Row i's initial noise is
    /// `options.rowSeeds?[i]` or, without row seeds, the batch's draw from `options.seed`.
    public func run(queries: [String], refinements: [[Int]], options: SamplingOptions,
                    negativePrompts: [String]? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> RolloutResult {
        let batch = queries.count
        guard batch > 0 else { throw EvaluationError.invalidArgument("no queries to roll out") }
        let steps = options.steps
        let sets: [[Int]]
        switch mode {
        case .none, .feedForward:
            sets = Array(repeating: [], count: batch)
        case .closed, .open:
            guard refinements.count == batch || refinements.count == 1 else {
                throw EvaluationError.invalidArgument("\(refinements.count) refinement sets for \(batch) queries")
            }
            sets = refinements.count == 1 ? Array(repeating: refinements[0], count: batch) : refinements
            for r in sets {
                guard r == Array(Set(r)).sorted(), r.allSatisfy({ (0...(steps - 2)).contains($0) }) else {
                    throw EvaluationError.invalidArgument(
                        "refinement steps \(r) must be increasing and within 0…\(steps - 2) for \(steps) steps")
                }
            }
        }
        guard mode == .none || policy != nil else {
            throw EvaluationError.invalidArgument("mode \(mode.rawValue) needs a policy")
        }
        var trajectories = (0..<batch).map {
            Trajectory(query: queries[$0], refinementSteps: sets[$0], actions: [], prompts: [(0, queries[$0])])
        }
        var result = RolloutResult(latents: Tensor.zeros([1]), images: [], trajectories: [])
        var schedule: [Int: [String?]] = [:]
        var onStep: ((StepState) throws -> [PromptUpdate]?)?

        func timed<T>(_ seconds: inout Double, _ body: () throws -> T) rethrows -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
            return try body()
        }

        switch mode {
        case .none:
            break
        case .feedForward:
            let states = queries.map { RefinementState(query: $0, prompt: $0, step: -1, totalSteps: steps) }
            let actions = try timed(&result.policySeconds) { try act(states) }
            schedule[0] = actions.map(\.prompt)
            for r in 0..<batch {
                trajectories[r].actions = [actions[r]]
                trajectories[r].prompts = [(0, actions[r].prompt)]
            }
        case .open:
            // Every prompt written before step 0, each from the previous one and its progress word;
            // the embeddings are computed up front so that sampling runs uninterrupted.
            var current = queries
            var ready: [Int: [(row: Int, embedding: PromptEmbedding)]] = [:]
            for i in 0..<(sets.map(\.count).max() ?? 0) {
                let rows = (0..<batch).filter { i < sets[$0].count }
                let states = rows.map {
                    RefinementState(query: queries[$0], prompt: current[$0], step: sets[$0][i], totalSteps: steps)
                }
                let actions = try timed(&result.policySeconds) { try act(states) }
                for (row, action) in zip(rows, actions) {
                    trajectories[row].actions.append(action)
                    guard action.prompt != current[row] else { continue }
                    current[row] = action.prompt
                    trajectories[row].prompts.append((action.state.step + 1, action.prompt))
                    ready[action.state.step, default: []].append((row, try pipeline.embed(action.prompt)))
                }
            }
            onStep = { state in
                guard let rows = ready[state.step] else { return nil }
                var updates = [PromptUpdate](repeating: .keep, count: batch)
                for (row, embedding) in rows { updates[row] = .conditioning(embedding) }
                return updates
            }
        case .closed:
            var current = queries
            onStep = { [self] state in
                let rows = (0..<batch).filter { sets[$0].contains(state.step) }
                guard !rows.isEmpty else { return nil }
                // x̂₀ of the rows that refine now, decoded: the policy's eyes.
                let images = timed(&result.decodeSeconds) {
                    pipeline.decodeImages(Tensor.cat(rows.map { state.predictedOriginal[$0].unsqueeze(0) }, dim: 0))
                }
                let states = zip(rows, images).map { row, image in
                    RefinementState(query: queries[row], prompt: current[row], step: state.step, totalSteps: steps,
                                    image: image)
                }
                let actions = try timed(&result.policySeconds) { try act(states) }
                var updates = [PromptUpdate](repeating: .keep, count: batch)
                for (row, action) in zip(rows, actions) {
                    trajectories[row].actions.append(action)
                    if action.prompt != current[row] {
                        trajectories[row].prompts.append((state.step + 1, action.prompt))
                        current[row] = action.prompt
                        updates[row] = .prompt(action.prompt)
                    }
                }
                return updates
            }
        }
        let sampled = try pipeline.sample(prompts: queries, negativePrompts: negativePrompts, options: options,
                                          schedule: schedule, onStep: onStep, progress: progress)
        result.latents = sampled.latents
        result.images = pipeline.decodeImages(sampled.latents)
        result.trajectories = trajectories
        return result
    }

    /// The policy's actions for `states`, checked: one per state.
    private func act(_ states: [RefinementState]) throws -> [RefinementAction] {
        guard let policy, !states.isEmpty else { return [] }
        let actions = try policy.act(states)
        guard actions.count == states.count else {
            throw EvaluationError.invalidArgument("the policy returned \(actions.count) actions for \(states.count) states")
        }
        return actions
    }
}
