import ArgumentParser
import Diffusion
import Foundation
import ShapeWorld
import Torch

/// Does the VAE keep what ShapeEval sees? Renders fresh scenes, encodes and decodes them, and counts
/// the scenes whose per-constraint verdicts are the same on the reconstruction as on the original.
struct EvalVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Fraction of scenes whose ShapeEval verdict survives a VAE round trip (goal ≥ 98%).")

    @Option(help: "VAE folder (diffusers layout).")
    var vae = "Models/shapeworld-sd/vae"

    @Option(help: "Scenes to test.")
    var scenes = 500

    @Option(help: "Seed of the scene stream (use one the VAE never trained on).")
    var seed: UInt64 = 0x5EED_0F_E7A1

    @Option(help: "Write a contact sheet of originals and reconstructions here.")
    var sheet: String?

    func run() throws {
        guard scenes > 0 else { throw ValidationError("--scenes must be positive") }
        let model = try AutoencoderKL.load(folder: vae)
        let shapeEval = ShapeEval()
        var kept = 0
        var originalsPassing = 0
        var gallery: [(image: RGBImage, caption: String)] = []
        var rng = SplitMix64(seed: seed)
        let sampler = TrainingPairSampler(denseFraction: 1, paraphraseFraction: 0)
        let renderer = Renderer()
        var done = 0
        let start = Date()
        while done < scenes {
            let n = Swift.min(16, scenes - done)
            let pairs = (0..<n).map { _ in sampler.sample(rng: &rng) }
            let images = pairs.map { renderer.render($0.scene) }
            let side = images[0].width
            let input = Tensor(images.flatMap { $0.planar(range: -1...1) }, shape: [n, 3, side, side])
            let output = withNoGrad { (model.decode(model.encode(input).mean) / 2 + 0.5).clamp(min: 0, max: 1) }
            for i in 0..<n {
                let rebuilt = RGBImage(width: side, height: side, planar: output[i].contiguous().toArray(Float.self))
                let before = shapeEval.score(images[i], pairs[i].constraints)
                let after = shapeEval.score(rebuilt, pairs[i].constraints)
                if before.strict == 1 { originalsPassing += 1 }
                let same = before.constraints.map(\.passed) == after.constraints.map(\.passed)
                if same { kept += 1 }
                if gallery.count < 16 {
                    gallery.append((images[i], "original"))
                    gallery.append((rebuilt, same ? "same verdict" : "CHANGED"))
                }
            }
            done += n
            reportProgress(step: done, total: scenes, since: start, fromStep: 0,
                           text: String(format: "kept %.2f%%", 100 * Double(kept) / Double(done)))
        }
        print(String(format: "%d scenes: verdict kept on %.2f%% (goal ≥ 98%%); originals passing: %.2f%%", scenes,
                     100 * Double(kept) / Double(scenes), 100 * Double(originalsPassing) / Double(scenes)))
        if let sheet { try PNG.write(ContactSheet(columns: 8).render(gallery), to: sheet) }
    }
}
