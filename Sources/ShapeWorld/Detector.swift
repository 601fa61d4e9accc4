// The detection half of ShapeEval: colour segmentation, connected components, shape
// classification. Works on images from any source; they are resized to 64×64 first.

import Foundation
import Imaging

/// One object found in an image. Coordinates are pixels on the 64×64 working canvas, y down.
public struct Detection: Hashable, Codable, Sendable {
    public var shape: Shape
    public var color: ShapeColor
    public var size: ObjectSize
    /// Centroid.
    public var x: Double
    public var y: Double
    /// Number of foreground pixels.
    public var area: Int
    /// Bounding-box width and height in pixels.
    public var width: Int
    public var height: Int
    /// Half-extent of the best-fitting shape, from the blob's mass (small 6, large 10).
    public var halfExtent: Double
    /// Mean squared difference between the blob's coverage and the best-fitting shape.
    public var fitError: Double

    public init(
        shape: Shape, color: ShapeColor, size: ObjectSize, x: Double, y: Double, area: Int = 0,
        width: Int = 0, height: Int = 0, halfExtent: Double = 0, fitError: Double = 0
    ) {
        self.shape = shape
        self.color = color
        self.size = size
        self.x = x
        self.y = y
        self.area = area
        self.width = width
        self.height = height
        self.halfExtent = halfExtent
        self.fitError = fitError
    }

    enum CodingKeys: String, CodingKey {
        case shape, color, size, x, y, area, width, height
        case halfExtent = "half_extent"
        case fitError = "fit_error"
    }
}

/// Tunable thresholds of the detector. The defaults are the ones measured in `docs/shapeworld.md`.
public struct DetectorOptions: Sendable {
    /// Side of the working canvas every image is resized to.
    public var canvas: Int = 64
    /// A pixel is foreground when its estimated coverage by a palette colour is at least this.
    public var alphaThreshold: Double = 0.5
    /// Components with fewer foreground pixels are ignored (noise, stray edges).
    public var minArea: Int = 24
    /// Fitted half-extent (pixels) separating small (6 px) from large (10 px) objects.
    public var largeHalfExtent: Double = 8
    /// Blobs whose best shape fit has a larger mean squared coverage error are not objects. The worst
    /// real object in 2,000 scenes under the combined degradations fits at 0.061.
    public var maxFitError: Double = 0.1

    public init() {}
}

/// Finds coloured shapes in an image.
///
/// Each pixel is explained as a mix `bg + a·(c − bg)` of the background (estimated as the median of
/// the border pixels) and one palette colour `c`; the colour with the least residual wins and `a`
/// is the pixel's coverage, so anti-aliased and blurred edges keep their colour. Pixels with
/// coverage ≥ 0.5 form 8-connected components; a component holding two large single-colour parts
/// is split by colour, unless the parts are too close to be two objects (one object whose colour
/// drifts, as in generated images; the majority colour wins). Shape and size come from fitting each shape to the
/// blob's soft coverage; a blob no shape fits (`maxFitError`) is dropped.
///
/// ```swift
/// let detections = ShapeDetector().detect(image)
/// ```
public struct ShapeDetector: Sendable {
    public var options: DetectorOptions

    public init(options: DetectorOptions = DetectorOptions()) {
        self.options = options
    }

    /// The objects in `image`, sorted left to right.
    public func detect(_ image: RGBImage) -> [Detection] {
        let n = options.canvas
        let img = image.resized(width: n, height: n)
        let bg = estimateBackground(img)
        let palette = ShapeColor.allCases
        let dirs = palette.map { c -> (Float, Float, Float, Float) in
            let d = (Float(c.rgb.r) - bg.0, Float(c.rgb.g) - bg.1, Float(c.rgb.b) - bg.2)
            return (d.0, d.1, d.2, max(d.0 * d.0 + d.1 * d.1 + d.2 * d.2, 1e-6))
        }
        let threshold = Float(options.alphaThreshold)
        var label = [Int8](repeating: -1, count: n * n)
        for i in 0..<(n * n) {
            let v = (
                img.pixels[3 * i] - bg.0, img.pixels[3 * i + 1] - bg.1, img.pixels[3 * i + 2] - bg.2
            )
            // The colour whose mix with the background explains the pixel best; a faint edge of
            // one colour must not pass for the full coverage of another.
            var best = -1
            var bestResidual = Float.infinity
            var bestAlpha: Float = 0
            for (k, d) in dirs.enumerated() {
                let a = min(max((v.0 * d.0 + v.1 * d.1 + v.2 * d.2) / d.3, 0), 1.25)
                let r0 = v.0 - a * d.0, r1 = v.1 - a * d.1, r2 = v.2 - a * d.2
                let residual = r0 * r0 + r1 * r1 + r2 * r2
                if residual < bestResidual {
                    bestResidual = residual
                    best = k
                    bestAlpha = a
                }
            }
            label[i] = bestAlpha >= threshold ? Int8(best) : -1
        }
        var detections: [Detection] = []
        let found = components(n: n, where: { label[$0] >= 0 })
        // Which component owns each foreground pixel (-1: background), so that a blob's soft
        // measurements never count a neighbour's pixels.
        var owner = [Int32](repeating: -1, count: n * n)
        for (k, component) in found.enumerated() { for p in component { owner[p] = Int32(k) } }
        for component in found {
            var histogram = [Int](repeating: 0, count: palette.count)
            for p in component { histogram[Int(label[p])] += 1 }
            let major = histogram.indices.filter {
                histogram[$0] >= max(options.minArea, component.count / 5)
            }
            if major.count <= 1 {
                guard component.count >= options.minArea else { continue }
                let best = histogram.indices.max { histogram[$0] < histogram[$1] }!
                detections.append(
                    describe(component, color: palette[best], image: img, background: bg, owner: owner))
            } else {
                let members = Set(component)
                var parts: [(pixels: [Int], color: Int)] = []
                for k in major {
                    for part in components(n: n, where: { members.contains($0) && Int(label[$0]) == k })
                    where part.count >= options.minArea {
                        parts.append((part, k))
                    }
                }
                // Parts too close to be two objects are one object whose colour drifts (a gradient
                // in a generated image): merged, with the majority colour.
                for group in mergedGroups(parts.map(\.pixels), n: n) {
                    let pixels = group.flatMap { parts[$0].pixels }
                    let largest = group.max { parts[$0].pixels.count < parts[$1].pixels.count }!
                    detections.append(
                        describe(pixels, color: palette[parts[largest].color], image: img, background: bg, owner: owner))
                }
            }
        }
        // A blob that no shape explains (two objects melted together, a smear) is no object of the
        // vocabulary. Real objects fit far better even when degraded (docs/shapeworld.md).
        detections.removeAll { $0.fitError > options.maxFitError }
        return detections.sorted { ($0.x, $0.y) < ($1.x, $1.y) }
    }

    /// Groups of `parts` (pixel lists), transitively joined wherever two parts' centroids are closer
    /// than the radius of a disc as large as both together: a shape cut in two by a colour boundary
    /// has its halves that close; two ShapeWorld objects never do (their boxes are ≥ 4 px apart along
    /// one axis, so their centroids are at least their two half-extents plus 4 px apart).
    func mergedGroups(_ parts: [[Int]], n: Int) -> [[Int]] {
        let centroids = parts.map { pixels -> (Double, Double) in
            let sx = pixels.reduce(0) { $0 + $1 % n }, sy = pixels.reduce(0) { $0 + $1 / n }
            return (Double(sx) / Double(pixels.count), Double(sy) / Double(pixels.count))
        }
        var group = Array(parts.indices)
        func root(_ i: Int) -> Int { group[i] == i ? i : root(group[i]) }
        for i in parts.indices {
            for j in parts.indices where j > i {
                let (dx, dy) = (centroids[i].0 - centroids[j].0, centroids[i].1 - centroids[j].1)
                let radius = (Double(parts[i].count + parts[j].count) / Double.pi).squareRoot()
                if (dx * dx + dy * dy).squareRoot() < radius { group[root(j)] = root(i) }
            }
        }
        return Dictionary(grouping: parts.indices, by: root).values.sorted { $0[0] < $1[0] }
    }

    /// Median of the one-pixel border, per channel.
    func estimateBackground(_ img: RGBImage) -> (Float, Float, Float) {
        var r: [Float] = [], g: [Float] = [], b: [Float] = []
        let w = img.width, h = img.height
        for y in 0..<h {
            for x in 0..<w where y == 0 || y == h - 1 || x == 0 || x == w - 1 {
                r.append(img[x, y, 0])
                g.append(img[x, y, 1])
                b.append(img[x, y, 2])
            }
        }
        func median(_ a: [Float]) -> Float { a.sorted()[a.count / 2] }
        return (median(r), median(g), median(b))
    }

    /// 8-connected components of the pixels for which `inside` holds, each as pixel indices.
    func components(n: Int, where inside: (Int) -> Bool) -> [[Int]] {
        var seen = [Bool](repeating: false, count: n * n)
        var result: [[Int]] = []
        for start in 0..<(n * n) where !seen[start] && inside(start) {
            var stack = [start]
            seen[start] = true
            var members: [Int] = []
            while let p = stack.popLast() {
                members.append(p)
                let px = p % n, py = p / n
                for dy in -1...1 {
                    for dx in -1...1 where dx != 0 || dy != 0 {
                        let x = px + dx, y = py + dy
                        if x < 0 || y < 0 || x >= n || y >= n { continue }
                        let q = y * n + x
                        if !seen[q] && inside(q) {
                            seen[q] = true
                            stack.append(q)
                        }
                    }
                }
            }
            result.append(members)
        }
        return result
    }

    /// Measures a blob and classifies its shape and size by fitting each shape.
    ///
    /// The blob's soft coverage `a` (projection on its colour, over its box grown by three pixels,
    /// other blobs' pixels excluded) gives the mass `A` and the centroid, which blur and noise leave
    /// unbiased. Each shape hypothesis is then fully determined — centred on the centroid, with
    /// half-extent `r = sqrt(A / k)` (k = π, 4, 2) — and rendered sharp and blurred (σ = 1.2 px); the
    /// hypothesis with the least squared difference to `a` wins. Size: `r ≥ largeHalfExtent`.
    func describe(
        _ pixels: [Int], color: ShapeColor, image: RGBImage, background bg: (Float, Float, Float),
        owner: [Int32]
    ) -> Detection {
        let n = image.width
        var minX = n, minY = n, maxX = -1, maxY = -1
        for p in pixels {
            let x = p % n, y = p / n
            minX = min(minX, x)
            maxX = max(maxX, x)
            minY = min(minY, y)
            maxY = max(maxY, y)
        }
        let me = owner[pixels[0]]
        let x0 = max(0, minX - 3), x1 = min(n - 1, maxX + 3)
        let y0 = max(0, minY - 3), y1 = min(n - 1, maxY + 3)
        let rw = x1 - x0 + 1, rh = y1 - y0 + 1
        let d = (Float(color.rgb.r) - bg.0, Float(color.rgb.g) - bg.1, Float(color.rgb.b) - bg.2)
        let norm = max(d.0 * d.0 + d.1 * d.1 + d.2 * d.2, 1e-6)
        var alpha = [Double](repeating: 0, count: rw * rh)
        var mass = 0.0, sx = 0.0, sy = 0.0
        for y in y0...y1 {
            for x in x0...x1 {
                let p = y * n + x
                if owner[p] >= 0 && owner[p] != me { continue }
                let o = p * 3
                let v = (image.pixels[o] - bg.0, image.pixels[o + 1] - bg.1, image.pixels[o + 2] - bg.2)
                let a = Double(min(max((v.0 * d.0 + v.1 * d.1 + v.2 * d.2) / norm, -0.5), 1.5))
                alpha[(y - y0) * rw + (x - x0)] = a
                mass += a
                sx += a * (Double(x) + 0.5)
                sy += a * (Double(y) + 0.5)
            }
        }
        mass = max(mass, 1e-6)
        let cx = sx / mass, cy = sy / mass
        var bestShape = Shape.circle
        var bestError = Double.infinity
        var bestR = 0.0
        for shape in Shape.allCases {
            let r = (mass / shape.areaFactor).squareRoot()
            let sharp = template(shape, r: r, cx: cx - Double(x0), cy: cy - Double(y0), w: rw, h: rh)
            for sigma in [0.0, 1.2] {
                let t = sigma > 0 ? blur(sharp, w: rw, h: rh, sigma: sigma) : sharp
                var err = 0.0
                for k in 0..<alpha.count {
                    let e = alpha[k] - t[k]
                    err += e * e
                }
                if err < bestError {
                    bestError = err
                    bestShape = shape
                    bestR = r
                }
            }
        }
        let size: ObjectSize = bestR >= options.largeHalfExtent ? .large : .small
        return Detection(
            shape: bestShape, color: color, size: size, x: cx, y: cy, area: pixels.count,
            width: maxX - minX + 1, height: maxY - minY + 1, halfExtent: bestR,
            fitError: bestError / Double(alpha.count))
    }

    /// Coverage of a shape centred at (`cx`, `cy`) in a `w`×`h` grid, 3×3 samples per pixel.
    func template(_ shape: Shape, r: Double, cx: Double, cy: Double, w: Int, h: Int) -> [Double] {
        var t = [Double](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                var hits = 0
                for sy in 0..<3 {
                    let py = Double(y) + (Double(sy) + 0.5) / 3 - cy
                    for sx in 0..<3 {
                        let px = Double(x) + (Double(sx) + 0.5) / 3 - cx
                        if shape.contains(dx: px, dy: py, halfExtent: r) { hits += 1 }
                    }
                }
                t[y * w + x] = Double(hits) / 9
            }
        }
        return t
    }

    /// Separable Gaussian blur of a small grid (edges clamp).
    func blur(_ src: [Double], w: Int, h: Int, sigma: Double) -> [Double] {
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var tmp = [Double](repeating: 0, count: w * h)
        var out = tmp
        for y in 0..<h {
            for x in 0..<w {
                var acc = 0.0
                for k in -radius...radius {
                    acc += kernel[k + radius] * src[y * w + min(max(x + k, 0), w - 1)]
                }
                tmp[y * w + x] = acc
            }
        }
        for y in 0..<h {
            for x in 0..<w {
                var acc = 0.0
                for k in -radius...radius {
                    acc += kernel[k + radius] * tmp[min(max(y + k, 0), h - 1) * w + x]
                }
                out[y * w + x] = acc
            }
        }
        return out
    }
}
