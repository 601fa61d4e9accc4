import Foundation

/// Progress of a long loop (training steps, evaluated images): rate and ETA from the steps done in
/// this process, so a resumed run's ETA does not count the steps of the run before it.
///
/// ```swift
/// var progress = ProgressMeterMeter(total: 3000, startingAt: trainer.step)
/// … progress.line(step: trainer.step, text: "loss 0.012")   // "step 120/3000  loss 0.012  1.23 s/step  ETA 1h02m"
/// ```
public struct ProgressMeter: Sendable {
    public let total: Int
    public let startStep: Int
    public let start: Date
    /// The word before the count (`step`, `image`).
    public var unit: String

    public init(total: Int, startingAt startStep: Int = 0, unit: String = "step", start: Date = Date()) {
        self.total = total
        self.startStep = startStep
        self.unit = unit
        self.start = start
    }

    /// Seconds per step so far (0 before the first).
    public func secondsPerStep(at step: Int, now: Date = Date()) -> Double {
        let done = step - startStep
        return done > 0 ? now.timeIntervalSince(start) / Double(done) : 0
    }

    /// Seconds left at the current rate.
    public func eta(at step: Int, now: Date = Date()) -> Double {
        secondsPerStep(at: step, now: now) * Double(Swift.max(0, total - step))
    }

    /// `1h02m`, `3m05s`.
    public static func duration(_ seconds: Double) -> String {
        let s = Swift.max(0, Int(seconds.isFinite ? seconds : 0))
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }

    /// `step 120/3000  TEXT  1.23 s/step  ETA 1h02m`.
    public func line(step: Int, text: String, now: Date = Date()) -> String {
        let body = text.isEmpty ? "" : "  " + text
        return String(format: "%@ %d/%d%@  %.2f s/%@  ETA %@", unit, step, total, body,
                      secondsPerStep(at: step, now: now), unit, Self.duration(eta(at: step, now: now)))
    }

    /// Whether `step` is the last.
    public func isDone(_ step: Int) -> Bool { step >= total }
}
