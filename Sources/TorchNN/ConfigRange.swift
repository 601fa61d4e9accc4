/// Range checks for the numbers a config file carries, run before anything is built from them.
///
/// A config read from disk is input like any other: a count of 2^62, a group count of 0 or a beta
/// of 1e308 must end in an error naming the file and the field, never in a trap, an overflow or an
/// allocation of terabytes. The bounds are generous (far above any published model) and only
/// exclude what cannot be meant.
///
/// ```swift
/// let check = ConfigRange(file: path)
/// try check.count("layers_per_block", layersPerBlock, 1...ConfigRange.maxLayers)
/// try check.real("beta_start", betaStart, above: 0, below: 1)
/// ```
public struct ConfigRange: Sendable {
    public let file: String

    /// Channel, hidden and embedding widths.
    public static let maxWidth = 1 << 16
    /// Layers per block, transformer depth, blocks in a stack.
    public static let maxLayers = 256
    /// Spatial sizes (pixels or latent cells).
    public static let maxSpatial = 1 << 14
    /// Vocabulary and position-table sizes.
    public static let maxTable = 1 << 24
    /// Diffusion training timesteps.
    public static let maxTimesteps = 1 << 20

    public init(file: String) { self.file = file }

    func fail(_ message: String) -> ModelError { .badConfig(file: file, message: message) }

    /// `value` must lie in `range`.
    public func count(_ field: String, _ value: Int, _ range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw fail("`\(field)` = \(value) is out of range (\(range.lowerBound)…\(range.upperBound))")
        }
    }

    /// Every entry of `values` must lie in `range`.
    public func counts(_ field: String, _ values: [Int], _ range: ClosedRange<Int>) throws {
        for (i, v) in values.enumerated() where !range.contains(v) {
            throw fail("`\(field)[\(i)]` = \(v) is out of range (\(range.lowerBound)…\(range.upperBound))")
        }
    }

    /// `value` must be finite and within the bounds; `above`/`below` are exclusive,
    /// `atLeast`/`atMost` inclusive.
    public func real(_ field: String, _ value: Double, above: Double? = nil, atLeast: Double? = nil,
                     below: Double? = nil, atMost: Double? = nil) throws {
        var ok = value.isFinite
        if let a = above { ok = ok && value > a }
        if let a = atLeast { ok = ok && value >= a }
        if let b = below { ok = ok && value < b }
        if let b = atMost { ok = ok && value <= b }
        guard ok else {
            let low = above.map { "(\($0)" } ?? atLeast.map { "[\($0)" } ?? "(−∞"
            let high = below.map { "\($0))" } ?? atMost.map { "\($0)]" } ?? "∞)"
            throw fail("`\(field)` = \(value) is out of range \(low), \(high)")
        }
    }

    /// `divisor` must divide `value` (group norms over channels, heads over widths).
    public func divides(_ divisor: Int, _ divisorField: String, _ value: Int, _ valueField: String) throws {
        guard divisor > 0, value % divisor == 0 else {
            throw fail("`\(valueField)` = \(value) is not divisible by `\(divisorField)` = \(divisor)")
        }
    }

    /// The product of `factors` (an allocation's element count), or an error when it overflows or
    /// exceeds `limit`.
    public func product(_ what: String, _ factors: [Int], limit: Int = Int(Int32.max)) throws -> Int {
        var total = 1
        for f in factors {
            guard f >= 0 else { throw fail("\(what) has a negative size \(f)") }
            let (p, overflow) = total.multipliedReportingOverflow(by: f)
            guard !overflow, p <= limit else {
                throw fail("\(what) would hold \(factors.map(String.init).joined(separator: " × ")) elements "
                    + "(more than \(limit))")
            }
            total = p
        }
        return total
    }
}
