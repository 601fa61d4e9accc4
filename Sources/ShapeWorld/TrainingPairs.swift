// Image–caption pairs for training the miniature text-to-image model, outside the hold-out.

/// One training example: a scene and a caption that is true of it.
public struct TrainingPair: Hashable, Sendable {
    public var scene: Scene
    public var caption: String
    /// What the caption asserts (the scene satisfies it).
    public var constraints: ConstraintSet

    public init(scene: Scene, caption: String, constraints: ConstraintSet) {
        self.scene = scene
        self.caption = caption
        self.constraints = constraints
    }
}

/// Draws image–caption pairs for diffusion training. No pair ever contains a held-out combination,
/// neither in its scene nor in its caption.
///
/// With probability `denseFraction` the pair is a random scene with its dense caption; otherwise a
/// prompt of a random GenEval category with a scene drawn to satisfy it. With probability
/// `paraphraseFraction` the caption is a random paraphrase instead of the canonical wording.
///
/// ```swift
/// var rng = SplitMix64(seed: 1)
/// let pair = TrainingPairSampler().sample(rng: &rng)
/// let image = Renderer().render(pair.scene)
/// ```
public struct TrainingPairSampler: Sendable {
    public var holdOut: HoldOut
    public var denseFraction: Double
    public var paraphraseFraction: Double

    public init(holdOut: HoldOut = .v1, denseFraction: Double = 0.5, paraphraseFraction: Double = 0.5) {
        self.holdOut = holdOut
        self.denseFraction = denseFraction
        self.paraphraseFraction = paraphraseFraction
    }

    public func sample(rng: inout SplitMix64) -> TrainingPair {
        let grammar = PromptGrammar()
        let sampler = SceneSampler(holdOut: holdOut)
        while true {
            let scene: Scene
            let constraints: ConstraintSet
            if rng.bernoulli(denseFraction) {
                scene = sampler.randomScene(rng: &rng)
                constraints = grammar.denseConstraints(of: scene)
            } else {
                let prompt = grammar.sample(rng.pick(PromptCategory.geneval), rng: &rng)
                guard !holdOut.touches(constraints: prompt.constraints),
                    let s = try? sampler.scene(for: prompt.constraints, rng: &rng),
                    !holdOut.touches(scene: s)
                else { continue }
                scene = s
                constraints = prompt.constraints
            }
            let caption =
                rng.bernoulli(paraphraseFraction)
                ? grammar.paraphraser.paraphrase(constraints, rng: &rng)
                : grammar.paraphraser.canonical(constraints)
            return TrainingPair(scene: scene, caption: caption, constraints: constraints)
        }
    }
}
