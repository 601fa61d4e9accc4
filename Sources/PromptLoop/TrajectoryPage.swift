import Foundation
import Imaging
import Torch

/// Writes a rollout for a person to look at: the x̂₀ frame the policy saw at every refinement, the
/// final images, and `index.html` showing the frames beside the prompts they led to.
public enum TrajectoryPage {
    public static func write(_ result: RolloutResult, to folder: String, verdicts: [String?] = []) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var html = """
            <!doctype html><meta charset="utf-8"><title>PromptLoop trajectories</title>
            <style>body{font-family:sans-serif} td{vertical-align:top;padding:4px} img{width:128px;image-rendering:pixelated}
            .bad{color:#a00}</style>

            """
        for (row, trajectory) in result.trajectories.enumerated() {
            html += "<h3>\(row): \(esc(trajectory.query))</h3>\n<table><tr>"
            for (i, action) in trajectory.actions.enumerated() {
                var cell = "<td>"
                if let frame = action.state.image {
                    let name = String(format: "row%d-step%02d.png", row, action.state.step)
                    try PNG.write(frame, to: folder + "/" + name)
                    cell += "<img src=\"\(name)\"><br>"
                }
                let step = action.state.step < 0 ? "before sampling" : "after step \(action.state.step)"
                cell += "#\(i + 1), \(step)<br>" + (action.valid ? "" : "<span class=bad>invalid, kept:</span> ")
                    + "<b>\(esc(action.prompt))</b></td>"
                html += cell
            }
            let final = String(format: "row%d-final.png", row)
            try PNG.write(result.images[row], to: folder + "/" + final)
            let verdict = row < verdicts.count ? verdicts[row].map(esc) ?? "" : ""
            html += "<td><img src=\"\(final)\"><br>final<br>\(verdict)</td></tr></table>\n"
        }
        try writeAtomically(Data(html.utf8), to: folder + "/index.html")
    }
}

/// The trajectory gallery of the results page: for each prompt, one row per method — the x̂₀ frames at
/// the refinement steps with the prompt each led to, the final image and its verdict against the query.
/// Each row's frames and final image are one PNG strip (frames first, final last).
public enum GalleryPage {
    public struct Row {
        public var method: String
        public var trajectory: Trajectory
        public var image: RGBImage
        /// ShapeEval strict of the final image against the query.
        public var passed: Bool

        public init(method: String, trajectory: Trajectory, image: RGBImage, passed: Bool) {
            self.method = method
            self.trajectory = trajectory
            self.image = image
            self.passed = passed
        }
    }

    /// Images side by side with a 2-pixel white gap (equal heights).
    static func strip(_ images: [RGBImage]) -> RGBImage {
        let gap = 2, h = images.map(\.height).max() ?? 1
        let w = images.map(\.width).reduce(0, +) + gap * Swift.max(images.count - 1, 0)
        var out = RGBImage(width: Swift.max(w, 1), height: h, fill: RGB(1, 1, 1))
        var x0 = 0
        for image in images {
            for y in 0..<image.height {
                for x in 0..<image.width {
                    for c in 0..<3 { out.pixels[3 * (y * out.width + x0 + x) + c] = image.pixels[3 * (y * image.width + x) + c] }
                }
            }
            x0 += image.width + gap
        }
        return out
    }

    /// `prompts[i]` (category, query) with its `rows[i]` (one per method), into `folder/index.html`.
    public static func write(prompts: [(category: String, query: String)], rows: [[Row]], title: String,
                             to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var html = """
            <!doctype html><meta charset="utf-8"><title>\(esc(title))</title>
            <style>body{font-family:sans-serif;max-width:1400px} td{vertical-align:top;padding:3px 6px;font-size:12px}
            img{height:96px;image-rendering:pixelated} .pass{color:#070;font-weight:bold} .fail{color:#a00;font-weight:bold}
            .steps span{display:inline-block;width:98px;margin-right:2px;vertical-align:top}</style>
            <h1>\(esc(title))</h1>

            """
        for (p, prompt) in prompts.enumerated() {
            html += "<h3>\(p + 1). \(esc(prompt.query)) <small>(\(esc(prompt.category)))</small></h3>\n<table>\n"
            for (m, row) in rows[p].enumerated() {
                let frames = row.trajectory.actions.compactMap(\.state.image)
                let name = String(format: "p%02d-m%d.png", p, m)
                try PNG.write(strip(frames + [row.image]), to: folder + "/" + name)
                let steps = row.trajectory.actions.map { a -> String in
                    let when = a.state.step < 0 ? "before step 0" : "after step \(a.state.step)"
                    return "<span>\(when): " + (a.valid ? "" : "<i>invalid, kept:</i> ") + "<b>\(esc(a.prompt))</b></span>"
                }.joined()
                let verdict = row.passed ? "<span class=pass>PASS</span>" : "<span class=fail>FAIL</span>"
                html += "<tr><td><b>\(esc(row.method))</b><br>\(verdict)</td><td><img src=\"\(name)\"><div class=steps>"
                    + (steps.isEmpty ? "<span>the query throughout</span>" : steps) + "</div></td></tr>\n"
            }
            html += "</table>\n"
        }
        try writeAtomically(Data(html.utf8), to: folder + "/index.html")
    }
}
