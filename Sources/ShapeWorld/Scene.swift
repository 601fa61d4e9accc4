// A ShapeWorld scene: plain background and a few non-overlapping coloured shapes.

import Imaging

/// One drawn object. `x`, `y` is the object's centroid in pixels (y points down), which is also
/// what the detector measures.
public struct SceneObject: Hashable, Codable, Sendable {
    public var shape: Shape
    public var color: ShapeColor
    public var size: ObjectSize
    public var x: Double
    public var y: Double

    public init(shape: Shape, color: ShapeColor, size: ObjectSize, x: Double, y: Double) {
        self.shape = shape
        self.color = color
        self.size = size
        self.x = x
        self.y = y
    }

    enum CodingKeys: String, CodingKey {
        case shape, color, size, x, y
    }

    /// The tight axis-aligned bounding box `(minX, minY, maxX, maxY)` of the shape.
    public var boundingBox: (minX: Double, minY: Double, maxX: Double, maxY: Double) {
        let r = size.halfExtent
        switch shape {
        case .circle, .square:
            return (x - r, y - r, x + r, y + r)
        case .triangle:
            // Base 2r, height 2r; the centroid sits a third of the height above the base.
            return (x - r, y - 4 * r / 3, x + r, y + 2 * r / 3)
        case .diamond:
            return (x - r, y - r, x + r, y + r)
        }
    }

    /// Whether the point lies inside the shape.
    @inline(__always)
    public func contains(px: Double, py: Double) -> Bool {
        shape.contains(dx: px - x, dy: py - y, halfExtent: size.halfExtent)
    }

    /// A short phrase such as "small red circle".
    public var phrase: String { "\(size.rawValue) \(color.rawValue) \(shape.rawValue)" }
}

/// A scene: the canvas size, background colour and objects.
public struct Scene: Hashable, Codable, Sendable {
    public var width: Int
    public var height: Int
    public var background: RGB
    public var objects: [SceneObject]

    /// The background every ShapeWorld scene is drawn on (light grey).
    public static let defaultBackground = RGB(0.92, 0.92, 0.92)

    public init(
        width: Int = 64, height: Int = 64, background: RGB = Scene.defaultBackground,
        objects: [SceneObject]
    ) {
        self.width = width
        self.height = height
        self.background = background
        self.objects = objects
    }

    enum CodingKeys: String, CodingKey {
        case width, height, background, objects
    }

    /// How many objects of each (colour, shape) the scene holds.
    public var colorShapeCounts: [ColorShape: Int] {
        var counts: [ColorShape: Int] = [:]
        for o in objects { counts[ColorShape(color: o.color, shape: o.shape), default: 0] += 1 }
        return counts
    }
}

/// A colour–shape pair.
public struct ColorShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var color: ShapeColor
    public var shape: Shape

    public init(color: ShapeColor, shape: Shape) {
        self.color = color
        self.shape = shape
    }

    enum CodingKeys: String, CodingKey {
        case color, shape
    }

    public var description: String { "\(color.rawValue) \(shape.rawValue)" }
}

extension Shape {
    /// Whether the offset (`dx`, `dy`) from the shape's centroid lies inside the shape of half-extent
    /// `r` (circle radius, half the square's side, half the triangle's base and height, half the
    /// diamond's diagonals).
    @inline(__always)
    public func contains(dx: Double, dy: Double, halfExtent r: Double) -> Bool {
        switch self {
        case .circle:
            return dx * dx + dy * dy <= r * r
        case .square:
            return abs(dx) <= r && abs(dy) <= r
        case .triangle:
            // Apex 4r/3 above the centroid, base 2r/3 below it.
            let fromApex = dy + 4 * r / 3
            if fromApex < 0 || dy > 2 * r / 3 { return false }
            return abs(dx) <= fromApex / 2
        case .diamond:
            return abs(dx) + abs(dy) <= r
        }
    }

    /// Area of the shape with half-extent `r`, divided by r².
    public var areaFactor: Double {
        switch self {
        case .circle: return Double.pi
        case .square: return 4
        case .triangle: return 2
        case .diamond: return 2
        }
    }
}
