import Diffusion
import Foundation
import Testing
import Torch

/// The shipped default model, `Models/shapeworld-sd`, against diffusers' own `StableDiffusionPipeline`
/// on the same folder. Reference: scripts/fixtures/miniature_diffusers.py (20 DDIM steps, guidance 5,
/// one image per prompt and seed, quantised as diffusers' numpy_to_pil does).
@Suite struct MiniatureTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Models/shapeworld-sd").standardized.path

    @Test func shippedModelReproducesDiffusersImagesWithin2Of255() throws {
        let pipe = try StableDiffusionPipeline.load(folder: Self.folder)
        let ref = try SafeTensorsFile(path: fixture("shapeworld-sd-diffusers.safetensors"))
        let runs = [("two red circles left of a blue square", 0), ("a photo of a large green diamond", 1),
                    ("a photo of three small yellow triangles", 2), ("", 3)]
        for (i, (prompt, seed)) in runs.enumerated() {
            let out = try pipe.sample(prompts: [prompt], options: SamplingOptions(steps: 20, guidance: 5, seed: UInt64(seed)))
            let bytes = (pipe.decode(out.latents).permute(0, 2, 3, 1) * 255).round().to(.int32)[0]
            let expected = try ref.tensor("image.\(i)").to(.int32)
            #expect(bytes.shape == expected.shape)
            let worst = (bytes - expected).abs().max().item()
            #expect(worst <= 2, "\"\(prompt)\" seed \(seed): max pixel difference \(worst)/255")
        }
    }
}
