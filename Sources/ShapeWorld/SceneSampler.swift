// Placing objects so that a specification holds, and sampling random training scenes.

/// Draws scenes: random training scenes, and scenes that satisfy a prompt's constraints.
///
/// ```swift
/// var rng = SplitMix64(seed: 1)
/// let parsed = PromptParser().parse("two red circles left of a blue square")
/// let scene = try SceneSampler().scene(for: parsed.constraints, rng: &rng)
/// ```
public struct SceneSampler: Sendable {
    /// Canvas width and height in pixels.
    public var width: Int = 64
    public var height: Int = 64
    /// Minimum distance from a bounding box to the canvas edge.
    public var edgeMargin: Double = 2
    /// Minimum gap between two objects' bounding boxes along at least one axis.
    public var gap: Double = 4
    /// Centroid separation the placer guarantees for each relation (the detector needs 3).
    public var relationMargin: Double = 8
    /// Combinations training scenes must never contain; `nil` for no exclusion.
    public var holdOut: HoldOut?
    /// Placement attempts before giving up.
    public var attempts: Int = 300

    public init(holdOut: HoldOut? = nil) {
        self.holdOut = holdOut
    }

    // MARK: Random scenes

    /// A random scene with 1–4 objects of random shape, colour and size, excluding the hold-out.
    public func randomScene(rng: inout SplitMix64, objectCount: ClosedRange<Int> = 1...4) -> Scene {
        while true {
            let n = rng.int(in: objectCount)
            var items: [Item] = []
            for _ in 0..<n {
                items.append(
                    Item(
                        shape: rng.pick(Shape.allCases), color: rng.pick(ShapeColor.allCases),
                        size: rng.pick(ObjectSize.allCases), position: nil))
            }
            let probe = Scene(width: width, height: height, objects: items.map(\.probeObject))
            if let holdOut, holdOut.touches(scene: probe) { continue }
            if let objects = place(items, relations: [], rng: &rng) {
                return Scene(width: width, height: height, objects: objects)
            }
        }
    }

    // MARK: Scenes for constraints

    /// A scene that satisfies `constraints`: each group becomes `count` objects, unspecified
    /// attributes are drawn at random, absolute positions and relations hold with margin.
    /// - Throws: `ShapeWorldError.cannotPlace` when no layout is found (e.g. four large objects
    ///   in the centre).
    public func scene(for constraints: ConstraintSet, rng: inout SplitMix64) throws(ShapeWorldError)
        -> Scene {
        for round in 0..<40 {
            var items: [Item] = []
            var groupOf: [Int] = []
            for (g, q) in constraints.objects.enumerated() {
                for _ in 0..<max(q.count, 1) {
                    // After a few failed rounds prefer small objects for unspecified sizes.
                    let size = q.size ?? (round >= 10 ? .small : rng.pick(ObjectSize.allCases))
                    items.append(
                        Item(
                            shape: q.shape ?? rng.pick(Shape.allCases),
                            color: q.color ?? rng.pick(ShapeColor.allCases), size: size,
                            position: q.position))
                    groupOf.append(g)
                }
            }
            let probe = Scene(width: width, height: height, objects: items.map(\.probeObject))
            if let holdOut, holdOut.touches(scene: probe), round < 39 { continue }
            var rels: [(Int, Relation, Int)] = []
            for r in constraints.relations {
                for a in items.indices where groupOf[a] == r.subject {
                    for b in items.indices where groupOf[b] == r.object && a != b {
                        rels.append((a, r.relation, b))
                    }
                }
            }
            if let objects = place(items, relations: rels, rng: &rng) {
                return Scene(width: width, height: height, objects: objects)
            }
        }
        throw ShapeWorldError.cannotPlace(description: describe(constraints))
    }

    // MARK: Placement

    struct Item {
        var shape: Shape
        var color: ShapeColor
        var size: ObjectSize
        var position: AbsolutePosition?

        var probeObject: SceneObject { SceneObject(shape: shape, color: color, size: size, x: 0, y: 0) }
    }

    /// Rejection sampling: objects are placed one by one inside their allowed ranges; a restart
    /// follows any object that finds no free spot.
    func place(_ items: [Item], relations: [(Int, Relation, Int)], rng: inout SplitMix64)
        -> [SceneObject]?
    {
        let w = Double(width), h = Double(height)
        for _ in 0..<attempts {
            var placed: [SceneObject] = []
            var ok = true
            for (i, item) in items.enumerated() {
                let probe = item.probeObject
                let box = probe.boundingBox
                // Centroid ranges keeping the bounding box inside the canvas margins.
                var xLo = edgeMargin - box.minX, xHi = w - edgeMargin - box.maxX
                var yLo = edgeMargin - box.minY, yHi = h - edgeMargin - box.maxY
                if let pos = item.position {
                    let m = 3.0
                    switch pos {
                    case .left, .topLeft, .bottomLeft: xHi = min(xHi, 0.4 * w - m)
                    case .right, .topRight, .bottomRight: xLo = max(xLo, 0.6 * w + m)
                    case .top, .bottom, .center: break
                    }
                    switch pos {
                    case .top, .topLeft, .topRight: yHi = min(yHi, 0.4 * h - m)
                    case .bottom, .bottomLeft, .bottomRight: yLo = max(yLo, 0.6 * h + m)
                    case .left, .right, .center: break
                    }
                    if pos == .center {
                        xLo = max(xLo, w / 2 - 0.15 * w + m)
                        xHi = min(xHi, w / 2 + 0.15 * w - m)
                        yLo = max(yLo, h / 2 - 0.15 * h + m)
                        yHi = min(yHi, h / 2 + 0.15 * h - m)
                    }
                    // Plain left/right/top/bottom keep the other coordinate near the middle,
                    // so that a dense caption would describe the object the same way.
                    if pos == .left || pos == .right {
                        yLo = max(yLo, 0.3 * h)
                        yHi = min(yHi, 0.7 * h)
                    }
                    if pos == .top || pos == .bottom {
                        xLo = max(xLo, 0.3 * w)
                        xHi = min(xHi, 0.7 * w)
                    }
                }
                if xLo > xHi || yLo > yHi { return nil }
                var found: SceneObject?
                for _ in 0..<60 {
                    var candidate = probe
                    candidate.x = rng.uniform(xLo, xHi)
                    candidate.y = rng.uniform(yLo, yHi)
                    if !placed.allSatisfy({ separated($0, candidate) }) { continue }
                    var relOK = true
                    for (a, rel, b) in relations where max(a, b) == i {
                        let oa = a == i ? candidate : placed[a]
                        let ob = b == i ? candidate : placed[b]
                        if !rel.holds(a: (oa.x, oa.y), b: (ob.x, ob.y), margin: relationMargin) {
                            relOK = false
                            break
                        }
                    }
                    if relOK {
                        found = candidate
                        break
                    }
                }
                guard let object = found else {
                    ok = false
                    break
                }
                placed.append(object)
            }
            if ok { return placed }
        }
        return nil
    }

    func separated(_ a: SceneObject, _ b: SceneObject) -> Bool {
        let p = a.boundingBox, q = b.boundingBox
        return p.maxX + gap <= q.minX || q.maxX + gap <= p.minX || p.maxY + gap <= q.minY
            || q.maxY + gap <= p.minY
    }

    func describe(_ constraints: ConstraintSet) -> String {
        constraints.objects.map { "\($0.count) \($0.phrase)" }.joined(separator: ", ")
    }
}
