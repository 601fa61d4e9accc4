import Foundation
import ShapeWorld
import Testing
@testable import PromptLoop

/// Prompt fidelity on hand-made cases: what the final prompt keeps of the query, what it adds, and
/// the text encoder's cosine (1 for the query itself, lower for a drifted prompt).
@Suite struct FidelityTests {
    let query = PromptParser().parse("two red circles left of a blue square").constraints

    @Test func keptConstraintsAndAdditions() {
        let same = PromptFidelity.measure(query: query, final: "a photo of two red circles left of a blue square")
        #expect(same == PromptFidelity(constraintsKept: 1, namesSomethingElse: false))
        // The count changed (one circle), the square and the relation dropped: nothing of three kept.
        let lost = PromptFidelity.measure(query: query, final: "a red circle")
        #expect(lost == PromptFidelity(constraintsKept: 0, namesSomethingElse: false))
        // All kept, a green triangle added.
        let added = PromptFidelity.measure(query: query, final: "two red circles left of a blue square and a green triangle")
        #expect(added.constraintsKept == 1 && added.namesSomethingElse)
        // The square kept, the circles and the relation not: one of three.
        let part = PromptFidelity.measure(query: query, final: "a blue square")
        #expect(abs(part.constraintsKept - 1.0 / 3) < 1e-12 && !part.namesSomethingElse)
    }

    @Test func cosineOfTheQueryItselfIsOne() throws {
        let pipe = try embedded()
        let c = PromptFidelity.cosines(["two red circles left of a blue square", "two red circles left of a blue square"],
                                       ["two red circles left of a blue square", "a large yellow triangle"],
                                       pipeline: pipe)
        #expect(c.count == 2 && abs(c[0] - 1) < 1e-5 && c[1] < c[0] - 0.01, "\(c)")
    }
}
