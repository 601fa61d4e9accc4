import Foundation
import Testing

@testable import Tokenizers

/// The hand-compiled scanners for the well-known split regexes against the general regex engine
/// (`NSRegularExpression`, used for any other pattern) on the parity corpus.
@Suite struct PatternTests {
    static let sources: [(String, SplitPattern)] = [
        (SplitPattern.gpt2Source, .gpt2), (SplitPattern.qwen2Source, .qwen2),
        (SplitPattern.llama3Source, .llama3), (SplitPattern.clipSource, .clip),
        (#"\s+"#, .whitespaceRuns), (#"\w+|[^\w\s]+"#, .wordsAndPunctuation),
    ]

    @Test(arguments: 0..<sources.count)
    func scannerAgreesWithRegexEngine(index: Int) throws {
        let (source, scanner) = Self.sources[index]
        let regex = SplitPattern.regex(RegexBox(try NSRegularExpression(pattern: source)))
        var texts = Fixtures.corpus
        // Lower-cased too, as CLIP sees it, and a few cases aimed at the alternations.
        texts += texts.map { $0.lowercased() }
        texts += ["'S 'Ll 'VE", "x'ſ", " \n\n a", "a \t\n b", "!!\n\n\nx", "  ", " \r\n", "1234567", "٣٤٥"]
        var mismatches = 0
        for text in texts {
            let s = Array(text.unicodeScalars)
            var a: [Range<Int>] = []
            var b: [Range<Int>] = []
            scanner.matches(s, into: &a)
            regex.matches(s, into: &b)
            if a != b {
                mismatches += 1
                if mismatches <= 3 {
                    Issue.record("\(source) on \(String(reflecting: text)): scanner \(a) regex \(b)")
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func unknownRegexFallsBackToRegexEngine() throws {
        let pattern = try SplitPattern.make(.regex(#"[0-9]+|[a-z]+"#), path: "p", field: "f")
        var out: [Range<Int>] = []
        pattern.matches(Array("ab12 c".unicodeScalars), into: &out)
        #expect(out == [0..<2, 2..<4, 5..<6])
        #expect(throws: TokenizersError.self) {
            try SplitPattern.make(.regex("(unclosed"), path: "p", field: "f")
        }
    }
}
