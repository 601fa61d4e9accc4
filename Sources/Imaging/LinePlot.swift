// Line plots for learning curves and result figures, as SVG text or as an RGBImage (for PNG).

import Foundation

/// A plot of one or more series of (x, y) points, written as SVG or drawn into an ``RGBImage``.
///
/// ```swift
/// var plot = LinePlot(title: "loss", xLabel: "step", logY: true)
/// plot.add("train", points: rows.map { (Double($0.step), $0.loss) })
/// try plot.svg().write(toFile: "loss.svg", atomically: true, encoding: .utf8)
/// try PNG.write(plot.image(), to: "loss.png")
/// ```
///
/// Non-finite points (and, on a log axis, non-positive ones) are left out. Long series are averaged
/// into pixel columns in the bitmap so that a curve of a million steps stays readable.
public struct LinePlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [Point]
        public var color: RGB
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(_ x: Double, _ y: Double) {
            self.x = x
            self.y = y
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logY: Bool
    public var width: Int
    public var height: Int
    public private(set) var series: [Series] = []

    /// Colours given to series in turn.
    public static let palette = [RGB(0.1, 0.3, 0.9), RGB(0.85, 0.3, 0.1), RGB(0.1, 0.6, 0.2), RGB(0.6, 0.2, 0.7),
                                 RGB(0.5, 0.5, 0.5), RGB(0.9, 0.7, 0.0)]

    public init(title: String = "", xLabel: String = "", yLabel: String = "", logY: Bool = false,
                width: Int = 480, height: Int = 240) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logY = logY
        self.width = width
        self.height = height
    }

    /// Adds a series; its colour is the next of ``palette`` unless given.
    public mutating func add(_ name: String, points: [(Double, Double)], color: RGB? = nil) {
        let c = color ?? Self.palette[series.count % Self.palette.count]
        series.append(Series(name: name, points: points.map { Point($0.0, $0.1) }, color: c))
    }

    // MARK: geometry

    private static let margin = 24

    /// The drawable points of each series (finite; positive on a log axis), y transformed.
    private func drawable() -> [[Point]] {
        series.map { s in
            s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
                .map { Point($0.x, logY ? Foundation.log10($0.y) : $0.y) }
        }
    }

    private struct Frame {
        var x0: Double, x1: Double, y0: Double, y1: Double
    }

    private func frame(_ sets: [[Point]]) throws(ImagingError) -> Frame {
        let all = sets.flatMap { $0 }
        guard let first = all.first else { throw .invalidPlot("\(title.isEmpty ? "plot" : title): no finite point") }
        var f = Frame(x0: first.x, x1: first.x, y0: first.y, y1: first.y)
        for p in all {
            f.x0 = Swift.min(f.x0, p.x); f.x1 = Swift.max(f.x1, p.x)
            f.y0 = Swift.min(f.y0, p.y); f.y1 = Swift.max(f.y1, p.y)
        }
        if f.x1 - f.x0 < 1e-12 { f.x1 = f.x0 + 1 }
        if f.y1 - f.y0 < 1e-12 { (f.y0, f.y1) = (f.y0 - 0.5, f.y1 + 0.5) }
        return f
    }

    private func label(_ v: Double) -> String {
        String(format: "%.3g", logY ? Foundation.pow(10, v) : v)
    }

    // MARK: SVG

    /// The plot as an SVG document.
    public func svg() throws(ImagingError) -> String {
        let sets = drawable()
        let f = try frame(sets)
        let m = Double(Self.margin) * 2
        let (w, h) = (Double(width), Double(height))
        func px(_ x: Double) -> Double { m + (x - f.x0) / (f.x1 - f.x0) * (w - 1.5 * m) }
        func py(_ y: Double) -> Double { h - m - (y - f.y0) / (f.y1 - f.y0) * (h - 2 * m) }
        let (hex, esc) = (SVG.hex, SVG.escape)
        var out = SVG.axes(width: width, height: height, margin: m)
        out += "<text x=\"\(m)\" y=\"14\">\(esc(title))\(logY ? " (log scale)" : "")</text>\n"
        out += "<text x=\"\(m - 4)\" y=\"\(m + 4)\" text-anchor=\"end\">\(label(f.y1))</text>\n"
        out += "<text x=\"\(m - 4)\" y=\"\(h - m)\" text-anchor=\"end\">\(label(f.y0))</text>\n"
        out += "<text x=\"\(m)\" y=\"\(h - m + 14)\">\(String(format: "%.6g", f.x0))</text>\n"
        out += "<text x=\"\(w - m / 2)\" y=\"\(h - m + 14)\" text-anchor=\"end\">\(String(format: "%.6g", f.x1))</text>\n"
        out += "<text x=\"\(w / 2)\" y=\"\(h - 6)\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        if !yLabel.isEmpty {
            out += "<text x=\"12\" y=\"\(h / 2)\" transform=\"rotate(-90 12 \(h / 2))\" text-anchor=\"middle\">"
                + "\(esc(yLabel))</text>\n"
        }
        for (k, (s, points)) in zip(series, sets).enumerated() where !points.isEmpty {
            let path = points.map { String(format: "%.2f,%.2f", px($0.x), py($0.y)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(hex(s.color))\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            if series.count > 1 {
                out += "<text x=\"\(w - m / 2)\" y=\"\(Double(m) + Double(k) * 14)\" text-anchor=\"end\" "
                    + "fill=\"\(hex(s.color))\">\(esc(s.name))</text>\n"
            }
        }
        return out + "</svg>\n"
    }

    // MARK: bitmap

    /// The plot drawn into an image (white background, the built-in bitmap font).
    public func image() throws(ImagingError) -> RGBImage {
        let sets = drawable()
        let f = try frame(sets)
        let (w, h, margin) = (width, height, Self.margin)
        guard w > 3 * margin, h > 3 * margin else {
            throw .invalidImageSize(width: w, height: h, reason: "too small for a plot")
        }
        var image = RGBImage(width: w, height: h, fill: RGB(1, 1, 1))
        func put(_ x: Int, _ y: Int, _ c: RGB) {
            guard x >= 0, x < w, y >= 0, y < h else { return }
            let i = 3 * (y * w + x)
            (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]) = (Float(c.r), Float(c.g), Float(c.b))
        }
        let black = RGB(0, 0, 0)
        for x in margin..<(w - margin) { put(x, h - margin, black) }
        for y in margin..<(h - margin) { put(margin, y, black) }
        for (s, points) in zip(series, sets) {
            // Average into pixel columns, then join neighbouring columns with vertical runs.
            var columns: [Int: (sum: Double, n: Int)] = [:]
            for p in points {
                let x = margin + Int((p.x - f.x0) / (f.x1 - f.x0) * Double(w - 2 * margin - 1))
                columns[x, default: (0, 0)].sum += p.y
                columns[x, default: (0, 0)].n += 1
            }
            // Sparse series (a point every few columns) are joined by straight segments.
            var previous: (x: Int, y: Int)?
            for x in columns.keys.sorted() {
                let c = columns[x]!
                let v = c.sum / Double(c.n)
                let y = h - margin - Int((v - f.y0) / (f.y1 - f.y0) * Double(h - 2 * margin - 1))
                let start = previous ?? (x, y)
                var lastY = start.y
                for xx in (start.x + (previous == nil ? 0 : 1))...x {
                    let t = x == start.x ? 1 : Double(xx - start.x) / Double(x - start.x)
                    let yy = Int((Double(start.y) + t * Double(y - start.y)).rounded())
                    for yyy in Swift.min(lastY, yy)...Swift.max(lastY, yy) { put(xx, yyy, s.color) }
                    put(xx, yy + 1, s.color)
                    lastY = yy
                }
                previous = (x, y)
            }
        }
        let ink = RGB(0.2, 0.2, 0.2)
        BitmapFont.draw((title.isEmpty ? "" : title + " ") + (logY ? "(log) " : "") + label(f.y1), into: &image,
                        x: margin + 4, y: 4, color: ink)
        BitmapFont.draw(label(f.y0), into: &image, x: margin + 4, y: h - margin - 10, color: ink)
        let left = xLabel.isEmpty ? String(format: "%.6g", f.x0) : "\(xLabel) \(String(format: "%.6g", f.x0))"
        BitmapFont.draw(left, into: &image, x: margin, y: h - margin + 6, color: ink)
        let right = String(format: "%.6g", f.x1)
        BitmapFont.draw(right, into: &image, x: w - margin - right.count * 4, y: h - margin + 6, color: ink)
        if series.count > 1 {
            for (k, s) in series.enumerated() {
                BitmapFont.draw(s.name, into: &image, x: w - margin - s.name.count * 4, y: margin + 8 * k, color: s.color)
            }
        }
        return image
    }
}

/// What the SVG figures share: colours, escaping, and the white canvas with its two axes.
enum SVG {
    static func hex(_ c: RGB) -> String {
        String(format: "#%02x%02x%02x", Int(c.r * 255), Int(c.g * 255), Int(c.b * 255))
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The document's opening: a white canvas, the x axis at `margin` above the bottom and the y axis at
    /// `margin` from the left.
    static func axes(width: Int, height: Int, margin m: Double) -> String {
        let (w, h) = (Double(width), Double(height))
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" \
            font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <line x1="\(m)" y1="\(h - m)" x2="\(w - m / 2)" y2="\(h - m)" stroke="black"/>
            <line x1="\(m)" y1="\(m)" x2="\(m)" y2="\(h - m)" stroke="black"/>

            """
    }
}
