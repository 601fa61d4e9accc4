import Foundation
import Testing

@testable import ShapeWorld

@Suite("Versioned prompt sets (Data/shapeworld/v1)")
struct PromptSetTests {
    let directory = packageRoot.appendingPathComponent("Data/shapeworld/v1")

    func load(_ name: String) throws -> [PromptRecord] {
        try PromptSets.readJSONLines(path: directory.appendingPathComponent(name).path)
    }

    @Test("the committed files are exactly what the recorded command generates")
    func regenerate() throws {
        let sets = PromptSetGenerator(seed: 20_260_401).generate()
        let splits = [("train.jsonl", sets.train), ("eval.jsonl", sets.eval), ("novel.jsonl", sets.novel)]
        for (name, records) in splits {
            let committed = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            #expect(try PromptSets.jsonLines(records) == committed, "\(name) differs from its generator")
        }
    }

    @Test("eval has ≥ 600 prompts balanced over the six categories, outside the hold-out")
    func evalBalanced() throws {
        let eval = try load("eval.jsonl")
        #expect(eval.count >= 600)
        let counts = Dictionary(grouping: eval, by: \.category).mapValues(\.count)
        #expect(Set(counts.keys) == Set(PromptCategory.geneval))
        #expect(Set(counts.values).count == 1)
        #expect(eval.allSatisfy { !HoldOut.v1.touches(constraints: $0.constraints) })
    }

    @Test("train never touches the hold-out; every novel prompt does")
    func novelSplit() throws {
        let train = try load("train.jsonl")
        let novel = try load("novel.jsonl")
        #expect(train.count > 1000)
        #expect(!novel.isEmpty)
        #expect(train.allSatisfy { !HoldOut.v1.touches(constraints: $0.constraints) })
        #expect(novel.allSatisfy { HoldOut.v1.touches(constraints: $0.constraints) })
        // No novel colour–shape(-count) combination occurs anywhere in train.
        var trainPairs = Set<ColorShape>()
        var trainCounts = Set<Combination>()
        for r in train {
            for q in r.constraints.objects {
                guard let c = q.color, let s = q.shape else { continue }
                trainPairs.insert(ColorShape(color: c, shape: s))
                trainCounts.insert(Combination(color: c, shape: s, count: q.count))
            }
        }
        for p in HoldOut.v1.pairs { #expect(!trainPairs.contains(p)) }
        for t in HoldOut.v1.triples { #expect(!trainCounts.contains(t)) }
    }

    @Test("in counting, position and color_attr no eval prompt is a train prompt")
    func evalDisjoint() throws {
        let train = Set(try load("train.jsonl").map { $0.constraints.canonical() })
        for r in try load("eval.jsonl") where PromptSetGenerator.disjointCategories.contains(r.category) {
            #expect(!train.contains(r.constraints.canonical()), "\(r.prompt)")
        }
    }

    @Test("every prompt in every split parses to its recorded constraints")
    func recordsParse() throws {
        let parser = PromptParser()
        for name in ["train.jsonl", "eval.jsonl", "novel.jsonl"] {
            for r in try load(name) {
                let parsed = parser.parse(r.prompt)
                #expect(parsed.unknownWords.isEmpty)
                #expect(parsed.constraints.canonical() == r.constraints.canonical(), "\(r.prompt)")
            }
        }
    }
}
