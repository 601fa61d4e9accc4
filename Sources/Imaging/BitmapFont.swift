// A tiny built-in 3×5 bitmap font for contact-sheet captions (upper-case glyphs for all letters).

public enum BitmapFont {
    static let glyphWidth = 3
    static let glyphHeight = 5

    /// Rows of three bits, top to bottom, for each supported character.
    static let glyphs: [Character: [UInt8]] = {
        let table: [(Character, String)] = [
            ("a", "010 101 111 101 101"), ("b", "110 101 110 101 110"), ("c", "011 100 100 100 011"),
            ("d", "110 101 101 101 110"), ("e", "111 100 110 100 111"), ("f", "111 100 110 100 100"),
            ("g", "011 100 101 101 011"), ("h", "101 101 111 101 101"), ("i", "111 010 010 010 111"),
            ("j", "001 001 001 101 010"), ("k", "101 101 110 101 101"), ("l", "100 100 100 100 111"),
            ("m", "101 111 111 101 101"), ("n", "110 101 101 101 101"), ("o", "010 101 101 101 010"),
            ("p", "110 101 110 100 100"), ("q", "010 101 101 110 011"), ("r", "110 101 110 101 101"),
            ("s", "011 100 010 001 110"), ("t", "111 010 010 010 010"), ("u", "101 101 101 101 111"),
            ("v", "101 101 101 101 010"), ("w", "101 101 111 111 101"), ("x", "101 101 010 101 101"),
            ("y", "101 101 010 010 010"), ("z", "111 001 010 100 111"), ("0", "111 101 101 101 111"),
            ("1", "010 110 010 010 111"), ("2", "110 001 010 100 111"), ("3", "110 001 010 001 110"),
            ("4", "101 101 111 001 001"), ("5", "111 100 110 001 110"), ("6", "011 100 111 101 111"),
            ("7", "111 001 010 010 010"), ("8", "111 101 111 101 111"), ("9", "111 101 111 001 110"),
            (",", "000 000 000 010 100"), (".", "000 000 000 000 010"), (";", "000 010 000 010 100"),
            (":", "000 010 000 010 000"), ("-", "000 000 111 000 000"), ("'", "010 010 000 000 000"),
            ("?", "110 001 010 000 010"), ("(", "001 010 010 010 001"), (")", "100 010 010 010 100"),
            ("/", "001 001 010 100 100"), ("=", "000 111 000 111 000"), ("%", "101 001 010 100 101"),
            ("+", "000 010 111 010 000"), ("!", "010 010 010 000 010"), ("_", "000 000 000 000 111"),
            ("[", "110 100 100 100 110"), ("]", "011 001 001 001 011"), (" ", "000 000 000 000 000"),
        ]
        var d: [Character: [UInt8]] = [:]
        for (c, rows) in table {
            d[c] = rows.split(separator: " ").map { UInt8($0, radix: 2)! }
        }
        return d
    }()

    /// Draws `text` with its top-left corner at (`x`, `y`), `scale` pixels per font pixel.
    public static func draw(
        _ text: String, into image: inout RGBImage, x: Int, y: Int, color: RGB, scale: Int = 1
    ) {
        var cx = x
        for ch in text.lowercased() {
            let rows = glyphs[ch] ?? glyphs["?"]!
            for (r, bits) in rows.enumerated() {
                for c in 0..<glyphWidth where bits & (1 << (glyphWidth - 1 - c)) != 0 {
                    for sy in 0..<scale {
                        for sx in 0..<scale {
                            let px = cx + c * scale + sx, py = y + r * scale + sy
                            if px < 0 || py < 0 || px >= image.width || py >= image.height { continue }
                            image[px, py, 0] = Float(color.r)
                            image[px, py, 1] = Float(color.g)
                            image[px, py, 2] = Float(color.b)
                        }
                    }
                }
            }
            cx += (glyphWidth + 1) * scale
        }
    }

    /// Greedy word wrap to lines of at most `width` characters (long words are cut).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            var w = String(word)
            while w.count > width {
                if !line.isEmpty {
                    lines.append(line)
                    line = ""
                }
                lines.append(String(w.prefix(width)))
                w = String(w.dropFirst(width))
            }
            if line.isEmpty {
                line = w
            } else if line.count + 1 + w.count <= width {
                line += " " + w
            } else {
                lines.append(line)
                line = w
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
