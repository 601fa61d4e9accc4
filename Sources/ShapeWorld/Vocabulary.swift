// The closed vocabulary of ShapeWorld: shapes, colours, sizes, absolute positions and relations.

import Imaging

/// A shape ShapeWorld can draw and detect. Squares are axis-aligned, triangles point up, diamonds
/// are squares turned by 45° (a rhombus with equal diagonals).
public enum Shape: String, CaseIterable, Codable, Sendable, Comparable {
    case circle
    case square
    case triangle
    case diamond

    /// The singular noun.
    public var noun: String { rawValue }
    /// The plural noun.
    public var plural: String { rawValue + "s" }

    public static func < (lhs: Shape, rhs: Shape) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// One of the eight well-separated colours of ShapeWorld.
public enum ShapeColor: String, CaseIterable, Codable, Sendable, Comparable {
    case red
    case orange
    case yellow
    case green
    case blue
    case purple
    case pink
    case black

    /// The rendered sRGB value in [0, 1].
    public var rgb: RGB {
        switch self {
        case .red: return RGB(0.86, 0.12, 0.12)
        case .orange: return RGB(0.96, 0.55, 0.10)
        case .yellow: return RGB(0.95, 0.85, 0.12)
        case .green: return RGB(0.13, 0.65, 0.22)
        case .blue: return RGB(0.13, 0.30, 0.88)
        case .purple: return RGB(0.56, 0.20, 0.76)
        case .pink: return RGB(0.97, 0.48, 0.76)
        case .black: return RGB(0.08, 0.08, 0.08)
        }
    }

    public static func < (lhs: ShapeColor, rhs: ShapeColor) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The size class of an object.
public enum ObjectSize: String, CaseIterable, Codable, Sendable, Comparable {
    case small
    case large

    /// Half the side of the object's bounding box in pixels, on the 64×64 canvas.
    public var halfExtent: Double {
        switch self {
        case .small: return 6
        case .large: return 10
        }
    }

    public static func < (lhs: ObjectSize, rhs: ObjectSize) -> Bool {
        lhs == .small && rhs == .large
    }
}

/// A region of the canvas an object can be said to lie in.
public enum AbsolutePosition: String, CaseIterable, Codable, Sendable, Comparable {
    case left
    case right
    case top
    case bottom
    case center
    case topLeft = "top left"
    case topRight = "top right"
    case bottomLeft = "bottom left"
    case bottomRight = "bottom right"

    public static func < (lhs: AbsolutePosition, rhs: AbsolutePosition) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Whether a point (pixels, y pointing down) lies in this region of a `width`×`height` canvas.
    ///
    /// Detector rule: left is x < 0.4·W, right is x > 0.6·W, top is y < 0.4·H, bottom is
    /// y > 0.6·H, corners need both, centre is within 0.15·W and 0.15·H of the middle.
    public func contains(x: Double, y: Double, width: Double, height: Double) -> Bool {
        let left = x < 0.4 * width, right = x > 0.6 * width
        let top = y < 0.4 * height, bottom = y > 0.6 * height
        switch self {
        case .left: return left
        case .right: return right
        case .top: return top
        case .bottom: return bottom
        case .topLeft: return top && left
        case .topRight: return top && right
        case .bottomLeft: return bottom && left
        case .bottomRight: return bottom && right
        case .center:
            return abs(x - width / 2) <= 0.15 * width && abs(y - height / 2) <= 0.15 * height
        }
    }

    /// The region a point lies in *clearly* (at least `margin` pixels inside the detector's
    /// thresholds), most specific first; `nil` when it lies near a boundary.
    public static func clearRegion(
        x: Double, y: Double, width: Double, height: Double, margin: Double
    ) -> AbsolutePosition? {
        let left = x < 0.4 * width - margin, right = x > 0.6 * width + margin
        let top = y < 0.4 * height - margin, bottom = y > 0.6 * height + margin
        let midX = abs(x - width / 2) <= 0.15 * width - margin
        let midY = abs(y - height / 2) <= 0.15 * height - margin
        let nearMidX = abs(x - width / 2) < 0.1 * width + margin
        let nearMidY = abs(y - height / 2) < 0.1 * height + margin
        if midX && midY { return .center }
        if top && left { return .topLeft }
        if top && right { return .topRight }
        if bottom && left { return .bottomLeft }
        if bottom && right { return .bottomRight }
        if left && nearMidY { return .left }
        if right && nearMidY { return .right }
        if top && nearMidX { return .top }
        if bottom && nearMidX { return .bottom }
        return nil
    }
}

/// A pairwise spatial relation between two objects, judged on centroids.
public enum Relation: String, CaseIterable, Codable, Sendable, Comparable {
    case leftOf = "left of"
    case rightOf = "right of"
    case above
    case below

    /// The relation with subject and object swapped.
    public var inverse: Relation {
        switch self {
        case .leftOf: return .rightOf
        case .rightOf: return .leftOf
        case .above: return .below
        case .below: return .above
        }
    }

    public static func < (lhs: Relation, rhs: Relation) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Whether centroid `a` stands in this relation to centroid `b` with at least `margin` pixels to
    /// spare along the relation's axis (y points down).
    public func holds(a: (x: Double, y: Double), b: (x: Double, y: Double), margin: Double) -> Bool {
        switch self {
        case .leftOf: return a.x + margin < b.x
        case .rightOf: return a.x > b.x + margin
        case .above: return a.y + margin < b.y
        case .below: return a.y > b.y + margin
        }
    }
}

/// The number words the grammar uses, indexed by value (0 is unused).
let numberWords = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
