import Foundation
import Imaging
import Rewards
import Testing
import Torch

/// The shipped learned proxy against transformers on the same folder. Reference:
/// scripts/fixtures/proxy_transformers.py (CLIPModel.from_pretrained, the cosine of
/// get_image_features and get_text_features).
@Suite struct ShippedProxyTests {
    @Test func tokensAndScoresEqualTransformers() throws {
        let proxy = try LearnedProxyReward.load(folder: repository + "/Models/shapeworld-proxy")
        let ref = try SafeTensorsFile(path: fixture("proxy-reference.safetensors"))
        let bytes = try ref.tensor("image").to(.int64).toArray(Int64.self).map { UInt8($0) }
        let image = RGBImage(width: 64, height: 64, bytes: bytes)
        let queries = ["a photo of a red circle left of a blue square", "a photo of a blue square",
                       "a photo of three green triangles"]
        let ids = try ref.tensor("input_ids").toArray(Int64.self)
        #expect(queries.flatMap { proxy.tokenizer.tokenize($0).ids.map(Int64.init) } == ids)
        let expected = try ref.tensor("cosine").toArray(Double.self)
        let scores = try proxy.checkedScore(queries.map { RewardInput(image: image, query: $0) }).map(\.value)
        for (a, b) in zip(scores, expected) { #expect(abs(a - b) < 1e-4, "\(scores) vs \(expected)") }
    }
}
