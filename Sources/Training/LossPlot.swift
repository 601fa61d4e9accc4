import Foundation
import Imaging

extension LossLog {
    /// Draws the first column of the log (log scale) against the step, as PNG or SVG by the
    /// extension of `path`; does nothing before two finite, positive values are logged.
    public func writePlot(to path: String, title: String? = nil) throws {
        let points = rows().compactMap { row -> (Double, Double)? in
            guard let v = row.values.first, v.isFinite, v > 0 else { return nil }
            return (Double(row.step), v)
        }
        guard points.count >= 2 else { return }
        var plot = LinePlot(title: title ?? columns.first ?? "loss", xLabel: "step", logY: true)
        plot.add(columns.first ?? "loss", points: points)
        if path.lowercased().hasSuffix(".svg") {
            let text = try plot.svg()
            do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw ImagingError.unwritableFile(path: path, reason: error.localizedDescription)
            }
        } else {
            try PNG.write(try plot.image(), to: path)
        }
    }
}
