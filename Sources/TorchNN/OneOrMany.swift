/// A JSON field that is either one value or one value per block (`attention_head_dim: 8` or `[5, 10, 20]`).
public enum OneOrMany<T: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case one(T)
    case many([T])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(T.self) { self = .one(v) } else { self = .many(try c.decode([T].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .one(let v): try c.encode(v)
        case .many(let v): try c.encode(v)
        }
    }

    /// Every value (one for `.one`).
    public var all: [T] {
        switch self {
        case .one(let v): return [v]
        case .many(let v): return v
        }
    }

    /// One value per block.
    public func perBlock(_ count: Int) -> [T] {
        switch self {
        case .one(let v): return Array(repeating: v, count: count)
        case .many(let v): return v
        }
    }
}
