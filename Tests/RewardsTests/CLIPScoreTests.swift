import Foundation
import Imaging
import Testing
import Torch
@testable import Rewards

func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

/// Largest absolute difference over the reference's largest magnitude.
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    let scale = Swift.max(1e-12, b.to(.float64).abs().max().item())
    return (a.to(.float64) - b.to(.float64)).abs().max().item() / scale
}

// Reference: scripts/fixtures/clip_model.py (torch 2.11.0, transformers 5.24.0), e.g.
//   ref["image_embeds"] = model.get_image_features(pixel_values=pixel_values)
@Suite struct CLIPScoreTests {
    @Test func embeddingsAndLogitsMatchTransformers() throws {
        let model = try CLIPModel.load(folder: fixture("tiny-clip"))
        let ref = try SafeTensorsFile(path: fixture("reference.safetensors"))
        let pixels = try ref.tensor("pixel_values")
        let ids = try ref.tensor("input_ids")
        let (image, text, logits) = withNoGrad {
            (model.imageEmbeddings(pixels), model.textEmbeddings(ids), model.logitsPerImage(pixels: pixels, ids: ids))
        }
        #expect(relativeError(image, try ref.tensor("image_embeds")) < 1e-4)
        #expect(relativeError(text, try ref.tensor("text_embeds")) < 1e-4)
        #expect(relativeError(logits, try ref.tensor("logits_per_image")) < 1e-4)
    }

    /// The reward end to end: tokenizer and image processor from the folder give transformers' ids
    /// and (within PIL's 8-bit resampling) pixels, and the score is 100 · cos, clipped at 0.
    @Test func theRewardScoresQueriesWithTheFoldersTokenizerAndProcessor() throws {
        let reward = try CLIPScoreReward.load(folder: fixture("tiny-clip"))
        let ref = try SafeTensorsFile(path: fixture("reference.safetensors"))
        let texts = ["a red circle", "two blue squares", "a photo of a green triangle"]
        let expectedIds = try ref.tensor("input_ids").toArray(Int64.self).map(Int.init)
        #expect(texts.flatMap { reward.tokenizer.tokenize($0).ids } == expectedIds)
        let strip = try PNG.read(from: fixture("images.png"))
        func crop(_ x0: Int) -> RGBImage {
            var image = RGBImage(width: 48, height: 40)
            for y in 0..<40 { for x in 0..<48 { for c in 0..<3 { image[x, y, c] = strip[x0 + x, y, c] } } }
            return image
        }
        let inputs = [RewardInput(image: crop(0), query: texts[0]), RewardInput(image: crop(48), query: texts[1])]
        let scores = try reward.checkedScore(inputs)
        let logits = try ref.tensor("logits_per_image").toArray(Double.self)  // [2, 3]
        let scale = Foundation.exp(reward.model.logitScale.item())
        for (i, column) in [0, 1].enumerated() {
            let cosine = logits[i * 3 + column] / scale
            #expect(abs(scores[i].details["cosine"]! - cosine) < 0.02, "image \(i): \(scores[i]) vs cos \(cosine)")
            #expect(scores[i].value == 100 * Swift.max(scores[i].details["cosine"]!, 0))
        }
        #expect(reward.name == "clip")
    }
}
