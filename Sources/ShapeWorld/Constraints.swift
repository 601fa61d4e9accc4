// What a prompt asks for: objects (with counts and attributes) and relations between them.

/// One object group a prompt asks for, e.g. "two small red circles on the left".
///
/// Count semantics follow GenEval: a count of 1 ("a red circle") means *at least one* matching
/// object; a count of 2 or more ("three circles") means *exactly* that many. A `nil` attribute
/// matches any value.
public struct ObjectQuery: Hashable, Codable, Sendable, Comparable {
    public var shape: Shape?
    public var color: ShapeColor?
    public var size: ObjectSize?
    public var count: Int
    public var position: AbsolutePosition?

    public init(
        shape: Shape?, color: ShapeColor? = nil, size: ObjectSize? = nil, count: Int = 1,
        position: AbsolutePosition? = nil
    ) {
        self.shape = shape
        self.color = color
        self.size = size
        self.count = count
        self.position = position
    }

    enum CodingKeys: String, CodingKey {
        case shape, color, size, count, position
    }

    /// Whether a detected or rendered object has this query's attributes (position not checked).
    public func matches(shape: Shape, color: ShapeColor, size: ObjectSize) -> Bool {
        (self.shape == nil || self.shape == shape) && (self.color == nil || self.color == color)
            && (self.size == nil || self.size == size)
    }

    /// The noun phrase without count, e.g. "small red circle".
    public var phrase: String {
        var words: [String] = []
        if let size { words.append(size.rawValue) }
        if let color { words.append(color.rawValue) }
        words.append(shape?.rawValue ?? "shape")
        return words.joined(separator: " ")
    }

    public static func < (lhs: ObjectQuery, rhs: ObjectQuery) -> Bool {
        func key(_ q: ObjectQuery) -> [Int] {
            [
                q.shape.map { Shape.allCases.firstIndex(of: $0)! } ?? -1,
                q.color.map { ShapeColor.allCases.firstIndex(of: $0)! } ?? -1,
                q.size.map { ObjectSize.allCases.firstIndex(of: $0)! } ?? -1,
                q.count,
                q.position.map { AbsolutePosition.allCases.firstIndex(of: $0)! } ?? -1,
            ]
        }
        return key(lhs).lexicographicallyPrecedes(key(rhs))
    }
}

/// A pairwise relation between two object groups of a `ConstraintSet`, by index.
public struct RelationQuery: Hashable, Codable, Sendable {
    public var subject: Int
    public var relation: Relation
    public var object: Int

    public init(subject: Int, relation: Relation, object: Int) {
        self.subject = subject
        self.relation = relation
        self.object = object
    }

    enum CodingKeys: String, CodingKey {
        case subject, relation, object
    }
}

/// Everything a prompt implies: the object groups and the relations between them.
///
/// ```swift
/// let set = ConstraintSet(
///     objects: [ObjectQuery(shape: .circle, color: .red), ObjectQuery(shape: .square, color: .blue)],
///     relations: [RelationQuery(subject: 0, relation: .leftOf, object: 1)])
/// ```
public struct ConstraintSet: Hashable, Codable, Sendable {
    public var objects: [ObjectQuery]
    public var relations: [RelationQuery]

    public init(objects: [ObjectQuery] = [], relations: [RelationQuery] = []) {
        self.objects = objects
        self.relations = relations
    }

    enum CodingKeys: String, CodingKey {
        case objects, relations
    }

    /// The same constraints in a canonical form: objects sorted, relations written with
    /// `left of` / `above` only, sorted and de-duplicated. Two prompts mean the same thing exactly when
    /// their canonical sets are equal.
    public func canonical() -> ConstraintSet {
        let order = objects.indices.sorted { objects[$0] < objects[$1] }
        var newIndex = [Int](repeating: 0, count: objects.count)
        for (new, old) in order.enumerated() { newIndex[old] = new }
        var rels = Set<RelationQuery>()
        for r in relations {
            var s = newIndex[r.subject], o = newIndex[r.object], rel = r.relation
            if rel == .rightOf || rel == .below {
                swap(&s, &o)
                rel = rel.inverse
            }
            rels.insert(RelationQuery(subject: s, relation: rel, object: o))
        }
        let sortedRels = rels.sorted {
            ($0.subject, $0.object, Relation.allCases.firstIndex(of: $0.relation)!)
                < ($1.subject, $1.object, Relation.allCases.firstIndex(of: $1.relation)!)
        }
        return ConstraintSet(objects: order.map { objects[$0] }, relations: sortedRels)
    }

    /// The total number of objects the constraints ask for.
    public var objectCount: Int { objects.reduce(0) { $0 + $1.count } }

    /// The (colour, shape, count) combinations this set names, for hold-out bookkeeping.
    /// Groups with no colour or no shape name no combination.
    public var combinations: [Combination] {
        objects.compactMap { q in
            guard let c = q.color, let s = q.shape else { return nil }
            return Combination(color: c, shape: s, count: q.count)
        }
    }
}

/// A colour–shape–count combination, the unit of the "novel combinations" hold-out.
public struct Combination: Hashable, Codable, Sendable, CustomStringConvertible {
    public var color: ShapeColor
    public var shape: Shape
    public var count: Int

    public init(color: ShapeColor, shape: Shape, count: Int) {
        self.color = color
        self.shape = shape
        self.count = count
    }

    enum CodingKeys: String, CodingKey {
        case color, shape, count
    }

    public var description: String { "\(count) \(color.rawValue) \(shape.rawValue)" }
}
