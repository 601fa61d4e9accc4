// `promptloop shapeworld …`: render prompts, score images, sample prompts, measure the detector,
// write the versioned prompt sets and contact sheets.

import ArgumentParser
import Foundation
import Imaging
import ShapeWorld

extension PromptCategory: ExpressibleByArgument {}
extension ImageCondition: ExpressibleByArgument {}

/// The `shapeworld` command group.
struct ShapeWorldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapeworld",
        abstract: "ShapeWorld: render, score and sample prompts about coloured shapes.",
        subcommands: [
            Render.self, Score.self, Sample.self, Accuracy.self, PromptSetsCommand.self, Sheet.self,
        ])

    // MARK: render

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render a 64×64 scene that satisfies a prompt and write it as PNG.")

        @Argument(help: "The prompt, e.g. \"two red circles left of a blue square\".")
        var prompt: String

        @Option(help: "Seed for placement and unspecified attributes.")
        var seed: UInt64 = 0

        @Option(help: "Output PNG path.")
        var out: String

        @Option(help: "Image condition: clean, blur, noise, jitter, down-up, combined or harsh.")
        var condition: ImageCondition = .clean

        @Option(help: "Integer enlargement of the written image (nearest neighbour).")
        var scale: Int = 1

        func run() throws {
            guard scale >= 1 && scale <= 16 else {
                throw ValidationError("--scale must be between 1 and 16")
            }
            let parsed = try PromptParser().parseChecked(prompt)
            var rng = SplitMix64(seed: seed)
            let scene = try SceneSampler().scene(for: parsed.constraints, rng: &rng)
            var image = condition.image(of: scene, rng: &rng)
            if scale > 1 { image = image.enlarged(by: scale) }
            try PNG.write(image, to: out)
            if !parsed.unknownWords.isEmpty {
                let words = parsed.unknownWords.joined(separator: ", ")
                FileHandle.standardError.write(Data("warning: ignored unknown words: \(words)\n".utf8))
            }
            let objects = scene.objects.map(\.phrase).joined(separator: ", ")
            print("wrote \(out): \(objects)")
        }
    }

    // MARK: score

    struct Score: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score how well an image (any PNG, resized to 64×64) matches a prompt; prints JSON.")

        @Argument(help: "PNG image to score.")
        var image: String

        @Argument(help: "The prompt the image should show.")
        var prompt: String

        @Flag(help: "Fail on unknown words instead of reporting them.")
        var strict = false

        func run() throws {
            let parsed = try PromptParser().parseChecked(prompt, strict: strict)
            let picture = try PNG.read(from: image)
            let result = ShapeEval().score(picture, parsed.constraints)
            let report = ScoreReport(
                image: image, prompt: prompt, unknownWords: parsed.unknownWords,
                constraints: result.constraints, strict: result.strict, soft: result.soft,
                detections: result.detections)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
    }

    struct ScoreReport: Codable {
        var image: String
        var prompt: String
        var unknownWords: [String]
        var constraints: [ConstraintResult]
        var strict: Double
        var soft: Double
        var detections: [Detection]

        enum CodingKeys: String, CodingKey {
            case image, prompt
            case unknownWords = "unknown_words"
            case constraints, strict, soft, detections
        }
    }

    // MARK: sample

    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print random prompts of a category.")

        @Option(help: "single_object, two_object, counting, colors, position, color_attr or dense.")
        var category: PromptCategory = .counting

        @Option(name: .short, help: "How many prompts.")
        var n: Int = 10

        @Option(help: "Random seed.")
        var seed: UInt64 = 0

        @Flag(help: "Print random paraphrases instead of the canonical wording.")
        var paraphrase = false

        @Flag(help: "Print JSON Lines with the constraints.")
        var json = false

        @Flag(help: "Exclude the v1 novel-combination hold-out (as training does).")
        var excludeHoldout = false

        func run() throws {
            guard n >= 0 else { throw ValidationError("-n must not be negative") }
            var rng = SplitMix64(seed: seed)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for prompt in PromptGrammar().samples(category, count: n, excludingHoldOut: excludeHoldout,
                                                  paraphrase: paraphrase, rng: &rng) {
                print(json ? String(decoding: try encoder.encode(prompt), as: UTF8.self) : prompt.text)
            }
        }
    }

    // MARK: accuracy

    struct Accuracy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the detector on fresh scenes; prints Markdown with confusion matrices.")

        @Option(help: "Scenes per condition.")
        var scenes: Int = 5000

        @Option(help: "Seed of the scene stream (use one never used for tuning when reporting).")
        var seed: UInt64 = 1

        @Option(help: "Conditions to measure (repeatable); default all.")
        var condition: [ImageCondition] = []

        func run() throws {
            guard scenes > 0 else { throw ValidationError("--scenes must be positive") }
            let conditions = condition.isEmpty ? ImageCondition.allCases : condition
            for c in conditions {
                let report = AccuracyReport.measure(scenes: scenes, seed: seed, condition: c)
                print(report.markdown())
            }
        }
    }

    // MARK: prompt-sets

    struct PromptSetsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prompt-sets", abstract: "Write the versioned prompt sets (train, eval, novel).")

        @Option(help: "Output directory.")
        var out: String

        @Option(help: "Generation seed.")
        var seed: UInt64 = 20_260_401

        func run() throws {
            let sets = PromptSetGenerator(seed: seed).generate()
            try sets.write(to: out)
            print("train \(sets.train.count), eval \(sets.eval.count), novel \(sets.novel.count) → \(out)")
        }
    }

    // MARK: sheet

    struct Sheet: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render prompts of a category into a captioned contact sheet (PNG).")

        @Option(help: "Prompt category.")
        var category: PromptCategory = .colorAttribution

        @Option(name: .short, help: "How many cells.")
        var n: Int = 16

        @Option(help: "Random seed.")
        var seed: UInt64 = 0

        @Option(help: "Image condition of the cells.")
        var condition: ImageCondition = .clean

        @Option(help: "Output PNG path.")
        var out: String

        func run() throws {
            guard n > 0 && n <= 400 else { throw ValidationError("-n must be in 1...400") }
            var rng = SplitMix64(seed: seed)
            let items = PromptGrammar().gallery(category, count: n, condition: condition, rng: &rng)
            try PNG.write(ContactSheet(columns: 4).render(items), to: out)
            print("wrote \(out)")
        }
    }
}
