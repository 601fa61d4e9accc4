import Foundation
import Testing

@testable import Imaging

@Suite("PNG and contact sheets")
struct ImageIOTests {
    /// A 64×64 image with every channel varying (a gradient and a block of colour).
    func sample() -> RGBImage {
        var image = RGBImage(width: 64, height: 64, fill: RGB(0.9, 0.9, 0.85))
        for y in 0..<64 {
            for x in 0..<64 {
                image[x, y, 0] = Float(x) / 63
                image[x, y, 1] = Float(y) / 63
                if (20..<40).contains(x) && (10..<30).contains(y) { image[x, y, 2] = 0.1 }
            }
        }
        return image
    }

    @Test("PNG round trip keeps every byte, in memory and on disk")
    func roundTrip() throws {
        let image = sample()
        let decoded = try PNG.decode(try PNG.encode(image))
        #expect(decoded.bytes == image.bytes)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sw-\(UUID()).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PNG.write(image, to: path)
        #expect(try PNG.read(from: path).bytes == image.bytes)
    }

    @Test("grey, grey+alpha and RGBA PNGs decode to RGB; transparency becomes white")
    func otherFormats() throws {
        let grey = try PNG.decode(try PNG.encode(bytes: [0, 128, 255, 64], width: 2, height: 2, channels: 1))
        #expect(grey.bytes == [0, 0, 0, 128, 128, 128, 255, 255, 255, 64, 64, 64])
        let rgba = try PNG.decode(
            try PNG.encode(bytes: [255, 0, 0, 255, 0, 0, 255, 0], width: 2, height: 1, channels: 4))
        #expect(rgba.bytes == [255, 0, 0, 255, 255, 255])
        let ga = try PNG.decode(try PNG.encode(bytes: [0, 255, 0, 0], width: 2, height: 1, channels: 2))
        #expect(ga.bytes == [0, 0, 0, 255, 255, 255])
    }

    @Test("planar (tensor-layout) conversion round trips and maps the range")
    func planar() {
        let image = sample()
        let values = image.planar(range: -1...1)
        #expect(values.count == 3 * 64 * 64)
        #expect(abs(values[0] - (2 * image[0, 0, 0] - 1)) < 1e-6)
        #expect(abs(values[64 * 64 + 5] - (2 * image[5, 0, 1] - 1)) < 1e-6)
        let back = RGBImage(width: 64, height: 64, planar: values, range: -1...1)
        #expect(zip(back.pixels, image.pixels).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test("corrupt, truncated and missing PNGs give errors naming the file")
    func corrupt() throws {
        let good = try PNG.encode(sample())
        var flipped = good
        flipped[0] ^= 0xFF
        for bad in [flipped, Array(good.prefix(good.count / 2)), [UInt8](repeating: 7, count: 100), []] {
            #expect(throws: ImagingError.self) { try PNG.decode(bad, source: "broken.png") }
        }
        do {
            _ = try PNG.decode(Array(good.prefix(40)), source: "broken.png")
            Issue.record("truncated PNG decoded")
        } catch {
            #expect(error.description.contains("broken.png"))
        }
        do {
            _ = try PNG.read(from: "/nonexistent/dir/x.png")
            Issue.record("missing file read")
        } catch {
            #expect(error.description.contains("/nonexistent/dir/x.png"))
        }
    }

    @Test("contact sheet lays out cells and draws captions")
    func contactSheet() {
        let image = sample()
        let sheet = ContactSheet(columns: 3, scale: 2, captionLines: 2, padding: 4)
            .render(Array(repeating: (image, "two red circles"), count: 5))
        let lineHeight = 7
        #expect(sheet.width == 4 + 3 * (128 + 4))
        #expect(sheet.height == 4 + 2 * (128 + 2 * lineHeight + 2 + 4))
        // The first cell is the enlarged image; its caption has dark pixels below it.
        #expect(sheet[4 + 10, 4 + 10, 0] == image[5, 5, 0])
        var dark = 0
        for y in (4 + 128)..<(4 + 128 + 2 * lineHeight) {
            for x in 4..<(4 + 128) where sheet[x, y, 0] < 0.5 { dark += 1 }
        }
        #expect(dark > 20)
    }
}

@Suite("Line plots")
struct LinePlotTests {
    @Test("a plot draws its series in SVG and in a bitmap; non-finite points are left out")
    func drawsSeries() throws {
        var plot = LinePlot(title: "loss", xLabel: "step", logY: true, width: 200, height: 120)
        plot.add("train", points: [(0, 1), (1, 0.5), (2, .nan), (3, 0.1)])
        plot.add("held out", points: [(0, 2), (3, 0.3)])
        let svg = try plot.svg()
        #expect(svg.hasPrefix("<svg") && svg.contains("</svg>"))
        #expect(svg.components(separatedBy: "<polyline").count == 3)
        #expect(!svg.contains("nan"))
        let image = try plot.image()
        #expect(image.width == 200 && image.height == 120)
        // Pixels of the first series' colour are on the canvas.
        let blue = LinePlot.palette[0]
        var hits = 0
        for y in 0..<120 {
            for x in 0..<200 where abs(Double(image[x, y, 2]) - blue.b) < 1e-3 && abs(Double(image[x, y, 0]) - blue.r) < 1e-3 {
                hits += 1
            }
        }
        #expect(hits > 20)
    }

    @Test("a plot with nothing to draw is an error, not an empty file")
    func emptyIsAnError() {
        var plot = LinePlot(title: "reward", logY: true)
        plot.add("r", points: [(0, 0), (1, -1), (2, .infinity)])
        #expect(throws: ImagingError.self) { try plot.svg() }
        #expect(throws: ImagingError.self) { try plot.image() }
    }
}

@Suite("Bar charts")
struct BarChartTests {
    /// Pixels of `color` in each column of `image`.
    func columns(_ image: RGBImage, _ color: RGB) -> [Int] {
        (0..<image.width).map { x in
            (0..<image.height).filter { y in
                abs(Double(image[x, y, 0]) - color.r) < 1e-3 && abs(Double(image[x, y, 1]) - color.g) < 1e-3
                    && abs(Double(image[x, y, 2]) - color.b) < 1e-3
            }.count
        }
    }

    @Test("bar heights are proportional to the values; a missing value draws no bar")
    func heightsFollowValues() throws {
        var chart = BarChart(title: "overhead", groups: ["a", "b", "c"], reference: 1, width: 240, height: 160)
        try chart.add("x", values: [1, 2, .nan])
        let image = try chart.image()
        let blue = LinePlot.palette[0]
        let heights = columns(image, blue).filter { $0 > 0 }
        #expect(!heights.isEmpty)
        // Two bars: the taller is twice the shorter (to the pixel), and the third group has none.
        let tall = heights.max()!, short = heights.filter { $0 < tall - 2 }.max()!
        #expect(abs(Double(tall - 1) / Double(short - 1) - 2) < 0.1)
        let svg = try chart.svg()
        #expect(svg.components(separatedBy: "<rect x=").count == 3)  // two bars (the background is `<rect width`)
        #expect(svg.contains(">x<") && !svg.contains("nan"))
    }

    @Test("values that do not fit are errors")
    func badValues() throws {
        var chart = BarChart(groups: ["a", "b"])
        #expect(throws: ImagingError.self) { try chart.add("short", values: [1]) }
        #expect(throws: ImagingError.self) { try chart.add("negative", values: [1, -1]) }
        try chart.add("none", values: [.nan, .nan])
        #expect(throws: ImagingError.self) { try chart.image() }
        #expect(throws: ImagingError.self) { try BarChart(groups: ["a"]).svg() }
    }
}
