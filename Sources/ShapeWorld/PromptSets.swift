// The versioned prompt sets: train queries, the balanced eval set and the novel-combinations split.

import Foundation

/// One line of a prompt-set JSONL file.
public struct PromptRecord: Hashable, Codable, Sendable {
    public var id: String
    public var category: PromptCategory
    public var prompt: String
    public var constraints: ConstraintSet
    /// Seed for rendering reference scenes or sampling images of this prompt.
    public var seed: UInt64

    public init(
        id: String, category: PromptCategory, prompt: String, constraints: ConstraintSet, seed: UInt64
    ) {
        self.id = id
        self.category = category
        self.prompt = prompt
        self.constraints = constraints
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case id, category, prompt, constraints, seed
    }
}

/// The three splits of a prompt-set version.
public struct PromptSets: Sendable {
    public var train: [PromptRecord]
    public var eval: [PromptRecord]
    public var novel: [PromptRecord]
    public var holdOut: HoldOut

    public init(train: [PromptRecord], eval: [PromptRecord], novel: [PromptRecord], holdOut: HoldOut) {
        self.train = train
        self.eval = eval
        self.novel = novel
        self.holdOut = holdOut
    }
}

/// Generates the prompt sets deterministically from a seed.
///
/// - `train`: up to `trainPerCategory` distinct canonical prompts per GenEval category, none
///   touching the hold-out.
/// - `eval`: `evalPerCategory` prompts per category (distinct while the category has enough distinct
///   prompts, then repeated with a new seed), none touching the hold-out. In `disjointCategories`
///   train holds none of the eval prompts; the three small categories share them.
/// - `novel`: `novelPerCategory` prompts for each of colors, counting, position and color_attr that
///   each touch the hold-out: combinations no training query, caption or scene ever contains.
///
/// ```swift
/// let sets = PromptSetGenerator(seed: 20_260_401).generate()
/// try sets.write(to: "Data/shapeworld/v1")
/// ```
public struct PromptSetGenerator: Sendable {
    public var seed: UInt64
    public var holdOut: HoldOut
    public var trainPerCategory: Int
    public var evalPerCategory: Int
    public var novelPerCategory: Int

    public init(
        seed: UInt64, holdOut: HoldOut = .v1, trainPerCategory: Int = 600, evalPerCategory: Int = 100,
        novelPerCategory: Int = 40
    ) {
        self.seed = seed
        self.holdOut = holdOut
        self.trainPerCategory = trainPerCategory
        self.evalPerCategory = evalPerCategory
        self.novelPerCategory = novelPerCategory
    }

    /// Categories large enough that train leaves out every eval prompt. (single_object, two_object
    /// and colors have only 12–84 distinct prompts, so eval and train share them.)
    public static let disjointCategories: [PromptCategory] = [.counting, .position, .colorAttribution]

    /// The categories the novel split covers (those that name colours).
    public static let novelCategories: [PromptCategory] = [.colors, .counting, .position, .colorAttribution]

    public func generate() -> PromptSets {
        let grammar = PromptGrammar()
        var rng = SplitMix64(seed: seed, stream: 1)
        func draw(
            _ category: PromptCategory, count: Int, unique: Bool, prefix: String,
            accept: (ConstraintSet) -> Bool
        ) -> [PromptRecord] {
            var records: [PromptRecord] = []
            var seen = Set<ConstraintSet>()
            var misses = 0
            while records.count < count {
                let p = grammar.sample(category, rng: &rng)
                guard accept(p.constraints) else { continue }
                let key = p.constraints.canonical()
                if seen.contains(key) {
                    misses += 1
                    // Small categories: after 2,000 draws in a row found nothing new, stop (train)
                    // or allow repeats (eval).
                    if misses < 2_000 { continue }
                    if unique { break }
                }
                seen.insert(key)
                misses = 0
                let id = "\(prefix)-\(category.rawValue)-\(String(format: "%04d", records.count))"
                records.append(
                    PromptRecord(
                        id: id, category: category, prompt: p.text, constraints: p.constraints,
                        seed: rng.next() >> 16))
            }
            return records
        }
        let outside = { (c: ConstraintSet) in !holdOut.touches(constraints: c) }
        var eval: [PromptRecord] = []
        for c in PromptCategory.geneval {
            eval += draw(c, count: evalPerCategory, unique: false, prefix: "eval", accept: outside)
        }
        var novel: [PromptRecord] = []
        for c in Self.novelCategories {
            novel += draw(c, count: novelPerCategory, unique: false, prefix: "novel") {
                holdOut.touches(constraints: $0)
            }
        }
        var train: [PromptRecord] = []
        for c in PromptCategory.geneval {
            let held = Set(eval.filter { $0.category == c }.map { $0.constraints.canonical() })
            let disjoint = Self.disjointCategories.contains(c)
            train += draw(c, count: trainPerCategory, unique: true, prefix: "train") {
                outside($0) && !(disjoint && held.contains($0.canonical()))
            }
        }
        return PromptSets(train: train, eval: eval, novel: novel, holdOut: holdOut)
    }
}

extension PromptSets {
    /// JSON Lines of `records`, keys sorted, one record per line.
    public static func jsonLines(_ records: [PromptRecord]) throws(ShapeWorldError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines: [String] = []
        for record in records {
            do {
                lines.append(String(decoding: try encoder.encode(record), as: UTF8.self))
            } catch {
                throw .invalidArgument(name: "record \(record.id)", reason: "cannot encode: \(error)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a JSON Lines prompt file.
    public static func readJSONLines(path: String) throws(ShapeWorldError) -> [PromptRecord] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path: path, reason: "no such file")
        }
        let decoder = JSONDecoder()
        var out: [PromptRecord] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            do {
                out.append(try decoder.decode(PromptRecord.self, from: Data(line.utf8)))
            } catch {
                throw .unreadableFile(path: path, reason: "line \(n + 1): \(error)")
            }
        }
        return out
    }

    /// Writes train.jsonl, eval.jsonl, novel.jsonl and holdout.json into `directory`.
    public func write(to directory: String) throws(ShapeWorldError) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .unwritableFile(path: directory, reason: "\(error)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let holdOutJSON: String
        do {
            holdOutJSON = String(decoding: try encoder.encode(holdOut), as: UTF8.self) + "\n"
        } catch {
            throw .invalidArgument(name: "hold-out", reason: "cannot encode: \(error)")
        }
        let files = [
            ("train.jsonl", try Self.jsonLines(train)), ("eval.jsonl", try Self.jsonLines(eval)),
            ("novel.jsonl", try Self.jsonLines(novel)), ("holdout.json", holdOutJSON),
        ]
        for (name, text) in files {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw .unwritableFile(path: path, reason: "\(error)")
            }
        }
    }
}
