import Diffusion
import Foundation
import Imaging
import Testing
import Torch
import VisionLanguage
@testable import PromptLoop

/// The embedded model, loaded once per test (10 steps keep the loops short).
func embedded() throws -> StableDiffusionPipeline {
    try StableDiffusionPipeline.load(folder: repository + "/Models/shapeworld-sd", scheduler: "ddim")
}

let options = SamplingOptions(steps: 10, guidance: 5, seed: 0, rowSeeds: [3, 7])
let queries = ["two red circles", "a blue square left of a green triangle"]

@Suite struct RefinementTests {
    @Test func equalIntervalsAndWindows() {
        #expect(RefinementSteps.equalIntervals(count: 5, steps: 20) == [0, 4, 8, 12, 16])
        #expect(RefinementSteps.equalIntervals(count: 5, steps: 20, window: 0.5) == [0, 2, 4, 6, 8])
        #expect(RefinementSteps.equalIntervals(count: 1, steps: 20) == [0])
        // More refinements than steps that can use them: each usable step once, never T − 1.
        #expect(RefinementSteps.equalIntervals(count: 8, steps: 4) == [0, 1, 2])
        #expect(RefinementSteps.equalIntervals(count: 0, steps: 20).isEmpty)
    }

    @Test func theStateNamesQueryPromptAndProgress() {
        let s = RefinementState(query: "q", prompt: "p", step: 4, totalSteps: 20)
        #expect(s.progressWord == "p3" && s.text == "query: q\nprompt: p\np3")
        #expect(RefinementState(query: "q", prompt: "p", step: 19, totalSteps: 20).progressWord == "p10")
        #expect(RefinementState(query: "q", prompt: "p", step: -1, totalSteps: 20).progressWord == "p0")
        // A policy trained at 20 steps reads the same word at the same fraction of 50.
        #expect(RefinementState(query: "q", prompt: "p", step: 9, totalSteps: 50).progressWord
            == RefinementState(query: "q", prompt: "p", step: 3, totalSteps: 20).progressWord)
    }

    @Test func repliesParseIntoPromptsOrKeepTheCurrentOne() {
        let s = RefinementState(query: "q", prompt: "old", step: 0, totalSteps: 10)
        let good = RefinementAction.parse(reply: " a red circle \nmore", tokens: [1], logProbs: [-0.5], stopped: true, state: s)
        #expect(good.valid && good.prompt == "a red circle" && !good.truncated)
        let empty = RefinementAction.parse(reply: "  ", tokens: [2], logProbs: [-1], stopped: true, state: s)
        #expect(!empty.valid && empty.prompt == "old")
        let cut = RefinementAction.parse(reply: "a red", tokens: [3, 4], logProbs: [-1, -1], stopped: false, state: s)
        #expect(!cut.valid && cut.truncated && cut.prompt == "old")
    }
}

@Suite(.serialized) struct RolloutModeTests {
    @Test func closedLoopWithAPolicyThatRepeatsThePromptIsPlainSampling() throws {
        let pipe = try embedded()
        let plain = try RolloutEngine(pipeline: pipe, policy: nil, mode: .none)
            .run(queries: queries, refinements: [], options: options)
        let policy = ScriptedPolicy.repeating()
        let closed = try RolloutEngine(pipeline: pipe, policy: policy, mode: .closed)
            .run(queries: queries, refinements: [RefinementSteps.equalIntervals(count: 5, steps: 10)], options: options)
        #expect(closed.latents.equal(plain.latents))
        // The policy saw every row at every refinement step, with the decoded x̂₀.
        #expect(policy.seen.map(\.step) == [0, 0, 2, 2, 4, 4, 6, 6, 8, 8])
        #expect(policy.seen.allSatisfy { $0.image?.width == 64 && $0.totalSteps == 10 })
        #expect(closed.trajectories.allSatisfy { $0.actions.count == 5 && $0.prompts.count == 1 })
        #expect(closed.decodeSeconds > 0)
    }

    @Test func aScriptedReplyAtStepKIsThePipelinesScheduleAtKPlusOne() throws {
        let pipe = try embedded()
        let p = "three red circles"
        let policy = ScriptedPolicy { $0.step == 3 ? p : $0.prompt }
        let closed = try RolloutEngine(pipeline: pipe, policy: policy, mode: .closed)
            .run(queries: queries, refinements: [[1, 3], [3, 6]], options: options)
        let reference = try pipe.sample(prompts: queries, options: options, schedule: [4: [p, p]])
        #expect(closed.latents.equal(reference.latents))
        #expect(closed.trajectories[0].prompts.map(\.fromStep) == [0, 4])
        #expect(closed.trajectories[1].finalPrompt == p)
        // Only the rows whose R holds the step act there: step 1 for row 0, step 6 for row 1.
        #expect(policy.seen.map(\.step) == [1, 3, 3, 6])
    }

    @Test func openLoopWritesEveryPromptBeforeSamplingStarts() throws {
        let pipe = try embedded()
        var started = false
        var callsAfterStart = 0
        let policy = ScriptedPolicy { "\($0.prompt) \($0.progressWord)" }
        policy.onAct = { if started { callsAfterStart += 1 } }
        let r = try RolloutEngine(pipeline: pipe, policy: policy, mode: .open)
            .run(queries: queries, refinements: [[0, 5]], options: options) { _, _ in started = true }
        #expect(started && callsAfterStart == 0)
        // Each prompt came from the previous one, without an image.
        #expect(policy.seen.allSatisfy { $0.image == nil })
        #expect(r.trajectories[0].prompts.map(\.prompt) == [queries[0], queries[0] + " p1", queries[0] + " p1 p6"])
        let schedule: [Int: [String?]] = [1: r.trajectories.map { $0.prompts[1].prompt },
                                          6: r.trajectories.map { $0.prompts[2].prompt }]
        #expect(r.latents.equal(try pipe.sample(prompts: queries, options: options, schedule: schedule).latents))
    }

    @Test func feedForwardRewritesOnceBeforeStepZero() throws {
        let pipe = try embedded()
        let policy = ScriptedPolicy { _ in "a photo of two red circles" }
        let r = try RolloutEngine(pipeline: pipe, policy: policy, mode: .feedForward)
            .run(queries: queries, refinements: [[0, 4]], options: options)
        #expect(policy.seen.map(\.step) == [-1, -1] && policy.seen.allSatisfy { $0.image == nil })
        let reference = try pipe.sample(prompts: Array(repeating: "a photo of two red circles", count: 2), options: options)
        #expect(r.latents.equal(reference.latents))
    }

    @Test func invalidActionsKeepThePromptAndAreCounted() throws {
        let pipe = try embedded()
        let r = try RolloutEngine(pipeline: pipe, policy: ScriptedPolicy { _ in nil }, mode: .closed)
            .run(queries: queries, refinements: [[2, 5]], options: options)
        let plain = try pipe.sample(prompts: queries, options: options)
        #expect(r.latents.equal(plain.latents))
        #expect(r.trajectories.allSatisfy { $0.invalidActions == 2 })
    }

    @Test func badRefinementSetsAndMissingPoliciesAreErrors() throws {
        let pipe = try embedded()
        let engine = RolloutEngine(pipeline: pipe, policy: ScriptedPolicy.repeating(), mode: .closed)
        #expect(throws: EvaluationError.self) { try engine.run(queries: queries, refinements: [[9]], options: options) }
        #expect(throws: EvaluationError.self) { try engine.run(queries: queries, refinements: [[4, 2]], options: options) }
        #expect(throws: EvaluationError.self) {
            try engine.run(queries: queries, refinements: [[1], [2], [3]], options: options)
        }
        #expect(throws: EvaluationError.self) {
            try RolloutEngine(pipeline: pipe, policy: nil, mode: .open).run(queries: queries, refinements: [[1]], options: options)
        }
    }
}

@Suite struct PolicyTests {
    /// A LLaVA policy (the tiny fixture) acts on states with and without images in one batch, and
    /// each action keeps its tokens and log-probs.
    @Test func llavaPolicyActsOnMixedBatches() throws {
        let chat = try LlavaChat.load(folder: repository + "/Tests/VisionLanguageTests/Fixtures/tiny-llava")
        let policy = LlavaPolicy(chat: chat, sampling: SamplingConfig(greedy: true, maxNewTokens: 4))
        let image = RGBImage(width: 64, height: 64, fill: RGB(0.9, 0.2, 0.1))
        let states = [RefinementState(query: "q", prompt: "a", step: 0, totalSteps: 20, image: image),
                      RefinementState(query: "q", prompt: "b", step: 4, totalSteps: 20)]
        let actions = try policy.act(states)
        #expect(actions.count == 2)
        for a in actions {
            #expect(a.tokens.count == a.logProbs.count && !a.tokens.isEmpty)
            #expect(a.logProbs.allSatisfy { $0 <= 0 && $0.isFinite })
            #expect(a.valid || a.prompt == a.state.prompt)
        }
        // The same states again, greedy: the same actions.
        #expect(try policy.act(states).map(\.tokens) == actions.map(\.tokens))
    }
}

/// The overhead suite times every configuration it reports: plain once, open and closed loop at
/// N_R = 1, 3, 5, each with as many refinements as it says and the closed loop alone decoding x̂₀.
@Suite struct OverheadSuiteTests {
    @Test func everyRowIsTimedWithItsRefinements() throws {
        let pipe = try embedded()
        let policy = ScriptedPolicy.repeating()
        let suite = OverheadSuite(benchmark: RefineBenchmark(pipeline: pipe, policy: policy, refinements: [], batch: 1,
                                                             steps: 6, repeats: 1))
        let rows = try suite.run(prompt: "a red circle")
        #expect(rows.map(\.mode) == [.none, .open, .closed, .open, .closed, .open, .closed])
        #expect(rows.map(\.count) == [0, 1, 1, 3, 3, 5, 5])
        for r in rows {
            #expect(r.secondsPerImage > 0)
            #expect((r.decodePerImage > 0) == (r.mode == .closed), "\(r.mode) \(r.count)")
        }
        // Warm-up and one timed round: the policy acted 2 × (1 + 3 + 5) times per mode pair.
        #expect(policy.seen.count == 2 * 2 * (1 + 3 + 5))
        let table = OverheadSuite.markdown(rows)
        #expect(table.split(separator: "\n").count == 2 + 4)
        #expect(table.contains("1.23×"))
    }
}
