// Rewards score images against the user's query — never against a rewritten prompt: the policy may
// write anything, and only what the user asked for counts.
import Foundation
import Imaging
import ShapeWorld

/// One image to score and the query it was made for.
public struct RewardInput: Sendable {
    public var image: RGBImage
    /// The user's query (the original prompt, before any rewriting).
    public var query: String
    /// The query's constraints when known (a prompt set's record carries them); otherwise a
    /// ShapeEval reward parses the query.
    public var constraints: ConstraintSet?

    public init(image: RGBImage, query: String, constraints: ConstraintSet? = nil) {
        self.image = image
        self.query = query
        self.constraints = constraints
    }
}

/// A reward's verdict on one image: the score and named details (a composite lists its parts;
/// ShapeEval gives strict, soft and strict-exact whichever it returns as the score).
public struct RewardScore: Sendable, Equatable {
    public var value: Double
    public var details: [String: Double]

    public init(value: Double, details: [String: Double] = [:]) {
        self.value = value
        self.details = details
    }
}

/// A black-box reward: the trainer sees numbers, never gradients.
public protocol Reward: Sendable {
    /// A stable name (`shapeeval_soft`, `clip`, `0.5*shapeeval_soft+0.5*clip`): the metric key.
    var name: String { get }
    /// One score per input, in order. Implementations score in batches where they can.
    func score(_ inputs: [RewardInput]) throws -> [RewardScore]
}

/// Errors of rewards. Each names the reward.
public enum RewardError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A score came out NaN or infinite: it must never reach a policy update.
    case nonFinite(reward: String, index: Int, value: Double)
    /// The query cannot be scored by this reward (ShapeEval: no shape named, unknown words).
    case unscorable(reward: String, query: String, reason: String)
    /// The reward returned another number of scores than inputs.
    case wrongCount(reward: String, expected: Int, got: Int)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .nonFinite(let reward, let index, let value):
            return "reward `\(reward)` gave \(value) for item \(index): a non-finite reward never reaches the policy"
        case .unscorable(let reward, let query, let reason):
            return "reward `\(reward)` cannot score the query \"\(query)\": \(reason)"
        case .wrongCount(let reward, let expected, let got):
            return "reward `\(reward)` returned \(got) scores for \(expected) images"
        case .invalidArgument(let message): return message
        }
    }
}

extension Reward {
    /// ``score(_:)`` with its promises checked: one score per input, each finite; otherwise an error
    /// naming the reward.
    public func checkedScore(_ inputs: [RewardInput]) throws -> [RewardScore] {
        let scores = try score(inputs)
        guard scores.count == inputs.count else {
            throw RewardError.wrongCount(reward: name, expected: inputs.count, got: scores.count)
        }
        if let i = scores.firstIndex(where: { !$0.value.isFinite }) {
            throw RewardError.nonFinite(reward: name, index: i, value: scores[i].value)
        }
        return scores
    }
}

// MARK: - ShapeEval

/// ShapeEval (the ShapeWorld detector) as a reward: `strict` (every constraint), `soft` (the
/// fraction of constraints) or `strictExact` (strict, and no object beyond the number the query
/// names — so crowding the canvas cannot pass for alignment where the query says "a").
public struct ShapeEvalReward: Reward {
    public enum Kind: String, Sendable, CaseIterable {
        case strict, soft
        case strictExact = "strict_exact"
    }

    public var kind: Kind
    public var shapeEval: ShapeEval

    public init(_ kind: Kind, shapeEval: ShapeEval = ShapeEval()) {
        self.kind = kind
        self.shapeEval = shapeEval
    }

    public var name: String { "shapeeval_\(kind.rawValue)" }

    /// Strict-exact of a verdict: strict, and as many detections as the query names objects.
    public static func strictExact(_ result: ShapeEvalResult, _ constraints: ConstraintSet) -> Double {
        let named = constraints.objects.map(\.count).reduce(0, +)
        return result.strict == 1 && result.detections.count == named ? 1 : 0
    }

    public func score(_ inputs: [RewardInput]) throws -> [RewardScore] {
        let parser = PromptParser()
        return try inputs.map { input in
            let constraints: ConstraintSet
            if let given = input.constraints {
                constraints = given
            } else {
                let parsed = parser.parse(input.query)
                guard !parsed.constraints.objects.isEmpty else {
                    throw RewardError.unscorable(reward: name, query: input.query, reason: "it names no shape")
                }
                constraints = parsed.constraints
            }
            let r = shapeEval.score(input.image, constraints)
            let exact = Self.strictExact(r, constraints)
            let details = ["strict": r.strict, "soft": r.soft, "strict_exact": exact]
            let value: Double
            switch kind {
            case .strict: value = r.strict
            case .soft: value = r.soft
            case .strictExact: value = exact
            }
            return RewardScore(value: value, details: details)
        }
    }
}

// MARK: - Composite

/// A weighted sum of rewards: Σ wᵢ·rᵢ, each part's score kept in the details under its name, and the
/// parts' details under theirs.
public struct CompositeReward: Reward {
    public var parts: [(reward: any Reward, weight: Double)]

    public init(_ parts: [(any Reward, Double)]) throws {
        guard !parts.isEmpty else { throw RewardError.invalidArgument("a composite reward needs at least one part") }
        guard parts.allSatisfy({ $0.1.isFinite }) else {
            throw RewardError.invalidArgument("composite reward weights must be finite")
        }
        self.parts = parts.map { (reward: $0.0, weight: $0.1) }
    }

    public var name: String {
        parts.map { "\(String(format: "%g", $0.weight))*\($0.reward.name)" }.joined(separator: "+")
    }

    public func score(_ inputs: [RewardInput]) throws -> [RewardScore] {
        var out = inputs.map { _ in RewardScore(value: 0) }
        for (reward, weight) in parts {
            let scores = try reward.checkedScore(inputs)
            for i in out.indices {
                out[i].value += weight * scores[i].value
                out[i].details[reward.name] = scores[i].value
                // The parts' own details too (ShapeEval's strict / soft / strict_exact), first part first.
                for (key, value) in scores[i].details where out[i].details[key] == nil { out[i].details[key] = value }
            }
        }
        return out
    }
}

/// A reward scored by one model and watched by another: the value is `reward`'s alone, and `monitor`'s
/// details (ShapeEval's strict, soft, strict-exact) ride along for the log — never in the value. The
/// reward-hacking study trains on the learned proxy while its logs keep the true score of every rollout.
public struct MonitoredReward: Reward {
    public var reward: any Reward
    public var monitor: any Reward

    public init(_ reward: any Reward, monitor: any Reward) {
        self.reward = reward
        self.monitor = monitor
    }

    public var name: String { reward.name }

    public func score(_ inputs: [RewardInput]) throws -> [RewardScore] {
        var scores = try reward.checkedScore(inputs)
        let watched = try monitor.checkedScore(inputs)
        for i in scores.indices {
            for (key, value) in watched[i].details where scores[i].details[key] == nil { scores[i].details[key] = value }
        }
        return scores
    }
}

/// Reads a reward specification: a name (`shapeeval_soft`, `shapeeval_strict`,
/// `shapeeval_strict_exact`, `proxy` — the learned proxy of ShapeEval, `Models/shapeworld-proxy`) or a
/// weighted sum of them (`0.7*shapeeval_soft+0.3*shapeeval_strict`).
public enum RewardSpec {
    public static let names = ShapeEvalReward.Kind.allCases.map { "shapeeval_\($0.rawValue)" } + ["proxy"]

    /// The specification's terms, (name, weight), checked without loading anything.
    public static func terms(_ text: String) throws -> [(name: String, weight: Double)] {
        let terms = text.split(separator: "+").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !terms.isEmpty, terms.allSatisfy({ !$0.isEmpty }) else {
            throw RewardError.invalidArgument("empty reward specification `\(text)`")
        }
        return try terms.map { term in
            let pieces = term.split(separator: "*", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let (weightText, nameText) = pieces.count == 2 ? (pieces[0], pieces[1]) : ("1", pieces[0])
            guard let weight = Double(weightText), weight.isFinite else {
                throw RewardError.invalidArgument("reward weight `\(weightText)` in `\(text)` is not a number")
            }
            guard names.contains(nameText) else {
                throw RewardError.invalidArgument(
                    "unknown reward `\(nameText)`: use one of \(names.joined(separator: ", ")) or a weighted sum")
            }
            return (nameText, weight)
        }
    }

    /// Builds the reward. `proxy` is the learned proxy's folder, needed only when the specification names
    /// `proxy`; a reward that uses the proxy is monitored by ShapeEval soft (its details in the log).
    public static func parse(_ text: String, proxy: String? = nil) throws -> any Reward {
        var loaded: LearnedProxyReward?
        var parts: [(any Reward, Double)] = []
        for (name, weight) in try terms(text) {
            if name == "proxy" {
                if loaded == nil {
                    guard let proxy else {
                        throw RewardError.invalidArgument(
                            "reward `proxy` needs the learned proxy's folder (Models/shapeworld-proxy), and none was found")
                    }
                    loaded = try LearnedProxyReward.load(folder: proxy)
                }
                parts.append((loaded!, weight))
            } else {
                let kind = ShapeEvalReward.Kind.allCases.first { "shapeeval_\($0.rawValue)" == name }!
                parts.append((ShapeEvalReward(kind), weight))
            }
        }
        let reward: any Reward = parts.count == 1 && parts[0].1 == 1 ? parts[0].0 : try CompositeReward(parts)
        return loaded == nil ? reward : MonitoredReward(reward, monitor: ShapeEvalReward(.soft))
    }
}
