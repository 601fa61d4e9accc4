// Reading prompts: text → the constraints it implies, with every unknown word reported.

/// The result of parsing a prompt.
public struct ParsedPrompt: Hashable, Codable, Sendable {
    /// The prompt as given.
    public var text: String
    /// What the prompt asks for.
    public var constraints: ConstraintSet
    /// Words the parser does not know, in order of first appearance. They were not used.
    public var unknownWords: [String]

    enum CodingKeys: String, CodingKey {
        case text, constraints
        case unknownWords = "unknown_words"
    }
}

/// Parses prompts about coloured shapes into constraint sets.
///
/// Noun phrases (`[count|article] [size] [colour] shape-noun`), absolute positions ("on the left",
/// "in the top right corner"), relations ("left of", "to the right of", "above", "beneath",
/// "to its left"), conjunctions and framing words are understood; "the red circle" refers back to
/// an object already mentioned. Background phrases ("on a plain white background") are skipped.
/// Every other word is reported in `unknownWords`.
///
/// ```swift
/// let parsed = PromptParser().parse("a photo of a red circle left of a blue square")
/// parsed.constraints.objects.count   // 2
/// parsed.constraints.relations       // [0 left of 1]
/// ```
public struct PromptParser: Sendable {
    public init() {}

    /// Parses `text`; throws when the prompt names no object or, if `strict`, has unknown words.
    public func parseChecked(_ text: String, strict: Bool = false) throws(ShapeWorldError)
        -> ParsedPrompt {
        let parsed = parse(text)
        if parsed.constraints.objects.isEmpty {
            throw ShapeWorldError.unparseablePrompt(prompt: text, unknownWords: parsed.unknownWords)
        }
        if strict && !parsed.unknownWords.isEmpty {
            throw ShapeWorldError.unknownWords(prompt: text, words: parsed.unknownWords)
        }
        return parsed
    }

    /// Parses `text` leniently: never throws; unknown words are listed in the result.
    /// The constraints of `text` when it speaks ShapeWorld's language (every word known, at least one
    /// object), so that ShapeEval can score an image of it; nil otherwise.
    public func scorableConstraints(_ text: String) -> ConstraintSet? {
        let parsed = parse(text)
        return parsed.unknownWords.isEmpty && !parsed.constraints.objects.isEmpty ? parsed.constraints : nil
    }

    public func parse(_ text: String) -> ParsedPrompt {
        var state = State(tokens: removeBackgroundPhrases(tokenize(text)))
        state.run()
        var unknown: [String] = []
        for w in state.unknown where !unknown.contains(w) { unknown.append(w) }
        return ParsedPrompt(
            text: text,
            constraints: ConstraintSet(objects: state.objects, relations: state.relations),
            unknownWords: unknown)
    }

    // MARK: Tokens

    /// Lower-cased words and digits; punctuation becomes ","; hyphens split words.
    func tokenize(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        func flush() {
            if !current.isEmpty {
                tokens.append(current)
                current = ""
            }
        }
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber {
                current.append(ch)
            } else if ch == "'" || ch == "’" {
                continue
            } else if ",;.:!?()[]\"".contains(ch) {
                flush()
                if tokens.last != "," { tokens.append(",") }
            } else {
                flush()
            }
        }
        flush()
        return tokens
    }

    /// Drops "(on|against …) (a|the) (plain|white …)* background" spans.
    func removeBackgroundPhrases(_ tokens: [String]) -> [String] {
        var out = tokens
        var i = 0
        while i < out.count {
            if out[i] == "background" || out[i] == "backdrop" || out[i] == "backgrounds" {
                var start = i
                while start > 0 && Phrasebook.backgroundWords.contains(out[start - 1]) { start -= 1 }
                out.removeSubrange(start...i)
                i = start
            } else {
                i += 1
            }
        }
        return out
    }

    // MARK: State machine

    enum Spatial {
        case relation(Relation)
        case absolute(AbsolutePosition)
        /// "to its left": the last object is left of the one before it.
        case relationToPrevious(Relation)
    }

    struct Pending {
        var count: Int?
        var explicitNumber = false
        var size: ObjectSize?
        var color: ShapeColor?
        var shapeAdjective: Shape?
        var definite = false

        var hasModifier: Bool { size != nil || color != nil || shapeAdjective != nil }
    }

    struct State {
        let tokens: [String]
        var i = 0
        var objects: [ObjectQuery] = []
        var relations: [RelationQuery] = []
        var unknown: [String] = []
        var pending = Pending()
        /// Index of the object most recently mentioned, and the one before it.
        var last: Int?
        var previous: Int?
        /// Whether an object was mentioned since the last separator.
        var clauseHasObject = false
        var pendingPosition: AbsolutePosition?
        /// Relations waiting for their object ("left of and above a red circle" gives two).
        var pendingRelations: [(subject: Int, relation: Relation)] = []
        /// A relation seen before its subject: "left of a blue square is a red circle".
        var leadingRelation: (relation: Relation, object: Int?)?

        init(tokens: [String]) {
            self.tokens = tokens
        }

        func token(_ k: Int) -> String? { k < tokens.count ? tokens[k] : nil }

        mutating func run() {
            while i < tokens.count {
                let t = tokens[i]
                if let (spatial, length) = matchSpatial(at: i) {
                    flushModifiers()
                    apply(spatial)
                    i += length
                    continue
                }
                if let length = matchSeparator(at: i) {
                    if t != "," { flushModifiers() }
                    clauseHasObject = false
                    i += length
                    continue
                }
                if t == "a" || t == "an" || t == "single" || t == "another" {
                    if pending.count == nil { pending.count = 1 }
                } else if t == "the" {
                    pending.definite = true
                } else if t == "one" && pending.hasModifier {
                    noun(shape: nil)
                } else if let n = Phrasebook.numberValues[t] ?? Self.digitCount(t) {
                    pending.count = n
                    pending.explicitNumber = true
                } else if let size = Self.sizeByWord[t] {
                    pending.size = size
                } else if let color = Self.colorByWord[t] {
                    let cue = i > 0 ? tokens[i - 1] : ""
                    let cued =
                        Self.postColorCues.contains(cue)
                        && (clauseHasObject || Self.groupCues.contains(cue))
                    if let k = last, cued, objects[k].color == nil, !pending.hasModifier {
                        // "a circle in red", "a square that is blue", "two triangles, both yellow".
                        objects[k].color = color
                    } else {
                        pending.color = color
                    }
                } else if let shape = Phrasebook.shapeAdjectives[t] {
                    pending.shapeAdjective = shape
                } else if let shape = Self.shapeByNoun[t] {
                    noun(shape: shape)
                    // "a circle shape": the generic noun adds nothing.
                    while let next = token(i + 1), Phrasebook.genericNouns.contains(next) { i += 1 }
                } else if Phrasebook.genericNouns.contains(t) {
                    if pending.hasModifier || pending.explicitNumber {
                        noun(shape: nil)
                    }
                } else if Phrasebook.frameNouns.contains(t) {
                    // "a photo of …", "in the image …": the article belonged to the frame.
                    pending = Pending()
                } else if Phrasebook.fillers.contains(t) || t == "," {
                    // Known and meaningless.
                } else {
                    unknown.append(t)
                }
                i += 1
            }
            flushModifiers()
        }

        /// A colour or size left without a noun ("a red ball", "ball" unknown) still names an
        /// object of any shape, so that the constraint is not silently lost.
        mutating func flushModifiers() {
            if pending.color != nil || pending.size != nil || pending.shapeAdjective != nil {
                noun(shape: nil)
            }
        }

        /// Closes a noun phrase: a new object, or a reference back to one ("the red circle").
        mutating func noun(shape: Shape?) {
            let query = ObjectQuery(
                shape: shape ?? pending.shapeAdjective, color: pending.color, size: pending.size,
                count: pending.count ?? 1, position: nil)
            var index: Int?
            if pending.definite {
                let candidates = objects.indices.filter { k in
                    let o = objects[k]
                    return (query.shape == nil || o.shape == query.shape)
                        && (query.color == nil || o.color == query.color)
                        && (query.size == nil || o.size == query.size)
                }
                index = candidates.last
            }
            if index == nil {
                objects.append(query)
                index = objects.count - 1
            }
            let k = index!
            pending = Pending()
            if k != last {
                previous = last
                last = k
            }
            clauseHasObject = true
            if let pos = pendingPosition {
                if objects[k].position == nil { objects[k].position = pos }
                pendingPosition = nil
            }
            if !pendingRelations.isEmpty && pendingRelations.allSatisfy({ $0.subject != k }) {
                for pr in pendingRelations {
                    relations.append(RelationQuery(subject: pr.subject, relation: pr.relation, object: k))
                }
                pendingRelations = []
            } else if let lead = leadingRelation {
                if let obj = lead.object {
                    if obj != k {
                        relations.append(RelationQuery(subject: k, relation: lead.relation, object: obj))
                    }
                    leadingRelation = nil
                } else {
                    leadingRelation = (lead.relation, k)
                }
            }
        }

        mutating func apply(_ spatial: Spatial) {
            switch spatial {
            case .absolute(let pos):
                if clauseHasObject, let k = last {
                    if objects[k].position == nil { objects[k].position = pos }
                } else {
                    pendingPosition = pos
                }
            case .relation(let rel):
                if let k = last {
                    pendingRelations.removeAll { $0.subject != k }
                    pendingRelations.append((k, rel))
                } else {
                    leadingRelation = (rel, nil)
                }
            case .relationToPrevious(let rel):
                if !clauseHasObject, let b = last {
                    // "a blue square, and above it, a red circle": the next object is the subject.
                    leadingRelation = (rel, b)
                } else if let a = last, let b = previous, a != b {
                    relations.append(RelationQuery(subject: a, relation: rel, object: b))
                }
            }
        }

        func matchSeparator(at k: Int) -> Int? {
            let t = tokens[k]
            if t == "," || t == "and" || t == "plus" || t == "with" || t == "beside"
                || t == "alongside" || t == "besides"
            {
                return 1
            }
            if t == "next" && token(k + 1) == "to" { return 2 }
            if t == "as" && token(k + 1) == "well" && token(k + 2) == "as" { return 3 }
            if (t == "along" || t == "together") && token(k + 1) == "with" { return 2 }
            return nil
        }

        /// Consumes "of the image" (or picture, frame …) at `k`; returns the tokens consumed.
        func frameSuffix(at k: Int) -> Int {
            guard token(k) == "of" else { return 0 }
            var j = k + 1
            if token(j) == "the" || token(j) == "this" || token(j) == "a" { j += 1 }
            if let t = token(j), Phrasebook.frameNouns.contains(t) { return j + 1 - k }
            return 0
        }

        func matchSpatial(at start: Int) -> (Spatial, Int)? {
            var j = start
            var hadPreposition = false
            var its = false
            if let t = token(j), ["to", "on", "at", "in", "near", "towards", "toward", "along", "from"]
                .contains(t)
            {
                j += 1
                hadPreposition = true
            }
            if let t = token(j), t == "the" || t == "its" || t == "their" || t == "his" || t == "her" {
                its = t != "the"
                j += 1
            }
            guard let word = token(j) else { return nil }
            let areaNouns: Set<String> = [
                "side", "half", "edge", "part", "area", "region", "portion", "corner", "quadrant",
            ]
            func absorbArea(_ k: inout Int) {
                while let t = token(k), areaNouns.contains(t) { k += 1 }
                if token(k) == "hand", token(k + 1) == "side" { k += 2 }
            }
            switch word {
            case "top", "upper", "bottom", "lower":
                let vertical = word == "top" || word == "upper"
                if let h = token(j + 1), h == "left" || h == "right" {
                    var k = j + 2
                    absorbArea(&k)
                    k += frameSuffix(at: k)
                    let pos: AbsolutePosition =
                        vertical
                        ? (h == "left" ? .topLeft : .topRight) : (h == "left" ? .bottomLeft : .bottomRight)
                    return (.absolute(pos), k - start)
                }
                if token(j + 1) == "than" && (word == "upper" || word == "lower") {
                    return (.relation(vertical ? .above : .below), j + 2 - start)
                }
                if word == "top" && token(j + 1) == "of" && start < j && tokens[start] == "on"
                    && frameSuffix(at: j + 1) == 0
                {
                    return (.relation(.above), j + 2 - start)
                }
                var k = j + 1
                absorbArea(&k)
                if token(k) == "of" {
                    let f = frameSuffix(at: k)
                    if f > 0 { return (.absolute(vertical ? .top : .bottom), k + f - start) }
                    return (.relation(vertical ? .above : .below), k + 1 - start)
                }
                if !hadPreposition && word != "top" && word != "bottom" { return nil }
                if (word == "upper" || word == "lower") && k == j + 1 { return nil }
                return (.absolute(vertical ? .top : .bottom), k - start)
            case "left", "right":
                var k = j + 1
                absorbArea(&k)
                if token(k) == "of" {
                    let f = frameSuffix(at: k)
                    if f > 0 { return (.absolute(word == "left" ? .left : .right), k + f - start) }
                    let rel: Relation = word == "left" ? .leftOf : .rightOf
                    if token(k + 1) == "it" || token(k + 1) == "them" {
                        return (.relationToPrevious(rel), k + 2 - start)
                    }
                    return (.relation(rel), k + 1 - start)
                }
                if its { return (.relationToPrevious(word == "left" ? .leftOf : .rightOf), k - start) }
                return (.absolute(word == "left" ? .left : .right), k - start)
            case "centre", "center", "middle":
                var k = j + 1
                absorbArea(&k)
                k += frameSuffix(at: k)
                return (.absolute(.center), k - start)
            case "centered", "centred":
                var k = j + 1
                k += frameSuffix(at: k)
                return (.absolute(.center), k - start)
            case "above", "over", "atop", "below", "under", "beneath", "underneath":
                if hadPreposition || its { return nil }
                let up = word == "above" || word == "over" || word == "atop"
                if token(j + 1) == "it" || token(j + 1) == "them" {
                    return (.relationToPrevious(up ? .above : .below), j + 2 - start)
                }
                return (.relation(up ? .above : .below), j + 1 - start)
            case "higher":
                if token(j + 1) == "than" { return (.relation(.above), j + 2 - start) }
                return nil
            default:
                return nil
            }
        }

        /// A count written in digits, 1–20 (larger numbers are not counts of shapes).
        static func digitCount(_ t: String) -> Int? {
            guard let n = Int(t), (1...20).contains(n) else { return nil }
            return n
        }

        /// Words after which a colour describes the object just named.
        static let postColorCues: Set<String> = [
            "in", "colored", "coloured", "painted", "is", "are", "both", "all", "each",
        ]
        /// Cues that refer back to the last group even across a comma ("2 circles, both red").
        static let groupCues: Set<String> = ["both", "all", "each"]

        static let colorByWord: [String: ShapeColor] = {
            var d: [String: ShapeColor] = [:]
            for (c, words) in Phrasebook.colorWords { for w in words { d[w] = c } }
            d["gold"] = .yellow
            d["magenta"] = .pink
            d["navy"] = .blue
            d["lime"] = .green
            return d
        }()

        static let sizeByWord: [String: ObjectSize] = {
            var d: [String: ObjectSize] = [:]
            for (s, words) in Phrasebook.sizeWords { for w in words { d[w] = s } }
            return d
        }()

        static let shapeByNoun: [String: Shape] = {
            var d: [String: Shape] = [:]
            for (s, nouns) in Phrasebook.shapeNouns {
                for (a, b) in nouns {
                    d[a] = s
                    d[b] = s
                }
            }
            return d
        }()
    }
}
