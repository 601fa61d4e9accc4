// A learned, differentiable stand-in for ShapeEval: a small transformers `CLIPModel` whose cosine of
// image and query embeddings was trained to predict ShapeEval's soft score (`promptloop pretrain
// proxy`, `Models/shapeworld-proxy`). ReFL backpropagates through it; the reward-hacking study
// optimises it while the true score stays ShapeEval.
import Diffusion
import Foundation
import Imaging
import Torch
import TorchNN
import VisionLanguage

public final class LearnedProxyReward: Reward, @unchecked Sendable {
    public let model: CLIPModel
    public let tokenizer: PromptTokenizer
    public let processor: ImageProcessor
    public let name = "proxy"

    public init(model: CLIPModel, tokenizer: PromptTokenizer, processor: ImageProcessor) {
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
    }

    /// Loads a proxy folder (transformers `CLIPModel` with its tokenizer and image processor), frozen.
    public static func load(folder: String, options: LoadOptions = .init()) throws -> LearnedProxyReward {
        let model = try CLIPModel.load(folder: folder, options: options)
        let tokenizer = try PipelineTokenizer.load(folder: folder, maxLength: model.config.textConfig.maxPositionEmbeddings)
        return LearnedProxyReward(model: model, tokenizer: tokenizer, processor: try ImageProcessor.load(folder: folder))
    }

    /// Token ids `[N, L]` of the queries; an id outside the text tower's vocabulary is an error naming the query.
    func ids(_ queries: [String]) throws -> Tensor {
        let vocab = model.config.textConfig.vocabSize
        var rows: [[Int64]] = []
        for query in queries {
            let ids = tokenizer.tokenize(query).ids
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
                throw RewardError.unscorable(reward: name, query: query,
                                             reason: "token id \(bad) is outside the text tower's vocabulary")
            }
            rows.append(ids.map(Int64.init))
        }
        let width = rows.map(\.count).max() ?? 1
        guard rows.allSatisfy({ $0.count == width }) else {
            throw RewardError.invalidArgument("the proxy's tokenizer must pad every query to one length")
        }
        return Tensor(rows.flatMap { $0 }, shape: [rows.count, width])
    }

    /// cos(image, query) `[N]` for images `[N, 3, H, W]` in [0, 1]: differentiable in the images (and in
    /// the model's parameters when they train).
    public func cosine(images: Tensor, queries: [String]) throws -> Tensor {
        guard images.rank == 4, images.size(0) == queries.count else {
            throw RewardError.invalidArgument("the proxy needs one query per image, got \(queries.count) for \(images.shape)")
        }
        let i = model.imageEmbeddings(try processor(images))
        let t = model.textEmbeddings(try ids(queries))
        return (i * t).sum(dim: -1) / (i.square().sum(dim: -1).sqrt() * t.square().sum(dim: -1).sqrt())
    }

    /// The predicted soft score: the cosine, as it was trained (in [−1, 1]; ShapeEval soft is in [0, 1]).
    public func score(_ inputs: [RewardInput]) throws -> [RewardScore] {
        guard !inputs.isEmpty else { return [] }
        let pixels = Tensor.cat(inputs.map { Tensor($0.image.planar(), shape: [1, 3, $0.image.height, $0.image.width]) },
                                dim: 0)
        let cos = try withNoGrad { try cosine(images: pixels, queries: inputs.map(\.query)).toArray(Double.self) }
        return cos.map { RewardScore(value: $0) }
    }
}
