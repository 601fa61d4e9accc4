import Foundation
import Testing
@testable import PromptLoop

@Suite struct HackingStudyTests {
    /// A run folder with a metrics log as the trainers write it: iteration 0's evaluation on its own
    /// line, later ones merged into their iteration's line.
    func folder(_ lines: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hacking-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("metrics.jsonl"),
                                                         atomically: true, encoding: .utf8)
        return dir.path
    }

    @Test func readsTheHeldOutCurveAndJudgesAgainstNoise() throws {
        let path = try folder([
            #"{"iteration":0,"eval/reward":0.40,"eval/strict":0.50,"eval/soft":0.60}"#,
            #"{"iteration":1,"images":8,"reward":0.30,"kl":0.001,"rollout/strict":0.4}"#,
            #"{"iteration":2,"images":16,"reward":0.35,"kl":0.002,"rollout/strict":0.4,"eval/reward":0.45,"eval/strict":0.55,"eval/soft":0.62}"#,
            #"{"iteration":3,"images":24,"reward":0.50,"kl":0.004,"rollout/strict":0.2}"#,
            #"{"iteration":4,"images":32,"reward":0.60,"kl":0.008,"rollout/strict":0.1,"eval/reward":0.55,"eval/strict":0.20,"eval/soft":0.40}"#,
        ])
        let r = try HackingStudy.read(.init(name: "m", folder: path, divergenceKey: "kl", divergenceLabel: "KL"))
        #expect(r.points.map(\.images) == [0, 16, 32])
        #expect(r.points.map(\.proxy) == [0.40, 0.45, 0.55])
        #expect(r.peakStrict == 0.55 && r.final.strict == 0.20)
        #expect(r.divergence.map { $0[1] } == [0.001, 0.002, 0.004, 0.008])
        // Proxy up 0.15, strict down 0.30: beyond 2 SE (√(2·0.25/48) ≈ 0.102 → 0.204) at 48 prompts,
        // within it at 4.
        #expect(r.verdict(prompts: 48) == "hacks")
        #expect(r.verdict(prompts: 4) == "drifts")
        #expect(HackingStudy.markdown([r], heldOut: 48).contains("**hacks**"))
    }

    @Test func aProxyThatFallsIsNotHacking() throws {
        let path = try folder([
            #"{"iteration":0,"eval/reward":0.40,"eval/strict":0.50,"eval/soft":0.60}"#,
            #"{"iteration":2,"images":16,"reward":0.3,"eval/reward":0.30,"eval/strict":0.10,"eval/soft":0.30}"#,
        ])
        let r = try HackingStudy.read(.init(name: "m", folder: path, divergenceKey: "kl", divergenceLabel: "KL"))
        #expect(r.verdict(prompts: 48) == "no")
    }

    @Test func aRunWithoutHeldOutProxyScoresIsAnErrorNamingIt() throws {
        let path = try folder([#"{"iteration":0,"eval/strict":0.5,"eval/soft":0.6}"#])
        do {
            _ = try HackingStudy.read(.init(name: "ddpo", folder: path, divergenceKey: "kl", divergenceLabel: "KL"))
            Issue.record("a log without eval/reward was read")
        } catch {
            #expect("\(error)".contains("ddpo") && "\(error)".contains("eval/reward"))
        }
        #expect(throws: EvaluationError.self) {
            try HackingStudy.read(.init(name: "x", folder: "/nonexistent", divergenceKey: "kl", divergenceLabel: "KL"))
        }
    }
}
