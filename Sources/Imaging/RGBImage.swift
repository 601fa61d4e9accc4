// A plain RGB image with Float components in [0, 1].

/// An RGB image stored row-major, interleaved, with components in [0, 1].
public struct RGBImage: Hashable, Sendable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` components, row-major, RGB interleaved.
    public var pixels: [Float]

    /// An image filled with one colour.
    public init(width: Int, height: Int, fill: RGB = RGB(0, 0, 0)) {
        precondition(width > 0 && height > 0, "image size must be positive")
        self.width = width
        self.height = height
        var p = [Float](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            p[3 * i] = Float(fill.r)
            p[3 * i + 1] = Float(fill.g)
            p[3 * i + 2] = Float(fill.b)
        }
        pixels = p
    }

    /// An image from interleaved components.
    @inlinable
    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(pixels.count == width * height * 3, "pixel count does not match the size")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image from 8-bit interleaved RGB bytes.
    public init(width: Int, height: Int, bytes: [UInt8]) {
        precondition(bytes.count == width * height * 3, "byte count does not match the size")
        self.width = width
        self.height = height
        pixels = bytes.map { Float($0) / 255 }
    }

    /// The image quantised to 8-bit interleaved RGB bytes (round to nearest, clamped).
    public var bytes: [UInt8] {
        pixels.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
    }

    /// The image as planar channel-first values (`3 × height × width`, the layout of a tensor
    /// `[3, H, W]`), mapped from [0, 1] to `range` (diffusion models use −1…1).
    public func planar(range: ClosedRange<Float> = 0...1) -> [Float] {
        let n = width * height
        let scale = range.upperBound - range.lowerBound
        var out = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n {
            for c in 0..<3 { out[c * n + i] = range.lowerBound + scale * pixels[3 * i + c] }
        }
        return out
    }

    /// An image from planar channel-first values in `range` (the inverse of `planar(range:)`);
    /// values outside the range are clamped.
    public init(width: Int, height: Int, planar: [Float], range: ClosedRange<Float> = 0...1) {
        precondition(planar.count == width * height * 3, "value count does not match the size")
        let n = width * height
        let scale = range.upperBound - range.lowerBound
        var p = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n {
            for c in 0..<3 {
                p[3 * i + c] = min(1, max(0, (planar[c * n + i] - range.lowerBound) / scale))
            }
        }
        self.init(width: width, height: height, pixels: p)
    }

    /// The component `channel` (0 red, 1 green, 2 blue) at column `x`, row `y`. Inlinable: the
    /// renderer and the detector in other modules read and write pixels in their inner loops.
    @inlinable @inline(__always)
    public subscript(x: Int, y: Int, channel: Int) -> Float {
        get { pixels[(y * width + x) * 3 + channel] }
        set { pixels[(y * width + x) * 3 + channel] = newValue }
    }

    /// The image enlarged `k` times by nearest neighbour (for viewing small images).
    public func enlarged(by k: Int) -> RGBImage {
        precondition(k >= 1, "enlargement must be at least 1")
        var out = RGBImage(width: width * k, height: height * k)
        for y in 0..<out.height {
            for x in 0..<out.width {
                for c in 0..<3 { out[x, y, c] = self[x / k, y / k, c] }
            }
        }
        return out
    }

    /// The image resized by area averaging (shrinking) or bilinear interpolation (enlarging).
    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        if newWidth == width && newHeight == height { return self }
        var out = [Float](repeating: 0, count: newWidth * newHeight * 3)
        let sx = Double(width) / Double(newWidth), sy = Double(height) / Double(newHeight)
        if sx >= 1 && sy >= 1 {
            // Area average: each output pixel integrates the input pixels it covers.
            for oy in 0..<newHeight {
                let y0 = Double(oy) * sy, y1 = y0 + sy
                for ox in 0..<newWidth {
                    let x0 = Double(ox) * sx, x1 = x0 + sx
                    var acc: (Double, Double, Double) = (0, 0, 0)
                    var total = 0.0
                    var iy = Int(y0)
                    while Double(iy) < y1 && iy < height {
                        let wy = min(y1, Double(iy + 1)) - max(y0, Double(iy))
                        var ix = Int(x0)
                        while Double(ix) < x1 && ix < width {
                            let wgt = wy * (min(x1, Double(ix + 1)) - max(x0, Double(ix)))
                            let base = (iy * width + ix) * 3
                            acc.0 += wgt * Double(pixels[base])
                            acc.1 += wgt * Double(pixels[base + 1])
                            acc.2 += wgt * Double(pixels[base + 2])
                            total += wgt
                            ix += 1
                        }
                        iy += 1
                    }
                    let o = (oy * newWidth + ox) * 3
                    out[o] = Float(acc.0 / total)
                    out[o + 1] = Float(acc.1 / total)
                    out[o + 2] = Float(acc.2 / total)
                }
            }
        } else {
            // Bilinear, pixel centres aligned (half-pixel convention).
            for oy in 0..<newHeight {
                let fy = min(max((Double(oy) + 0.5) * sy - 0.5, 0), Double(height - 1))
                let y0 = Int(fy), y1 = min(y0 + 1, height - 1), ty = Float(fy - Double(y0))
                for ox in 0..<newWidth {
                    let fx = min(max((Double(ox) + 0.5) * sx - 0.5, 0), Double(width - 1))
                    let x0 = Int(fx), x1 = min(x0 + 1, width - 1), tx = Float(fx - Double(x0))
                    for c in 0..<3 {
                        let a = self[x0, y0, c] * (1 - tx) + self[x1, y0, c] * tx
                        let b = self[x0, y1, c] * (1 - tx) + self[x1, y1, c] * tx
                        out[(oy * newWidth + ox) * 3 + c] = a * (1 - ty) + b * ty
                    }
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }
}

/// An sRGB colour with components in [0, 1].
public struct RGB: Hashable, Codable, Sendable {
    public var r: Double
    public var g: Double
    public var b: Double

    public init(_ r: Double, _ g: Double, _ b: Double) {
        self.r = r
        self.g = g
        self.b = b
    }

    enum CodingKeys: String, CodingKey {
        case r, g, b
    }
}
