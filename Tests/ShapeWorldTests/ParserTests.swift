import Foundation
import Testing

@testable import ShapeWorld

@Suite("Grammar, paraphrases and parser")
struct ParserTests {
    let parser = PromptParser()

    @Test("canonical prompts of every category parse back exactly", arguments: PromptCategory.allCases)
    func canonicalRoundTrip(category: PromptCategory) {
        var rng = SplitMix64(seed: 100)
        for _ in 0..<200 {
            let prompt = PromptGrammar().sample(category, rng: &rng)
            let parsed = parser.parse(prompt.text)
            #expect(parsed.unknownWords.isEmpty, "\(prompt.text)")
            #expect(parsed.constraints.canonical() == prompt.constraints.canonical(), "\(prompt.text)")
        }
    }

    @Test("every paraphrase the generator makes parses back exactly", arguments: PromptCategory.allCases)
    func paraphraseRoundTrip(category: PromptCategory) {
        var rng = SplitMix64(seed: 200)
        let grammar = PromptGrammar()
        var texts = Set<String>()
        for _ in 0..<400 {
            let prompt = grammar.sample(category, rng: &rng)
            let text = grammar.paraphraser.paraphrase(prompt.constraints, rng: &rng)
            texts.insert(text)
            let parsed = parser.parse(text)
            #expect(parsed.unknownWords.isEmpty, "\(text)")
            #expect(parsed.constraints.canonical() == prompt.constraints.canonical(), "\(text)")
        }
        // The paraphraser really varies the wording.
        #expect(texts.count > 150)
    }

    @Test("hand-written rewrites (Data/shapeworld/rewrites-v1.jsonl) parse as annotated")
    func handWrittenRewrites() throws {
        struct Rewrite: Decodable {
            var text: String
            var expect: String
            var unknown: [String]?
        }
        let url = packageRoot.appendingPathComponent("Data/shapeworld/rewrites-v1.jsonl")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 40)
        for line in lines {
            let rewrite = try JSONDecoder().decode(Rewrite.self, from: Data(line.utf8))
            let parsed = parser.parse(rewrite.text)
            #expect(
                parsed.constraints.canonical() == expectation(rewrite.expect).canonical(),
                "\(rewrite.text) → \(parsed.constraints)")
            #expect(parsed.unknownWords == (rewrite.unknown ?? []), "\(rewrite.text)")
        }
    }

    @Test("unknown words are reported, unparseable prompts throw a clear error")
    func unknownWords() throws {
        let parsed = parser.parse("a purple zebra next to a red circle")
        #expect(parsed.unknownWords == ["zebra"])
        #expect(throws: ShapeWorldError.self) { try parser.parseChecked("a cat on a mat") }
        do {
            _ = try parser.parseChecked("a cat on a mat")
        } catch {
            #expect(error.description.contains("cat"))
            #expect(error.description.contains("mat"))
        }
        #expect(throws: ShapeWorldError.self) {
            try parser.parseChecked("a red circle, vaporwave", strict: true)
        }
        #expect(try parser.parseChecked("a red circle").constraints.objects.count == 1)
    }

    @Test("dense captions are true of their scenes and parse back")
    func denseCaptions() {
        var rng = SplitMix64(seed: 300)
        let grammar = PromptGrammar()
        for _ in 0..<300 {
            let scene = SceneSampler().randomScene(rng: &rng)
            let caption = grammar.denseCaption(of: scene)
            #expect(sceneSatisfies(scene, caption.constraints, relationMargin: 8), "\(caption.text)")
            #expect(parser.parse(caption.text).constraints.canonical() == caption.constraints.canonical())
        }
    }
}
