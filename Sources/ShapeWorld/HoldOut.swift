// The "novel combinations" hold-out: colour–shape pairs and colour–shape–count triples that no
// training caption, training query or training scene may contain.

/// A set of held-out combinations.
///
/// A scene or prompt *touches* the hold-out when it contains any object of a held-out colour–shape
/// pair (at any count), or exactly `count` objects of the colour and shape of a held-out triple.
public struct HoldOut: Hashable, Codable, Sendable {
    /// Colour–shape pairs never seen in training at any count.
    public var pairs: [ColorShape]
    /// Colour–shape–count triples never seen in training (the pair itself is seen at other counts).
    public var triples: [Combination]

    public init(pairs: [ColorShape], triples: [Combination]) {
        self.pairs = pairs
        self.triples = triples
    }

    enum CodingKeys: String, CodingKey {
        case pairs, triples
    }

    /// The hold-out of prompt-set version 1.
    public static let v1 = HoldOut(
        pairs: [
            ColorShape(color: .purple, shape: .triangle),
            ColorShape(color: .orange, shape: .circle),
            ColorShape(color: .green, shape: .square),
            ColorShape(color: .yellow, shape: .diamond),
        ],
        triples: [
            Combination(color: .red, shape: .square, count: 3),
            Combination(color: .blue, shape: .triangle, count: 2),
            Combination(color: .yellow, shape: .circle, count: 4),
            Combination(color: .pink, shape: .circle, count: 3),
            Combination(color: .black, shape: .triangle, count: 4),
            Combination(color: .blue, shape: .diamond, count: 3),
        ])

    /// Whether a scene contains a held-out combination.
    public func touches(scene: Scene) -> Bool {
        touches(counts: scene.colorShapeCounts)
    }

    /// Whether counted colour–shape groups contain a held-out combination.
    public func touches(counts: [ColorShape: Int]) -> Bool {
        for (pair, n) in counts where n > 0 {
            if pairs.contains(pair) { return true }
            if triples.contains(Combination(color: pair.color, shape: pair.shape, count: n)) {
                return true
            }
        }
        return false
    }

    /// Whether a constraint set names a held-out combination.
    public func touches(constraints: ConstraintSet) -> Bool {
        var counts: [ColorShape: Int] = [:]
        for q in constraints.objects {
            guard let c = q.color, let s = q.shape else { continue }
            counts[ColorShape(color: c, shape: s), default: 0] += q.count
        }
        return touches(counts: counts)
    }
}
