import Imaging
import ShapeWorld
import Testing
@testable import Rewards

/// A rendered scene that satisfies `prompt` (ShapeWorld's renderer, seeded).
func render(_ prompt: String, seed: UInt64 = 1) throws -> RGBImage {
    var rng = SplitMix64(seed: seed)
    let scene = try SceneSampler().scene(for: PromptParser().parse(prompt).constraints, rng: &rng)
    return Renderer().render(scene)
}

struct FixedReward: Reward {
    var name = "fixed"
    var values: [Double]
    func score(_ inputs: [RewardInput]) throws -> [RewardScore] { values.map { RewardScore(value: $0) } }
}

@Suite struct ShapeEvalRewardTests {
    @Test func scoresAreAgainstTheQuery() throws {
        let image = try render("two red circles")
        let input = RewardInput(image: image, query: "two red circles")
        for kind in ShapeEvalReward.Kind.allCases {
            #expect(try ShapeEvalReward(kind).checkedScore([input])[0].value == 1, "\(kind)")
        }
        // The same image against another query (as if the policy had rewritten it): the query counts.
        let other = RewardInput(image: image, query: "a blue square")
        #expect(try ShapeEvalReward(.strict).checkedScore([other])[0].value == 0)
        let soft = try ShapeEvalReward(.soft).checkedScore([RewardInput(image: image, query: "two red circles and a blue square")])
        #expect(soft[0].value > 0 && soft[0].value < 1)
    }

    @Test func crowdingTheCanvasPassesStrictButNotStrictExact() throws {
        let crowded = try render("three red circles")
        let input = RewardInput(image: crowded, query: "a red circle")
        let s = try ShapeEvalReward(.strict).checkedScore([input])[0]
        #expect(s.value == 1 && s.details["strict_exact"] == 0)
        #expect(try ShapeEvalReward(.strictExact).checkedScore([input])[0].value == 0)
    }

    @Test func aQueryWithoutAShapeIsAnErrorNamingTheReward() throws {
        let image = try render("a red circle")
        do {
            _ = try ShapeEvalReward(.soft).checkedScore([RewardInput(image: image, query: "a bicycle")])
            Issue.record("scored a query with no shape")
        } catch let error as RewardError {
            #expect(error.description.contains("shapeeval_soft") && error.description.contains("a bicycle"))
        }
    }
}

@Suite struct CompositeRewardTests {
    @Test func weightsSumAndPartsAreKept() throws {
        let image = try render("a red circle")
        let inputs = [RewardInput(image: image, query: "a red circle"), RewardInput(image: image, query: "a blue square")]
        let composite = try CompositeReward([(ShapeEvalReward(.strict), 0.25), (FixedReward(values: [2, 4]), 0.5)])
        let scores = try composite.checkedScore(inputs)
        let expected: [Double] = [1.25, 2]
        #expect(scores.map(\.value) == expected)
        // Each part's score under its name, and ShapeEval's own details beside them.
        #expect(scores[0].details == ["shapeeval_strict": 1, "fixed": 2, "strict": 1, "soft": 1, "strict_exact": 1])
        #expect(composite.name == "0.25*shapeeval_strict+0.5*fixed")
    }

    @Test func aNonFiniteScoreIsAnErrorNamingTheReward() throws {
        let image = try render("a red circle")
        let inputs = [RewardInput(image: image, query: "q"), RewardInput(image: image, query: "q")]
        #expect(throws: RewardError.nonFinite(reward: "nan-maker", index: 1, value: .infinity)) {
            try FixedReward(name: "nan-maker", values: [1, .infinity]).checkedScore(inputs)
        }
        // Inside a composite the part is named, not the sum.
        let composite = try CompositeReward([(FixedReward(name: "broken", values: [.nan, 1]), 1)])
        do {
            _ = try composite.checkedScore(inputs)
            Issue.record("a NaN passed")
        } catch let error as RewardError {
            #expect(error.description.contains("`broken`"))
        }
        #expect(throws: RewardError.wrongCount(reward: "short", expected: 2, got: 1)) {
            try FixedReward(name: "short", values: [1]).checkedScore(inputs)
        }
    }

    @Test func specificationsParse() throws {
        #expect(try RewardSpec.parse("shapeeval_soft").name == "shapeeval_soft")
        #expect(try RewardSpec.parse("0.7*shapeeval_soft + 0.3*shapeeval_strict_exact").name
            == "0.7*shapeeval_soft+0.3*shapeeval_strict_exact")
        #expect(throws: RewardError.self) { try RewardSpec.parse("imagereward") }
        #expect(throws: RewardError.self) { try RewardSpec.parse("x*shapeeval_soft") }
        #expect(throws: RewardError.self) { try RewardSpec.parse("") }
        #expect(throws: RewardError.self) { try CompositeReward([]) }
        // `proxy` is a known name; without the proxy's folder it is an error that says what is missing.
        #expect(try RewardSpec.terms("0.5*proxy + shapeeval_soft").map(\.name) == ["proxy", "shapeeval_soft"])
        do {
            _ = try RewardSpec.parse("proxy")
            Issue.record("`proxy` without a folder parsed")
        } catch let error as RewardError {
            #expect(error.description.contains("Models/shapeworld-proxy"))
        }
    }

    @Test func aMonitorAddsDetailsButNeverTheValue() throws {
        let image = try render("two red circles")
        let inputs = [RewardInput(image: image, query: "two red circles"), RewardInput(image: image, query: "a blue square")]
        let scores = try MonitoredReward(FixedReward(values: [0.25, -0.5]), monitor: ShapeEvalReward(.soft))
            .checkedScore(inputs)
        #expect(scores.map(\.value) == [0.25, -0.5])
        #expect(scores.map { $0.details["strict"] } == [1, 0])
        #expect(MonitoredReward(FixedReward(values: []), monitor: ShapeEvalReward(.soft)).name == "fixed")
    }
}
