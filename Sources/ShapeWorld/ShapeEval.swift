// ShapeEval: the GenEval analogue. Image + constraints → per-constraint pass/fail and scores.

import Imaging

/// The kind of a checked constraint.
public enum ConstraintKind: String, Codable, Sendable {
    /// The number of objects matching a group (≥ 1 for a count of 1, exactly n otherwise).
    case count
    /// The group's objects lie in the named region of the canvas.
    case position
    /// Some object of one group stands in the relation to some object of another.
    case relation
}

/// The verdict on one constraint.
public struct ConstraintResult: Hashable, Codable, Sendable {
    public var kind: ConstraintKind
    /// Human-readable statement of the constraint, e.g. "exactly 2 red circles".
    public var description: String
    public var passed: Bool
    /// For counts: how many matching objects were found.
    public var found: Int?

    enum CodingKeys: String, CodingKey {
        case kind, description, passed, found
    }
}

/// The verdict on an image.
public struct ShapeEvalResult: Hashable, Codable, Sendable {
    public var constraints: [ConstraintResult]
    /// 1 when every constraint passes, else 0 (GenEval's per-prompt score).
    public var strict: Double
    /// Fraction of constraints passed.
    public var soft: Double
    public var detections: [Detection]

    enum CodingKeys: String, CodingKey {
        case constraints, strict, soft, detections
    }

    /// `strict 1, soft 1.00 (3/3 constraints)`, with the failed constraints after a semicolon.
    public var summary: String {
        let passed = constraints.filter(\.passed).count
        let failed = constraints.filter { !$0.passed }.map(\.description)
        return "strict \(Int(strict)), soft \(String(format: "%.2f", soft)) (\(passed)/\(constraints.count) constraints)"
            + (failed.isEmpty ? "" : "; failed: " + failed.joined(separator: "; "))
    }
}

/// Scores whether an image shows what a constraint set asks for.
///
/// Rules: a count of 1 passes with at least one matching object, a count n ≥ 2 with exactly n; a
/// position passes when at least `count` matching objects lie in the region; a relation passes when
/// some matching pair's centroids differ by more than `relationMargin` pixels along the relation's
/// axis. Strict score is 1 only if all pass (GenEval); soft score is the fraction passed.
///
/// ```swift
/// let parsed = PromptParser().parse("a red circle left of a blue square")
/// let result = ShapeEval().score(image, parsed.constraints)
/// print(result.strict, result.soft)
/// ```
public struct ShapeEval: Sendable {
    public var detector: ShapeDetector
    /// Centroid margin in pixels (64×64 canvas) for pairwise relations.
    public var relationMargin: Double = 3

    public init(detector: ShapeDetector = ShapeDetector()) {
        self.detector = detector
    }

    /// Parses `prompt` and scores `image` against it.
    /// - Throws: `ShapeWorldError.unparseablePrompt` when the prompt names no object.
    public func score(_ image: RGBImage, prompt: String) throws(ShapeWorldError) -> ShapeEvalResult {
        score(image, try PromptParser().parseChecked(prompt).constraints)
    }

    /// Detects objects in `image` and checks `constraints` against them.
    public func score(_ image: RGBImage, _ constraints: ConstraintSet) -> ShapeEvalResult {
        score(detections: detector.detect(image), constraints, canvas: Double(detector.options.canvas))
    }

    /// Checks `constraints` against already detected objects.
    public func score(detections: [Detection], _ constraints: ConstraintSet, canvas: Double = 64)
        -> ShapeEvalResult
    {
        var results: [ConstraintResult] = []
        let matches = constraints.objects.map { q in
            detections.filter { q.matches(shape: $0.shape, color: $0.color, size: $0.size) }
        }
        for (i, q) in constraints.objects.enumerated() {
            let found = matches[i].count
            let passed = q.count <= 1 ? found >= 1 : found == q.count
            let quantifier = q.count <= 1 ? "at least 1" : "exactly \(q.count)"
            let noun = q.count <= 1 ? q.phrase : plural(q.phrase)
            results.append(
                ConstraintResult(
                    kind: .count, description: "\(quantifier) \(noun)", passed: passed, found: found))
            if let pos = q.position {
                let inside = matches[i].filter {
                    pos.contains(x: $0.x, y: $0.y, width: canvas, height: canvas)
                }.count
                let need = max(q.count, 1)
                let noun = need == 1 ? q.phrase : "\(need) \(plural(q.phrase))"
                results.append(
                    ConstraintResult(
                        kind: .position, description: "\(noun) at \(pos.rawValue)",
                        passed: inside >= need, found: inside))
            }
        }
        for r in constraints.relations {
            guard constraints.objects.indices.contains(r.subject),
                constraints.objects.indices.contains(r.object)
            else { continue }
            var passed = false
            outer: for a in matches[r.subject] {
                for b in matches[r.object] where a != b {
                    if r.relation.holds(a: (a.x, a.y), b: (b.x, b.y), margin: relationMargin) {
                        passed = true
                        break outer
                    }
                }
            }
            let s = constraints.objects[r.subject].phrase, o = constraints.objects[r.object].phrase
            results.append(
                ConstraintResult(
                    kind: .relation, description: "\(s) \(r.relation.rawValue) \(o)", passed: passed,
                    found: nil))
        }
        let passedCount = results.filter(\.passed).count
        let strict: Double = results.isEmpty ? 0 : (passedCount == results.count ? 1 : 0)
        let soft = results.isEmpty ? 0 : Double(passedCount) / Double(results.count)
        return ShapeEvalResult(constraints: results, strict: strict, soft: soft, detections: detections)
    }

    func plural(_ phrase: String) -> String { phrase + "s" }
}
