// Deterministic anti-aliased rasteriser for ShapeWorld scenes.

import Imaging

/// Options of the renderer.
public struct RenderOptions: Sendable {
    /// Sub-samples per pixel along each axis (4 gives 16 coverage samples per pixel).
    public var supersampling: Int = 4
    /// Per-channel colour jitter: every channel of every object's colour and of the background is
    /// scaled by an independent factor drawn uniformly from `1 ± colorJitter` (0 disables it).
    public var colorJitter: Double = 0
    /// Seed for the colour jitter draws.
    public var jitterSeed: UInt64 = 0

    public init(supersampling: Int = 4, colorJitter: Double = 0, jitterSeed: UInt64 = 0) {
        self.supersampling = supersampling
        self.colorJitter = colorJitter
        self.jitterSeed = jitterSeed
    }
}

/// Draws scenes into RGB images. The output depends only on the scene and the options, so the same
/// seed always gives the same bytes.
///
/// ```swift
/// let image = Renderer().render(scene)
/// ```
public struct Renderer: Sendable {
    public var options: RenderOptions

    public init(options: RenderOptions = RenderOptions()) {
        self.options = options
    }

    /// Renders `scene`: background, then each object composited by its sub-pixel coverage.
    public func render(_ scene: Scene) -> RGBImage {
        var rng = SplitMix64(seed: options.jitterSeed, stream: 0x5EED)
        func jitter(_ c: RGB) -> RGB {
            guard options.colorJitter > 0 else { return c }
            let j = options.colorJitter
            return RGB(
                min(1, c.r * rng.uniform(1 - j, 1 + j)), min(1, c.g * rng.uniform(1 - j, 1 + j)),
                min(1, c.b * rng.uniform(1 - j, 1 + j)))
        }
        var image = RGBImage(width: scene.width, height: scene.height, fill: jitter(scene.background))
        let n = max(1, options.supersampling)
        let step = 1.0 / Double(n)
        let perPixel = Float(n * n)
        for object in scene.objects {
            let color = jitter(object.color.rgb)
            let cr = Float(color.r), cg = Float(color.g), cb = Float(color.b)
            let box = object.boundingBox
            let x0 = max(0, Int(box.minX.rounded(.down)))
            let x1 = min(scene.width - 1, Int(box.maxX.rounded(.up)))
            let y0 = max(0, Int(box.minY.rounded(.down)))
            let y1 = min(scene.height - 1, Int(box.maxY.rounded(.up)))
            if x0 > x1 || y0 > y1 { continue }
            for py in y0...y1 {
                for px in x0...x1 {
                    var hits = 0
                    for sy in 0..<n {
                        let y = Double(py) + (Double(sy) + 0.5) * step
                        for sx in 0..<n {
                            let x = Double(px) + (Double(sx) + 0.5) * step
                            if object.contains(px: x, py: y) { hits += 1 }
                        }
                    }
                    if hits == 0 { continue }
                    let a = Float(hits) / perPixel
                    let o = (py * scene.width + px) * 3
                    image.pixels[o] = image.pixels[o] * (1 - a) + cr * a
                    image.pixels[o + 1] = image.pixels[o + 1] * (1 - a) + cg * a
                    image.pixels[o + 2] = image.pixels[o + 2] * (1 - a) + cb * a
                }
            }
        }
        return image
    }
}
