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
