// Mirrors transformers CLIPModel (transformers 5.24.0): text and vision towers, their projections
// and the logit scale; the reward is CLIPScore (Hessel et al. 2021) without its 2.5 weight:
// 100 · max(cos(image, text), 0).
import Diffusion
import Foundation
import Imaging
import Torch
import TorchNN
import VisionLanguage

/// `config.json` of a transformers `CLIPModel`.
public struct CLIPModelConfig: Decodable, Sendable {
    public var textConfig: CLIPTextConfig
    public var visionConfig: CLIPVisionConfig
    public var projectionDim: Int

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config", projectionDim = "projection_dim"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        textConfig = try c.decode(CLIPTextConfig.self, forKey: .textConfig)
        visionConfig = try c.decode(CLIPVisionConfig.self, forKey: .visionConfig)
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? 512
        // The text tower's projection width is the model's.
        textConfig.projectionDim = projectionDim
    }
}

/// A CLIP model with transformers' keys: `text_model.…`, `text_projection`, `vision_model.…`,
/// `visual_projection`, `logit_scale`.
public final class CLIPModel {
    public let config: CLIPModelConfig
    public let text: CLIPTextModel
    public let vision: CLIPVisionTower
    let visualProjection: Linear
    public let logitScale: Tensor

    public init(config: CLIPModelConfig, path p: ParameterPath) throws {
        self.config = config
        text = try CLIPTextModel(config: config.textConfig, path: p, withProjection: true)
        vision = CLIPVisionTower(config: config.visionConfig, path: p / "vision_model")
        visualProjection = Linear(p / "visual_projection", config.visionConfig.hiddenSize, config.projectionDim,
                                  bias: false)
        logitScale = p.parameter("logit_scale", [], .constant(2.6592))
    }

    /// Projected, unnormalised image embeddings `[N, P]` of normalised pixels.
    public func imageEmbeddings(_ pixels: Tensor) -> Tensor { visualProjection(vision.pooled(pixels)) }

    /// Projected, unnormalised text embeddings `[N, P]` of token ids `[N, L]`.
    public func textEmbeddings(_ ids: Tensor) -> Tensor {
        // CLIPTextModel with a projection gives text_projection(pooled).
        text(ids).textEmbeds ?? text(ids).pooled
    }

    /// `logits_per_image` `[N_images, N_texts]`: exp(logit_scale) · cosine similarity.
    public func logitsPerImage(pixels: Tensor, ids: Tensor) -> Tensor {
        let i = imageEmbeddings(pixels)
        let t = textEmbeddings(ids)
        let ni = i / i.square().sum(dim: -1, keepDim: true).sqrt()
        let nt = t / t.square().sum(dim: -1, keepDim: true).sqrt()
        return ni.matmul(nt.transpose(0, 1)) * logitScale.exp()
    }

    /// Loads a transformers `CLIPModel` folder (config and weights, strictly).
    public static func load(folder: String, options: LoadOptions = .init()) throws -> CLIPModel {
        let config = try ModelFolder.config(CLIPModelConfig.self, in: folder)
        let file = (folder as NSString).appendingPathComponent("config.json")
        try config.textConfig.validate(file: file)
        let store = try ParameterStore(device: options.device, dtype: options.dtype)
        let model = try CLIPModel(config: config, path: store.root)
        store.freeze()
        let hidden: Set<String> = ["text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"]
        try store.load(from: HidingSource(try ModelFolder.weights(in: folder, variant: options.variant), hiding: hidden))
        return model
    }
}

/// CLIPScore against the query: 100 · max(cos(image, query), 0), from a transformers `CLIPModel`
/// folder with its tokenizer and image processor. The reward a user with real SD weights reaches for
/// first; black-box to the trainer like every reward.
public final class CLIPScoreReward: Reward, @unchecked Sendable {
    public let model: CLIPModel
    public let tokenizer: PromptTokenizer
    public let processor: ImageProcessor
    public let name = "clip"

    public init(model: CLIPModel, tokenizer: PromptTokenizer, processor: ImageProcessor) {
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
    }

    public static func load(folder: String) throws -> CLIPScoreReward {
        let model = try CLIPModel.load(folder: folder)
        let tokenizer = try PipelineTokenizer.load(folder: folder, maxLength: model.config.textConfig.maxPositionEmbeddings)
        return CLIPScoreReward(model: model, tokenizer: tokenizer, processor: try ImageProcessor.load(folder: folder))
    }

    public func score(_ inputs: [RewardInput]) throws -> [RewardScore] {
        guard !inputs.isEmpty else { return [] }
        let vocab = model.config.textConfig.vocabSize
        var rows: [[Int64]] = []
        for input in inputs {
            let ids = tokenizer.tokenize(input.query).ids
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
                throw RewardError.unscorable(reward: name, query: input.query,
                                             reason: "token id \(bad) is outside the text tower's vocabulary")
            }
            rows.append(ids.map(Int64.init))
        }
        let width = rows.map(\.count).max() ?? 1
        guard rows.allSatisfy({ $0.count == width }) else {
            throw RewardError.invalidArgument("the CLIP tokenizer must pad every query to one length")
        }
        let pixels = try processor(Tensor.cat(inputs.map {
            Tensor($0.image.planar(), shape: [1, 3, $0.image.height, $0.image.width])
        }, dim: 0))
        let cos = withNoGrad { () -> [Double] in
            let i = model.imageEmbeddings(pixels)
            let t = model.textEmbeddings(Tensor(rows.flatMap { $0 }, shape: [rows.count, width]))
            let sim = (i * t).sum(dim: -1) / (i.square().sum(dim: -1).sqrt() * t.square().sum(dim: -1).sqrt())
            return sim.toArray(Double.self)
        }
        return cos.map { RewardScore(value: 100 * Swift.max($0, 0), details: ["cosine": $0]) }
    }
}
