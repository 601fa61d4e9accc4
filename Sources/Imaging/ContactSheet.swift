// Contact sheets: grids of images with captions, for galleries.

/// Lays out images in a grid, each with a caption underneath in a tiny built-in bitmap font.
///
/// ```swift
/// let sheet = ContactSheet(columns: 4).render([(image, "two red circles")])
/// try PNG.write(sheet, to: "sheet.png")
/// ```
public struct ContactSheet: Sendable {
    /// Images per row.
    public var columns: Int
    /// Integer enlargement of each image (nearest neighbour).
    public var scale: Int
    /// Caption lines kept under each image (longer captions are cut).
    public var captionLines: Int
    /// Pixels between cells and around the sheet.
    public var padding: Int

    public init(columns: Int = 4, scale: Int = 2, captionLines: Int = 4, padding: Int = 6) {
        self.columns = max(1, columns)
        self.scale = max(1, scale)
        self.captionLines = max(0, captionLines)
        self.padding = max(0, padding)
    }

    /// The sheet for `items` (image, caption). Cells are as large as the largest image.
    public func render(_ items: [(image: RGBImage, caption: String)]) -> RGBImage {
        let cellW = (items.map(\.image.width).max() ?? 64) * scale
        let cellH = (items.map(\.image.height).max() ?? 64) * scale
        let lineHeight = BitmapFont.glyphHeight + 2
        let captionH = captionLines * lineHeight + (captionLines > 0 ? 2 : 0)
        let rows = max(1, (items.count + columns - 1) / columns)
        let cols = max(1, min(columns, items.count))
        let width = padding + cols * (cellW + padding)
        let height = padding + rows * (cellH + captionH + padding)
        var sheet = RGBImage(width: width, height: height, fill: RGB(1, 1, 1))
        let charsPerLine = max(1, cellW / (BitmapFont.glyphWidth + 1))
        for (k, item) in items.enumerated() {
            let ox = padding + (k % columns) * (cellW + padding)
            let oy = padding + (k / columns) * (cellH + captionH + padding)
            for y in 0..<(item.image.height * scale) {
                for x in 0..<(item.image.width * scale) {
                    for c in 0..<3 { sheet[ox + x, oy + y, c] = item.image[x / scale, y / scale, c] }
                }
            }
            let lines = BitmapFont.wrap(item.caption, width: charsPerLine).prefix(captionLines)
            for (l, line) in lines.enumerated() {
                BitmapFont.draw(
                    line, into: &sheet, x: ox, y: oy + cellH + 2 + l * lineHeight, color: RGB(0, 0, 0))
            }
        }
        return sheet
    }
}
