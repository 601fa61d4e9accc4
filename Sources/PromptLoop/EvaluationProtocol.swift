import Diffusion
import Foundation
import Imaging
import ShapeWorld
import Torch

/// The fixed sampling protocol every score in the project's tables uses: DDIM (η = 0), 20 steps,
/// guidance 5, and for each (prompt, seed) the image that `promptloop generate --seed S` gives for
/// that prompt alone (the initial noise of a row depends on its seed only).
public struct EvaluationProtocol: Sendable, Equatable, Codable {
    public var steps = 20
    public var guidance = 5.0
    public var scheduler = "ddim"
    /// Seeds per prompt: 0..<seeds.
    public var seeds = 4

    public init(steps: Int = 20, guidance: Double = 5, scheduler: String = "ddim", seeds: Int = 4) {
        self.steps = steps
        self.guidance = guidance
        self.scheduler = scheduler
        self.seeds = seeds
    }

    public func validate() throws {
        guard steps > 0 else { throw EvaluationError.invalidArgument("steps must be positive, got \(steps)") }
        guard seeds > 0 else { throw EvaluationError.invalidArgument("seeds must be positive, got \(seeds)") }
        guard guidance.isFinite else { throw EvaluationError.invalidArgument("guidance must be finite") }
    }

    /// Row i is the image the protocol gives for `prompts[i]` with `seeds[i]`.
    public func images(_ pipeline: StableDiffusionPipeline, prompts: [String], seeds: [UInt64]) throws -> [RGBImage] {
        guard prompts.count == seeds.count, let first = seeds.first else {
            throw EvaluationError.invalidArgument("\(prompts.count) prompts for \(seeds.count) seeds")
        }
        let out = try pipeline.sample(
            prompts: prompts, options: SamplingOptions(steps: steps, guidance: guidance, seed: first, rowSeeds: seeds))
        return pipeline.decodeImages(out.latents)
    }
}

/// Errors of evaluation runs: bad arguments, label files, prompt sets.
public enum EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidArgument(String)
    /// A file of labels or results that does not parse; names the file and line.
    case badFile(path: String, line: Int?, message: String)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        case .badFile(let path, let line, let message): return "\(path)\(line.map { ":\($0)" } ?? ""): \(message)"
        }
    }
}
