import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

func fixture(_ path: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(path)").path
}

/// Largest absolute difference over the reference's largest magnitude (DESIGN.md §2: ≤ 1e-4).
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    let scale = Swift.max(1e-12, b.to(.float64).abs().max().item())
    return (a.to(.float64) - b.to(.float64)).abs().max().item() / scale
}

// References: scripts/fixtures/diffusion_models.py (torch 2.11.0, diffusers 0.42.1,
// transformers 5.24.0) builds tiny random pipelines and records their outputs, e.g.
//   ref["unet.out_t500"] = unet(sample, 500, context, added_cond_kwargs=added).sample
@Suite struct ModelParityTests {
    @Test(arguments: ["tiny-sd", "tiny-sdxl"])
    func textEncoders(name: String) throws {
        let ref = try SafeTensorsFile(path: fixture("\(name)/reference.safetensors"))
        let te = try CLIPTextModel.load(folder: fixture("\(name)/text_encoder"))
        let ids = try ref.tensor("input_ids")
        let out = withNoGrad { te(ids) }
        #expect(relativeError(out.lastHiddenState, try ref.tensor("te.last_hidden_state")) < 1e-4)
        #expect(relativeError(out.hiddenStates[out.hiddenStates.count - 2], try ref.tensor("te.penultimate")) < 1e-4)
        #expect(relativeError(out.pooled, try ref.tensor("te.pooled")) < 1e-4)
        let masked = withNoGrad { te(ids, attentionMask: try! ref.tensor("te.attention_mask")) }
        #expect(relativeError(masked.lastHiddenState, try ref.tensor("te.masked_last_hidden_state")) < 1e-4)
        if name == "tiny-sdxl" {
            let te2 = try CLIPTextModel.load(folder: fixture("\(name)/text_encoder_2"))
            let out2 = withNoGrad { te2(ids) }
            #expect(relativeError(out2.hiddenStates[out2.hiddenStates.count - 2], try ref.tensor("te2.penultimate")) < 1e-4)
            #expect(relativeError(try #require(out2.textEmbeds), try ref.tensor("te2.text_embeds")) < 1e-4)
        }
    }

    @Test(arguments: ["tiny-sd", "tiny-sdxl"])
    func unetCall(name: String) throws {
        let ref = try SafeTensorsFile(path: fixture("\(name)/reference.safetensors"))
        let unet = try UNet2DConditionModel.load(folder: fixture("\(name)/unet"))
        let sample = try ref.tensor("unet.sample")
        let context = try ref.tensor("unet.context")
        var added: AddedConditioning? = nil
        if name == "tiny-sdxl" {
            added = AddedConditioning(textEmbeds: try ref.tensor("te2.text_embeds"), timeIds: try ref.tensor("time_ids"))
        }
        let out = withNoGrad { unet(sample, timestep: Tensor(scalar: Int64(500)), context: context, added: added) }
        #expect(relativeError(out, try ref.tensor("unet.out_t500")) < 1e-4)
        let rows = withNoGrad {
            unet(sample, timestep: Tensor([10, 980] as [Int64]), context: context, added: added)
        }
        #expect(relativeError(rows, try ref.tensor("unet.out_rows")) < 1e-4)
    }

    @Test(arguments: [("tiny-sd", nil), ("tiny-sdxl", "fp16")] as [(String, String?)])
    func vaeEncodeDecode(name: String, variant: String?) throws {
        let ref = try SafeTensorsFile(path: fixture("\(name)/reference.safetensors"))
        let vae = try AutoencoderKL.load(folder: fixture("\(name)/vae"), options: LoadOptions(variant: variant))
        let post = withNoGrad { vae.encode(try! ref.tensor("vae.image")) }
        #expect(relativeError(post.mean, try ref.tensor("vae.mean")) < 1e-4)
        #expect(relativeError(post.logvar, try ref.tensor("vae.logvar")) < 1e-4)
        #expect(relativeError(withNoGrad { vae.decode(post.mean) }, try ref.tensor("vae.decoded")) < 1e-4)
        #expect(relativeError(post.sample(generator: try Generator(seed: 5)), try ref.tensor("vae.sample_seed5")) < 1e-4)
    }
}
