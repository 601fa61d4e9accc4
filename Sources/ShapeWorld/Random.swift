import Foundation

/// A small, seeded, platform-independent pseudo-random generator (SplitMix64).
///
/// ShapeWorld never uses the standard library's `random(in:)` helpers, whose algorithms may change
/// between Swift releases: every draw goes through the methods below so that the same seed gives the
/// same bits on every machine and toolchain.
///
/// ```swift
/// var rng = SplitMix64(seed: 42)
/// let x = rng.uniform()        // in [0, 1)
/// let k = rng.int(below: 6)    // in 0..<6
/// ```
public struct SplitMix64: Sendable {
    /// The generator's internal state.
    public private(set) var state: UInt64

    /// Creates a generator from a seed.
    public init(seed: UInt64) {
        state = seed
    }

    /// A generator for the `index`-th independent stream derived from `seed`.
    public init(seed: UInt64, stream: UInt64) {
        var mixer = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        state = mixer.next() ^ stream
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform double in `[lower, upper)`.
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * uniform()
    }

    /// A uniform integer in `0..<bound` (`bound` > 0), by the multiply-shift method.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A uniform integer in the closed range.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + int(below: range.upperBound - range.lowerBound + 1)
    }

    /// `true` with probability `p`.
    public mutating func bernoulli(_ p: Double) -> Bool {
        uniform() < p
    }

    /// A standard normal draw (Box–Muller, one of the pair).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 0x1.0p-60)
        let u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A uniformly chosen element of a non-empty collection.
    public mutating func pick<C: RandomAccessCollection>(_ items: C) -> C.Element {
        precondition(!items.isEmpty, "cannot pick from an empty collection")
        let offset = int(below: items.count)
        return items[items.index(items.startIndex, offsetBy: offset)]
    }

    /// The array shuffled by Fisher–Yates.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var result = items
        if result.count < 2 { return result }
        for i in stride(from: result.count - 1, to: 0, by: -1) {
            let j = int(below: i + 1)
            result.swapAt(i, j)
        }
        return result
    }
}
