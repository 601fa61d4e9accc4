import Foundation
import ShapeWorld

/// The package root, found from this file's path (Tests/ShapeWorldTests/TestSupport.swift).
let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// Parses the compact expectation notation of the hand-written rewrites:
/// `"1 red circle; 2 small blue square @top left; 0 left 1"` — objects are
/// `count [size] [colour] [shape] [@ position]`, relations `subject (left|right|above|below) object`.
func expectation(_ notation: String) -> ConstraintSet {
    var set = ConstraintSet()
    for part in notation.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) })
    where !part.isEmpty {
        let words = part.split(separator: " ").map(String.init)
        if words.count == 3, let s = Int(words[0]), let o = Int(words[2]),
            let rel = ["left": Relation.leftOf, "right": .rightOf, "above": .above, "below": .below][
                words[1]]
        {
            set.relations.append(RelationQuery(subject: s, relation: rel, object: o))
            continue
        }
        var q = ObjectQuery(shape: nil, count: Int(words[0])!)
        var rest = Array(words.dropFirst())
        if let at = rest.firstIndex(where: { $0.hasPrefix("@") }) {
            let pos = ([String(rest[at].dropFirst())] + rest[(at + 1)...]).filter { !$0.isEmpty }
            q.position = AbsolutePosition(rawValue: pos.joined(separator: " "))!
            rest = Array(rest[..<at])
        }
        for w in rest {
            if let size = ObjectSize(rawValue: w) {
                q.size = size
            } else if let color = ShapeColor(rawValue: w) {
                q.color = color
            } else if let shape = Shape(rawValue: w) {
                q.shape = shape
            } else {
                fatalError("bad notation word \(w) in \(notation)")
            }
        }
        set.objects.append(q)
    }
    return set
}

/// Independent geometric check that a scene satisfies constraints (used to test the placer).
func sceneSatisfies(_ scene: Scene, _ c: ConstraintSet, relationMargin: Double) -> Bool {
    let w = Double(scene.width), h = Double(scene.height)
    let groups = c.objects.map { q in
        scene.objects.filter { q.matches(shape: $0.shape, color: $0.color, size: $0.size) }
    }
    for (q, members) in zip(c.objects, groups) {
        if q.count <= 1 ? members.isEmpty : members.count != q.count { return false }
        if let pos = q.position,
            !members.allSatisfy({ pos.contains(x: $0.x, y: $0.y, width: w, height: h) })
        {
            return false
        }
    }
    for r in c.relations {
        for a in groups[r.subject] {
            for b in groups[r.object] where a != b {
                if !r.relation.holds(a: (a.x, a.y), b: (b.x, b.y), margin: relationMargin) { return false }
            }
        }
    }
    return true
}
