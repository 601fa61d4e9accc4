// The prompt grammar: GenEval's six categories, and dense captions for any scene.

import Imaging

/// A prompt category. The first six are GenEval's (same tags); `dense` marks scene captions.
public enum PromptCategory: String, CaseIterable, Codable, Sendable {
    case singleObject = "single_object"
    case twoObjects = "two_object"
    case counting
    case colors
    case position
    case colorAttribution = "color_attr"
    case dense

    /// GenEval's six categories.
    public static let geneval: [PromptCategory] = [
        .singleObject, .twoObjects, .counting, .colors, .position, .colorAttribution,
    ]
}

/// A prompt with the constraints it was generated from.
public struct Prompt: Hashable, Codable, Sendable {
    public var category: PromptCategory
    public var text: String
    public var constraints: ConstraintSet

    public init(category: PromptCategory, text: String, constraints: ConstraintSet) {
        self.category = category
        self.text = text
        self.constraints = constraints
    }

    enum CodingKeys: String, CodingKey {
        case category, text, constraints
    }
}

/// Generates prompts by category, and dense captions of scenes.
///
/// Category rules (all attribute choices uniform):
/// - `single_object`: a shape, optionally with a size ("a photo of a large triangle").
/// - `two_object`: two different shapes, or one shape in two sizes ("a circle and a square").
/// - `counting`: 2–4 of a shape, colour and size optional ("three red circles").
/// - `colors`: a coloured shape, size optional ("a purple square").
/// - `position`: 70% a relation between two distinct objects, colours optional ("a red circle
///   left of a blue square"); 30% a shape in a region ("a green triangle in the top left corner").
/// - `color_attr`: two objects of different shapes and colours, sizes optional ("a red circle and a
///   blue square").
///
/// ```swift
/// var rng = SplitMix64(seed: 9)
/// let prompt = PromptGrammar().sample(.counting, rng: &rng)
/// ```
public struct PromptGrammar: Sendable {
    public var paraphraser = Paraphraser()

    public init() {}

    /// A random prompt of `category` in canonical wording. `dense` draws a random scene's caption.
    /// `count` prompts of `category`; with `excludingHoldOut` none touches the v1 novel-combination
    /// hold-out (as training data never does); with `paraphrase` each text is a random paraphrase of
    /// its constraints instead of the canonical wording.
    public func samples(_ category: PromptCategory, count: Int, excludingHoldOut: Bool = false,
                        paraphrase: Bool = false, rng: inout SplitMix64) -> [Prompt] {
        var out: [Prompt] = []
        while out.count < count {
            var prompt = sample(category, rng: &rng)
            if excludingHoldOut && HoldOut.v1.touches(constraints: prompt.constraints) { continue }
            if paraphrase { prompt.text = paraphraser.paraphrase(prompt.constraints, rng: &rng) }
            out.append(prompt)
        }
        return out
    }

    /// `count` rendered scenes of `category` under `condition`, each captioned with its prompt (without
    /// "a photo of") and ShapeEval's strict verdict on it: a contact sheet's cells.
    public func gallery(_ category: PromptCategory, count: Int, condition: ImageCondition,
                        rng: inout SplitMix64) -> [(image: RGBImage, caption: String)] {
        var items: [(image: RGBImage, caption: String)] = []
        while items.count < count {
            let prompt = sample(category, rng: &rng)
            guard let scene = try? SceneSampler().scene(for: prompt.constraints, rng: &rng) else { continue }
            let image = condition.image(of: scene, rng: &rng)
            let score = ShapeEval().score(image, prompt.constraints).strict
            items.append((image, prompt.text.replacingOccurrences(of: "a photo of ", with: "") + " [\(Int(score))]"))
        }
        return items
    }

    public func sample(_ category: PromptCategory, rng: inout SplitMix64) -> Prompt {
        let constraints: ConstraintSet
        switch category {
        case .singleObject:
            constraints = ConstraintSet(objects: [
                ObjectQuery(shape: rng.pick(Shape.allCases), size: optionalSize(&rng, p: 0.4))
            ])
        case .twoObjects:
            let a = rng.pick(Shape.allCases)
            var b = rng.pick(Shape.allCases)
            var sizes: (ObjectSize?, ObjectSize?) = (nil, nil)
            if a == b {
                sizes = rng.bernoulli(0.5) ? (.small, .large) : (.large, .small)
            } else if rng.bernoulli(0.3) {
                sizes = (rng.pick(ObjectSize.allCases), rng.pick(ObjectSize.allCases))
            }
            if a == b && rng.bernoulli(0.5) {
                b = rng.pick(Shape.allCases.filter { $0 != a })
                sizes = (nil, nil)
            }
            constraints = ConstraintSet(objects: [
                ObjectQuery(shape: a, size: sizes.0), ObjectQuery(shape: b, size: sizes.1),
            ])
        case .counting:
            let color: ShapeColor? = rng.bernoulli(0.5) ? rng.pick(ShapeColor.allCases) : nil
            constraints = ConstraintSet(objects: [
                ObjectQuery(
                    shape: rng.pick(Shape.allCases), color: color, size: optionalSize(&rng, p: 0.3),
                    count: rng.int(in: 2...4))
            ])
        case .colors:
            constraints = ConstraintSet(objects: [
                ObjectQuery(
                    shape: rng.pick(Shape.allCases), color: rng.pick(ShapeColor.allCases),
                    size: optionalSize(&rng, p: 0.3))
            ])
        case .position:
            if rng.bernoulli(0.7) {
                let shapes = rng.shuffled(Shape.allCases)
                let colors = rng.shuffled(ShapeColor.allCases)
                let colored = rng.bernoulli(0.6)
                constraints = ConstraintSet(
                    objects: [
                        ObjectQuery(shape: shapes[0], color: colored ? colors[0] : nil),
                        ObjectQuery(shape: shapes[1], color: colored ? colors[1] : nil),
                    ],
                    relations: [
                        RelationQuery(subject: 0, relation: rng.pick(Relation.allCases), object: 1)
                    ])
            } else {
                let color: ShapeColor? = rng.bernoulli(0.5) ? rng.pick(ShapeColor.allCases) : nil
                constraints = ConstraintSet(objects: [
                    ObjectQuery(
                        shape: rng.pick(Shape.allCases), color: color,
                        position: rng.pick(AbsolutePosition.allCases))
                ])
            }
        case .colorAttribution:
            let shapes = rng.shuffled(Shape.allCases)
            let colors = rng.shuffled(ShapeColor.allCases)
            constraints = ConstraintSet(objects: [
                ObjectQuery(shape: shapes[0], color: colors[0], size: optionalSize(&rng, p: 0.3)),
                ObjectQuery(shape: shapes[1], color: colors[1], size: optionalSize(&rng, p: 0.3)),
            ])
        case .dense:
            let scene = SceneSampler().randomScene(rng: &rng)
            return denseCaption(of: scene)
        }
        return Prompt(category: category, text: paraphraser.canonical(constraints), constraints: constraints)
    }

    func optionalSize(_ rng: inout SplitMix64, p: Double) -> ObjectSize? {
        rng.bernoulli(p) ? rng.pick(ObjectSize.allCases) : nil
    }

    // MARK: Dense captions

    /// A caption that is true of `scene` under ShapeEval's rules: objects grouped by size, colour and
    /// shape with their counts; a single object's region when it lies clearly inside one; and up to
    /// two relations between single objects whose centroids are at least 8 px apart.
    public func denseConstraints(of scene: Scene) -> ConstraintSet {
        var groups: [(key: SceneObject, members: [SceneObject])] = []
        for o in scene.objects {
            if let g = groups.firstIndex(where: {
                $0.key.shape == o.shape && $0.key.color == o.color && $0.key.size == o.size
            }) {
                groups[g].members.append(o)
            } else {
                groups.append((o, [o]))
            }
        }
        let w = Double(scene.width), h = Double(scene.height)
        var objects: [ObjectQuery] = []
        for g in groups {
            var q = ObjectQuery(
                shape: g.key.shape, color: g.key.color, size: g.key.size, count: g.members.count)
            if g.members.count == 1 {
                q.position = AbsolutePosition.clearRegion(
                    x: g.key.x, y: g.key.y, width: w, height: h, margin: 2)
            }
            objects.append(q)
        }
        var relations: [RelationQuery] = []
        let singles = groups.indices.filter { groups[$0].members.count == 1 }
        outer: for a in singles {
            for b in singles where b > a {
                let p = groups[a].key, q = groups[b].key
                let dx = q.x - p.x, dy = q.y - p.y
                if abs(dx) >= 8 && abs(dx) >= abs(dy) {
                    let rel: Relation = dx > 0 ? .leftOf : .rightOf
                    relations.append(RelationQuery(subject: a, relation: rel, object: b))
                } else if abs(dy) >= 8 {
                    let rel: Relation = dy > 0 ? .above : .below
                    relations.append(RelationQuery(subject: a, relation: rel, object: b))
                }
                if relations.count >= 2 { break outer }
            }
        }
        return ConstraintSet(objects: objects, relations: relations)
    }

    /// The dense caption of `scene` in canonical wording.
    public func denseCaption(of scene: Scene) -> Prompt {
        let c = denseConstraints(of: scene)
        return Prompt(category: .dense, text: paraphraser.canonical(c), constraints: c)
    }
}
