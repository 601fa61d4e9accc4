// Grouped bar charts for result figures (e.g. the overhead suite), as SVG text or as an RGBImage.

import Foundation

/// Bars in groups: one bar per series in every group, heights from zero, written as SVG or drawn into
/// an ``RGBImage``.
///
/// ```swift
/// var chart = BarChart(title: "time relative to plain", groups: ["N_R = 1", "N_R = 3"])
/// chart.add("closed loop", values: [1.03, 1.16])
/// chart.add("paper", values: [1.05, 1.13])
/// try PNG.write(chart.image(), to: "overhead.png")
/// ```
public struct BarChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var values: [Double]
        public var color: RGB
    }

    public var title: String
    public var yLabel: String
    /// The groups' labels, left to right.
    public var groups: [String]
    public var width: Int
    public var height: Int
    /// A horizontal reference line (e.g. 1.0 for a ratio), if any.
    public var reference: Double?
    public private(set) var series: [Series] = []

    public init(title: String = "", yLabel: String = "", groups: [String], reference: Double? = nil,
                width: Int = 480, height: Int = 240) {
        self.title = title
        self.yLabel = yLabel
        self.groups = groups
        self.reference = reference
        self.width = width
        self.height = height
    }

    /// Adds a series, one value per group (a non-finite value draws no bar); its colour is the next
    /// of ``LinePlot/palette`` unless given.
    public mutating func add(_ name: String, values: [Double], color: RGB? = nil) throws(ImagingError) {
        guard values.count == groups.count else {
            throw .invalidPlot("\(name): \(values.count) values for \(groups.count) groups")
        }
        guard values.allSatisfy({ !$0.isFinite || $0 >= 0 }) else {
            throw .invalidPlot("\(name): bars start at zero, so values must not be negative")
        }
        let c = color ?? LinePlot.palette[series.count % LinePlot.palette.count]
        series.append(Series(name: name, values: values, color: c))
    }

    private static let margin = 24

    /// The top of the value axis: the largest value (or reference) and room above it for the legend.
    private func top() throws(ImagingError) -> Double {
        let values = series.flatMap(\.values).filter(\.isFinite) + (reference.map { [$0] } ?? [])
        guard let high = values.max(), high > 0, !groups.isEmpty, !series.isEmpty else {
            throw .invalidPlot("\(title.isEmpty ? "bar chart" : title): no bar to draw")
        }
        return high * 1.3
    }

    /// Left edge and width of bar `s` in group `g`, in pixels, for a plot area from `x0` of `span`.
    private func bar(_ g: Int, _ s: Int, x0: Double, span: Double) -> (x: Double, w: Double) {
        let slot = span / Double(groups.count)
        let w = slot * 0.8 / Double(series.count)
        return (x0 + Double(g) * slot + slot * 0.1 + Double(s) * w, w)
    }

    /// The chart as an SVG document.
    public func svg() throws(ImagingError) -> String {
        let high = try top()
        let m = Double(Self.margin) * 2
        let (w, h) = (Double(width), Double(height))
        let span = w - 1.5 * m
        func py(_ y: Double) -> Double { h - m - y / high * (h - 2 * m) }
        let (hex, esc) = (SVG.hex, SVG.escape)
        var out = SVG.axes(width: width, height: height, margin: m)
        out += "<text x=\"\(m)\" y=\"14\">\(esc(title))</text>\n"
        out += "<text x=\"\(m - 4)\" y=\"\(m + 4)\" text-anchor=\"end\">\(String(format: "%.3g", high))</text>\n"
        out += "<text x=\"\(m - 4)\" y=\"\(h - m)\" text-anchor=\"end\">0</text>\n"
        if !yLabel.isEmpty {
            out += "<text x=\"12\" y=\"\(h / 2)\" transform=\"rotate(-90 12 \(h / 2))\" text-anchor=\"middle\">"
                + "\(esc(yLabel))</text>\n"
        }
        if let reference {
            out += String(format: "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#999\" "
                + "stroke-dasharray=\"4 3\"/>\n", m, py(reference), w - m / 2, py(reference))
        }
        for (g, name) in groups.enumerated() {
            let (x, _) = bar(g, 0, x0: m, span: span)
            let slot = span / Double(groups.count)
            out += String(format: "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", x - slot * 0.1 + slot / 2, h - m + 14)
                + "\(esc(name))</text>\n"
            for (s, series) in series.enumerated() where series.values[g].isFinite {
                let (bx, bw) = bar(g, s, x0: m, span: span)
                let v = series.values[g]
                out += String(format: "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%@\">"
                    + "<title>%@</title></rect>\n", bx, py(v), bw, h - m - py(v), hex(series.color),
                    esc("\(series.name), \(name): \(String(format: "%.3g", v))"))
            }
        }
        for (k, s) in series.enumerated() {
            out += "<text x=\"\(w - m / 2)\" y=\"\(Double(m) + Double(k) * 14)\" text-anchor=\"end\" "
                + "fill=\"\(hex(s.color))\">\(esc(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    /// The chart drawn into an image (white background, the built-in bitmap font).
    public func image() throws(ImagingError) -> RGBImage {
        let high = try top()
        let (w, h, margin) = (width, height, Self.margin)
        guard w > 3 * margin, h > 3 * margin else { throw .invalidImageSize(width: w, height: h, reason: "too small for a chart") }
        var image = RGBImage(width: w, height: h, fill: RGB(1, 1, 1))
        func put(_ x: Int, _ y: Int, _ c: RGB) {
            guard x >= 0, x < w, y >= 0, y < h else { return }
            let i = 3 * (y * w + x)
            (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]) = (Float(c.r), Float(c.g), Float(c.b))
        }
        func py(_ v: Double) -> Int { h - margin - Int((v / high * Double(h - 2 * margin - 1)).rounded()) }
        let span = Double(w - 2 * margin)
        for (g, _) in groups.enumerated() {
            for (s, series) in series.enumerated() where series.values[g].isFinite {
                let (bx, bw) = bar(g, s, x0: Double(margin), span: span)
                let top = py(series.values[g])
                for x in Int(bx.rounded())..<Swift.max(Int(bx.rounded()) + 1, Int((bx + bw).rounded()) - 1) {
                    for y in top...(h - margin) { put(x, y, series.color) }
                }
            }
        }
        if let reference {
            for x in stride(from: margin, to: w - margin, by: 2) { put(x, py(reference), RGB(0.6, 0.6, 0.6)) }
        }
        let black = RGB(0, 0, 0)
        for x in margin..<(w - margin) { put(x, h - margin, black) }
        for y in margin..<(h - margin) { put(margin, y, black) }
        let ink = RGB(0.2, 0.2, 0.2)
        BitmapFont.draw((title.isEmpty ? "" : title + " ") + String(format: "%.3g", high), into: &image,
                        x: margin + 4, y: 4, color: ink)
        for (g, name) in groups.enumerated() {
            let (bx, _) = bar(g, 0, x0: Double(margin), span: span)
            BitmapFont.draw(name, into: &image, x: Int(bx), y: h - margin + 6, color: ink)
        }
        for (k, s) in series.enumerated() {
            BitmapFont.draw(s.name, into: &image, x: w - margin - s.name.count * 4, y: margin + 8 * k, color: s.color)
        }
        return image
    }
}
