// Writing constraint sets as English: the canonical GenEval-style text and random paraphrases.

/// Writes prompts for constraint sets: one canonical wording, and random paraphrases (synonyms,
/// word order, number words or digits, optional framing and style words). Every paraphrase parses
/// back to the same constraints (`PromptParser`); a test checks this for thousands of them.
///
/// ```swift
/// var rng = SplitMix64(seed: 3)
/// let p = Paraphraser()
/// p.canonical(set)              // "a photo of a red circle left of a blue square"
/// p.paraphrase(set, rng: &rng)  // e.g. "a blue box to the right of a crimson dot, flat colors"
/// ```
public struct Paraphraser: Sendable {
    public init() {}

    /// The canonical GenEval-style wording ("a photo of …").
    public func canonical(_ constraints: ConstraintSet) -> String {
        var chooser = Chooser(rng: nil)
        return realize(constraints, &chooser)
    }

    /// A random paraphrase.
    public func paraphrase(_ constraints: ConstraintSet, rng: inout SplitMix64) -> String {
        var chooser = Chooser(rng: rng)
        let text = realize(constraints, &chooser)
        rng = chooser.rng!
        return text
    }

    /// Picks the first option (canonical) or a random one.
    struct Chooser {
        var rng: SplitMix64?

        mutating func choose<T>(_ options: [T]) -> T {
            guard var r = rng else { return options[0] }
            let v = r.pick(options)
            rng = r
            return v
        }

        mutating func flip(_ p: Double) -> Bool {
            guard var r = rng else { return false }
            let v = r.bernoulli(p)
            rng = r
            return v
        }
    }

    func realize(_ constraints: ConstraintSet, _ ch: inout Chooser) -> String {
        let objects = constraints.objects
        var body: String
        let rels = constraints.relations
        if objects.count == 2 && rels.count == 1 && rels[0].subject != rels[0].object
            && objects.allSatisfy({ $0.position == nil })
        {
            // Inline relation, possibly written from the other object's side.
            var r = rels[0]
            if ch.flip(0.5) {
                r = RelationQuery(subject: r.object, relation: r.relation.inverse, object: r.subject)
            }
            let phrase = ch.choose(Phrasebook.relationPhrases[r.relation]!)
            body = "\(np(objects[r.subject], definite: false, &ch)) \(phrase) "
                + np(objects[r.object], definite: false, &ch)
        } else {
            var order = Array(objects.indices)
            if var r = ch.rng {
                order = r.shuffled(order)
                ch.rng = r
            }
            let phrases = order.map { np(objects[$0], definite: false, &ch) }
            body = join(phrases, &ch)
            for r in rels {
                let s = objects[r.subject]
                let verb = s.count >= 2 ? "are" : "is"
                let phrase = ch.choose(Phrasebook.relationPhrases[r.relation]!)
                let separator = ch.choose(["; ", ". ", ", and "])
                body += separator + "\(np(s, definite: true, &ch)) \(verb) \(phrase) "
                    + np(objects[r.object], definite: true, &ch)
            }
        }
        var frame = ch.choose(Phrasebook.frames)
        if frame == "there is", let first = objects.first, first.count >= 2 { frame = "there are" }
        let suffix = ch.choose(Phrasebook.suffixes)
        let text = (frame.isEmpty ? body : frame + " " + body) + suffix
        return fixArticles(text)
    }

    func join(_ phrases: [String], _ ch: inout Chooser) -> String {
        switch phrases.count {
        case 0: return ""
        case 1: return phrases[0]
        case 2: return phrases[0] + ch.choose([" and ", " with ", " and also ", " next to "]) + phrases[1]
        default:
            let head = phrases.dropLast().joined(separator: ", ")
            return head + ch.choose([" and ", ", and "]) + phrases.last!
        }
    }

    /// A noun phrase: count or article, size, colour, noun, and the absolute position if any.
    func np(_ q: ObjectQuery, definite: Bool, _ ch: inout Chooser) -> String {
        var words: [String] = []
        if definite {
            words.append("the")
            if q.count >= 2 { words.append(numberWords[min(q.count, 9)]) }
        } else if q.count <= 1 {
            words.append(ch.choose(Phrasebook.countOneWords))
        } else {
            words.append(ch.flip(0.4) ? String(q.count) : numberWords[min(q.count, 9)])
        }
        if let size = q.size { words.append(ch.choose(Phrasebook.sizeWords[size]!)) }
        if let color = q.color { words.append(ch.choose(Phrasebook.colorWords[color]!)) }
        if let shape = q.shape {
            let noun = ch.choose(Phrasebook.shapeNouns[shape]!)
            words.append(q.count >= 2 ? noun.1 : noun.0)
            if ch.flip(0.1) { words.append(q.count >= 2 ? "shapes" : "shape") }
        } else {
            words.append(q.count >= 2 ? "shapes" : "shape")
        }
        if !definite, let pos = q.position {
            words.append(ch.choose(Phrasebook.absolutePhrases[pos]!))
        }
        return words.joined(separator: " ")
    }

    /// "a" before a vowel sound becomes "an" and vice versa.
    func fixArticles(_ text: String) -> String {
        var words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        for i in words.indices.dropLast() where words[i] == "a" || words[i] == "an" {
            let next = words[i + 1].lowercased()
            let vowel = next.first.map { "aeiou".contains($0) } ?? false
            words[i] = vowel ? "an" : "a"
        }
        return words.joined(separator: " ")
    }
}
