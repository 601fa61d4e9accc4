import Foundation
import Testing
import Tokenizers
@testable import PromptLoop

@Suite struct PaperSuiteTests {
    /// Items of one method: `strict(category, prompt, seed)` for `prompts` prompts in each of two
    /// categories and `seeds` seeds.
    func items(prompts: Int = 3, seeds: Int, strict: (Int, Int, Int) -> Double) -> [MethodItem] {
        (0..<seeds).flatMap { seed in
            (0..<2).flatMap { c in
                (0..<prompts).map { p in
                    let v = strict(c, p, seed)
                    return MethodItem(id: "c\(c)-p\(p)", category: ["position", "counting"][c], seed: seed, strict: v,
                                      soft: v, strictExact: v, objects: 2, finalPrompt: "two red circles", invalidActions: 0)
                }
            }
        }
    }

    func bootstrap(_ items: [MethodItem]) -> PairedBootstrap {
        PairedBootstrap(ids: items.map { ($0.id, $0.category) }, resamples: 200, seed: 1)
    }

    @Test func parsesAChatModelPolicy() throws {
        #expect(try MethodSpec.parse("smol=feed-forward~M.gguf")
            == MethodSpec(name: "smol", mode: .feedForward, refinements: 1, chatModel: "M.gguf"))
        #expect(try MethodSpec.parse("smol=open:3~M@L")
            == MethodSpec(name: "smol", mode: .open, refinements: 3, unetLoRA: "L", chatModel: "M"))
        // A chat model sees no image, and an adapter belongs to the LLaVA policy.
        for bad in ["x=closed:5~M", "x=feed-forward:1:A~M", "x=feed-forward~", "x=none~M"] {
            #expect(throws: EvaluationError.self, "\(bad)") { try MethodSpec.parse(bad) }
        }
        // Specs without a chat model encode as before, so existing caches' spec files still match.
        let data = try JSONEncoder().encode(MethodSpec(name: "p", mode: .closed, refinements: 5, adapter: "A"))
        #expect(!String(decoding: data, as: UTF8.self).contains("chatModel"))
    }

    @Test func aShiftedMethodDiffersByExactlyItsShift() throws {
        // Overall = mean of the category means: category 0 scores 0.2, category 1 scores 0.6.
        let a = items(seeds: 2) { c, _, _ in c == 0 ? 0.2 : 0.6 }
        let b = items(seeds: 2) { c, _, _ in c == 0 ? 0.45 : 0.85 }
        let bs = bootstrap(a)
        let overall = try bs.estimate(a, value: \.strict).overall
        #expect(abs(overall.mean - 0.4) < 1e-12)
        let d = try bs.estimate(b, minus: a, value: \.strict).overall
        #expect(abs(d.mean - 0.25) < 1e-12 && abs(d.low - 0.25) < 1e-12 && abs(d.high - 0.25) < 1e-12)
        let same = try bs.estimate(a, minus: a, value: \.strict).overall
        #expect(same.mean == 0 && same.low == 0 && same.high == 0)
    }

    @Test func differencesUseOnlyTheSeedsBothRowsHave() throws {
        // Four seeds of a headline row: seeds 2 and 3 pass, 0 and 1 fail. The two-seed row fails on
        // 0 and 1, so on the seeds both have the rows do not differ at all.
        let headline = items(seeds: 4) { _, _, seed in seed >= 2 ? 1 : 0 }
        let intermediate = items(seeds: 2) { _, _, _ in 0 }
        let (x, y) = PairedBootstrap.onCommonSeeds(intermediate, headline)
        #expect(Set(x.map(\.seed)) == [0, 1] && Set(y.map(\.seed)) == [0, 1])
        let suite = PaperSuite(kind: .ablation, rows: [
            .init(spec: MethodSpec(name: "plain", mode: .none), label: "plain", against: nil, headline: true, side: false),
            .init(spec: MethodSpec(name: "b", mode: .feedForward, refinements: 1), label: "b", against: "plain",
                  headline: false, side: false),
        ])
        let s = try suite.summaries([headline, intermediate], bootstrap: bootstrap(headline)) { _ in 0 }
        #expect(s[0].seeds == 4 && s[1].seeds == 2)
        #expect(s[0].minusPlain == nil && s[0].against == nil)
        #expect(abs(s[0].strict.mean - 0.5) < 1e-12)
        #expect(s[1].against == "plain" && s[1].minusAgainst?.mean == 0 && s[1].minusPlain?.mean == 0)
        #expect(s[1].unknownWordsPerPrompt == 0 && s[1].promptsWithUnknownWords == 0)
        // Through the comparison table too: without the restriction the difference would be −0.5.
        let table = ComparisonTable(set: "t", methods: suite.rows.map(\.spec), items: [headline, intermediate], resamples: 200)
        let json = try JSONSerialization.jsonObject(with: table.json()) as! [String: Any]
        let rows = json["methods"] as! [[String: Any]]
        #expect((rows[1]["strict_minus_plain"] as! [Double])[0] == 0)
        #expect(PaperSuite.markdown(s).contains("| 2 |"))
    }

    @Test func theAblationRunsIntermediateRowsOnTwoSeedsAndNamesWhatItLacks() {
        let suite = PaperSuite.ablation(adapters: "A", chatModel: "M")
        let names = suite.rows.map(\.spec.name)
        #expect(names == ["plain", "pretrained-ff", "grpo-ff", "grpo-open-trained", "grpo", "pretrained", "smollm2-ff"])
        // Each row of the chain extends the one above it.
        for (row, previous) in zip(suite.rows.filter { !$0.side }.dropFirst(), suite.rows.filter { !$0.side }) {
            #expect(row.against == previous.spec.name)
        }
        let seeds = suite.rows.map { suite.seeds(of: $0, given: 4) }
        #expect(seeds == [4, 4, 4, 2, 4, 2, 2])
        #expect(suite.missing { $0 == "A/promptloop" } == ["A/feed-forward", "A/open", "M"])
        #expect(!PaperSuite.ablation(chatModel: nil).rows.contains { $0.spec.chatModel != nil })
        // The main table shares the cache names of `eval methods` and of the stacking rows.
        #expect(PaperSuite.main().rows.map(\.spec.name)
            == ["plain", "grpo-ff", "grpo", "grpo-open", "ddpo", "ddpo-grpo", "dpo", "dpo-grpo"])
    }

    @Test func countsWordsOutsideTheModelsVocabulary() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vocab-\(UUID().uuidString).json")
        let json = #"""
            {"version": "1.0", "added_tokens": [], "normalizer": {"type": "Lowercase"},
             "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
             "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "two": 1, "red": 2, "circles": 3, "a": 4},
                       "unk_token": "<unk>"}}
            """#
        try json.write(to: url, atomically: true, encoding: .utf8)
        let tokenizer = try PreTrainedTokenizer(tokenizerJSON: url)
        #expect(PaperSuite.unknownWords(in: "Two red circles", tokenizer: tokenizer) == 0)
        #expect(PaperSuite.unknownWords(in: "two majestic red circles, glowing", tokenizer: tokenizer) == 3)
        #expect(PaperSuite.unknownWords(in: "two red circles", tokenizer: tokenizer, unknownToken: "<none>") == 0)
    }

    @Test func readsALearningCurveKeepingTheLastLineOfAnIteration() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("curve-\(UUID().uuidString).jsonl").path
        let lines = [
            #"{"iteration":0,"eval/strict":0.2}"#,
            #"{"iteration":1,"reward":0.3}"#,
            #"{"iteration":2,"reward":0.4,"eval/strict":0.3}"#,
            #"{"iteration":2,"reward":0.4,"eval/strict":0.35}"#,
            #"{"iteration":3,"rew"#,
        ]
        try (lines.joined(separator: "\n")).write(toFile: path, atomically: true, encoding: .utf8)
        let curve = try PaperSuite.curve(metrics: path, key: "eval/strict")
        #expect(curve.map(\.0) == [0, 2] && curve.map(\.1) == [0.2, 0.35])
        #expect(try PaperSuite.curve(metrics: path, key: "reward").map(\.0) == [1, 2])
        #expect(throws: EvaluationError.self) { try PaperSuite.curve(metrics: path + ".missing", key: "reward") }
    }
}
