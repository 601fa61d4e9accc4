import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

/// A UNet LoRA in diffusers' folder format. Reference: scripts/fixtures/unet_lora.py — diffusers
/// and PEFT add a rank-4 LoRA to the shipped UNet's attention projections, `save_lora_weights`
/// writes Fixtures/unet-lora/, `load_lora_weights` reads it back and samples two prompts.
@Suite struct UNetLoRATests {
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Models/shapeworld-sd").standardized.path

    @Test func diffusersLoRAFolderGivesDiffusersImagesWithin2Of255() throws {
        let plan = try UNetLoRA.plan(folder: fixture("unet-lora"))
        #expect(plan == LoRAInjection(rank: 4, alpha: 8, targetModules: UNetLoRA.defaultTargets))
        let pipe = try StableDiffusionPipeline.load(folder: Self.model, options: LoadOptions(unetLoRA: fixture("unet-lora")))
        let plain = try StableDiffusionPipeline.load(folder: Self.model)
        let ref = try SafeTensorsFile(path: fixture("unet-lora-diffusers.safetensors"))
        for (i, (prompt, seed)) in [("two red circles left of a blue square", 0), ("a photo of three small yellow triangles", 2)].enumerated() {
            let options = SamplingOptions(steps: 20, guidance: 5, seed: UInt64(seed))
            let bytes = (pipe.decode(try pipe.sample(prompts: [prompt], options: options).latents).permute(0, 2, 3, 1) * 255)
                .round().to(.int32)[0]
            let expected = try ref.tensor("image.\(i)").to(.int32)
            let worst = (bytes - expected).abs().max().item()
            #expect(worst <= 2, "\"\(prompt)\": max pixel difference \(worst)/255")
            // The adapter matters: without it the image is another.
            let base = (plain.decode(try plain.sample(prompts: [prompt], options: options).latents).permute(0, 2, 3, 1) * 255)
                .round().to(.int32)[0]
            #expect((base - expected).abs().max().item() > 20)
        }
    }

    /// Written back by PromptLoop, the folder has diffusers' keys, shapes, values and adapter
    /// metadata — what `load_lora_weights` reads.
    @Test func writtenFolderMatchesDiffusersLayout() throws {
        let unet = try UNet2DConditionModel.load(folder: Self.model + "/unet", options: LoadOptions(unetLoRA: fixture("unet-lora")))
        let out = NSTemporaryDirectory() + "unet-lora-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        try UNetLoRA.save(unet.store, plan: try UNetLoRA.plan(folder: fixture("unet-lora")), to: out)
        let ours = try SafeTensorsFile(path: out + "/" + UNetLoRA.fileName)
        let theirs = try SafeTensorsFile(path: fixture("unet-lora/" + UNetLoRA.fileName))
        #expect(ours.names == theirs.names)
        for name in theirs.names {
            #expect(try ours.tensor(name).to(.float32).equal(try theirs.tensor(name).to(.float32)), "\(name)")
        }
        let meta = { (f: SafeTensorsFile) in
            try JSONSerialization.jsonObject(with: Data((f.metadata["lora_adapter_metadata"] ?? "{}").utf8)) as? [String: Any] ?? [:]
        }
        let (a, b) = (try meta(ours), try meta(theirs))
        for key in ["unet.r", "unet.lora_alpha"] { #expect("\(a[key] ?? "-")" == "\(b[key] ?? "-")", "\(key)") }
        #expect(Set(a["unet.target_modules"] as? [String] ?? []) == Set(b["unet.target_modules"] as? [String] ?? []))
        #expect(try UNetLoRA.plan(folder: out) == UNetLoRA.plan(folder: fixture("unet-lora")))
    }

    /// A folder without the file, keys outside the UNet, or mixed ranks are errors naming the file.
    @Test func badLoRAFoldersAreNamed() throws {
        let dir = NSTemporaryDirectory() + "unet-lora-bad-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: ModelError.missingFile(dir + "/" + UNetLoRA.fileName)) { try UNetLoRA.plan(folder: dir) }
        try SafeTensors.write(["text_encoder.x.lora_A.weight": Tensor.zeros([2, 4])], to: dir + "/" + UNetLoRA.fileName)
        do { _ = try UNetLoRA.plan(folder: dir); Issue.record("accepted") } catch { #expect("\(error)".contains(dir)) }
        try SafeTensors.write(["unet.a.to_q.lora_A.weight": Tensor.zeros([2, 4]), "unet.b.to_k.lora_A.weight": Tensor.zeros([3, 4])],
                              to: dir + "/" + UNetLoRA.fileName)
        do { _ = try UNetLoRA.plan(folder: dir); Issue.record("accepted") } catch { #expect("\(error)".contains("ranks")) }
    }
}
