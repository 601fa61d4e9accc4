// The words and phrases of the ShapeWorld language, shared by the paraphraser (which writes them)
// and the parser (which reads them). The first entry of each list is the canonical wording.

enum Phrasebook {
    static let colorWords: [ShapeColor: [String]] = [
        .red: ["red", "crimson", "scarlet"],
        .orange: ["orange", "tangerine"],
        .yellow: ["yellow", "golden"],
        .green: ["green", "emerald"],
        .blue: ["blue", "azure", "cobalt"],
        .purple: ["purple", "violet"],
        .pink: ["pink"],
        .black: ["black"],
    ]

    /// Singular and plural nouns for each shape.
    static let shapeNouns: [Shape: [(String, String)]] = [
        .circle: [("circle", "circles"), ("disc", "discs"), ("disk", "disks"), ("dot", "dots")],
        .square: [("square", "squares"), ("box", "boxes"), ("block", "blocks"), ("tile", "tiles")],
        .triangle: [("triangle", "triangles")],
        .diamond: [("diamond", "diamonds"), ("rhombus", "rhombuses"), ("lozenge", "lozenges")],
    ]

    /// Adjectives naming a shape, used with a generic noun ("a round red shape").
    static let shapeAdjectives: [String: Shape] = [
        "round": .circle, "circular": .circle, "triangular": .triangle, "squared": .square,
    ]

    static let genericNouns: Set<String> = [
        "shape", "shapes", "object", "objects", "thing", "things", "figure", "figures", "item",
        "items", "form", "forms",
    ]

    static let sizeWords: [ObjectSize: [String]] = [
        .small: ["small", "little", "tiny", "smaller", "mini"],
        .large: ["large", "big", "huge", "giant", "larger", "bigger"],
    ]

    static let relationPhrases: [Relation: [String]] = [
        .leftOf: [
            "left of", "to the left of", "on the left of", "on the left side of",
            "positioned to the left of", "placed left of",
        ],
        .rightOf: [
            "right of", "to the right of", "on the right of", "on the right side of",
            "positioned to the right of", "placed right of",
        ],
        .above: ["above", "over", "on top of", "directly above", "higher than"],
        .below: ["below", "under", "beneath", "underneath", "directly below", "lower than"],
    ]

    static let absolutePhrases: [AbsolutePosition: [String]] = [
        .left: [
            "on the left", "on the left side", "at the left", "on the left side of the image",
            "in the left half of the picture",
        ],
        .right: [
            "on the right", "on the right side", "at the right", "on the right side of the image",
            "in the right half of the picture",
        ],
        .top: ["at the top", "at the top of the image", "near the top", "in the upper half",
               "in the top half"],
        .bottom: ["at the bottom", "at the bottom of the image", "near the bottom",
                  "in the lower half", "in the bottom half"],
        .center: ["in the center", "in the centre", "in the middle", "in the middle of the image",
                  "at the center"],
        .topLeft: ["in the top left corner", "at the top left", "in the upper left corner",
                   "in the top-left corner", "top left"],
        .topRight: ["in the top right corner", "at the top right", "in the upper right corner",
                    "in the top-right corner", "top right"],
        .bottomLeft: ["in the bottom left corner", "at the bottom left", "in the lower left corner",
                      "in the bottom-left corner", "bottom left"],
        .bottomRight: ["in the bottom right corner", "at the bottom right",
                       "in the lower right corner", "in the bottom-right corner", "bottom right"],
    ]

    static let frames: [String] = [
        "a photo of", "", "an image of", "a picture of", "a drawing of", "a rendering of",
        "a simple illustration of", "a photo showing", "an image with", "a picture containing",
        "there is",
    ]

    static let suffixes: [String] = [
        "", " on a plain background", " on a white background", ", flat colors",
        ", minimalist style", ", high quality", ", digital art", ", clean vector illustration",
    ]

    static let countOneWords = ["a", "one", "a single"]

    /// Words the parser accepts and ignores: framing, style, copulas, prepositions, intensifiers.
    static let fillers: Set<String> = [
        "photo", "photograph", "image", "picture", "pic", "drawing", "illustration", "rendering",
        "render", "painting", "sketch", "diagram", "graphic", "scene", "view", "of", "showing",
        "shows", "show", "depicting", "depicts", "featuring", "features", "containing", "contains",
        "with", "there", "is", "are", "be", "being", "it", "its", "them", "they", "their", "exactly",
        "just", "only", "precisely", "simple", "flat", "minimalist", "minimal", "style", "styled",
        "vector", "art", "high", "quality", "clean", "clear", "geometric", "colored", "coloured",
        "in", "on", "at", "sits", "sit", "sitting", "placed", "positioned", "located", "situated",
        "lies", "lie", "lying", "appears", "appear", "drawn", "set", "standing", "stands", "digital",
        "detailed", "sharp", "crisp", "hd", "4k", "colors", "colours", "color", "colour", "bright",
        "vivid", "solid", "each", "both", "that", "which", "who", "while", "directly", "slightly",
        "somewhere", "side", "by", "together", "also", "please", "generate", "create", "draw",
        "make", "render", "showcase", "of", "an", "a", "the", "single", "filled", "shaded",
        "exactly", "total", "in total", "all", "here", "we", "see", "can", "you", "picture",
        "shown", "displayed", "visible", "featured", "arranged", "nothing", "else", "frame",
        "canvas", "well", "defined", "crisp", "edges", "smooth", "neat", "nice", "beautiful",
        "cute", "another", "other", "one", "has", "have", "having", "placed", "put", "plain",
        "to", "s", "pure", "uniform", "evenly", "lit", "lighting", "softly", "minimalistic",
        "cartoon", "icon", "icons", "logo", "clipart", "flatly", "photorealistic", "realistic",
        "me", "i", "want", "need", "would", "like", "give", "us", "vibrant", "bold", "glossy",
        "row", "line", "side", "composition", "showing", "consisting", "made", "up", "includes",
        "include", "including", "should", "must", "will", "sharply", "neatly", "simply",
        "clearly", "instance", "shaped",
        "very", "far", "scene", "setting", "against", "paper", "textured", "matte",
    ]

    /// Adjectives that may precede "background" (the whole background phrase is ignored).
    static let backgroundWords: Set<String> = [
        "plain", "white", "grey", "gray", "light", "blank", "simple", "clean", "solid", "neutral",
        "empty", "uniform", "pale", "flat", "a", "an", "the", "on", "against", "over", "with",
        "in", "set", "lightgray", "lightgrey", "off", "offwhite",
    ]

    static let frameNouns: Set<String> = [
        "image", "picture", "photo", "frame", "canvas", "scene", "photograph", "drawing",
    ]

    static let numberValues: [String: Int] = [
        "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "pair": 2, "couple": 2, "trio": 3,
    ]
}
