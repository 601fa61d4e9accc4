// The learned reward of the miniature (`Models/shapeworld-proxy`): a small transformers `CLIPModel`
// whose image–text cosine is trained to predict ShapeEval's soft score of (image, query). It is
// differentiable, so ReFL can backpropagate through it, and it is the proxy of the reward-hacking
// study: the true score stays ShapeEval.
import Diffusion
import Foundation
import Imaging
import Rewards
import ShapeWorld
import Torch
import TorchNN
import Training
import VisionLanguage

public enum MiniatureProxy {
    /// `config.json` (transformers `CLIPModel`): text tower as the miniature's text encoder (the same
    /// tokenizer), a 64×64 vision tower with 8-pixel patches, both 128 wide with 2 layers.
    public static func config(vocabularySize: Int) -> [String: Any] {
        let text = Miniature.textConfig(vocabularySize: vocabularySize)
        // An absent token id is JSON null, as transformers writes it.
        func orNull(_ id: Int?) -> Any { id.map { $0 as Any } ?? NSNull() }
        return [
            "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 128,
            "logit_scale_init_value": 2.6592, "dtype": "float32",
            "text_config": [
                "model_type": "clip_text_model", "vocab_size": vocabularySize, "hidden_size": 128,
                "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
                "max_position_embeddings": Miniature.maxLength, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
                "projection_dim": 128, "pad_token_id": orNull(text.padTokenId), "bos_token_id": orNull(text.bosTokenId),
                "eos_token_id": orNull(text.eosTokenId), "attention_dropout": 0.0,
            ] as [String: Any],
            "vision_config": [
                "model_type": "clip_vision_model", "hidden_size": 128, "intermediate_size": 512,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_channels": 3, "image_size": 64,
                "patch_size": 8, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 128,
                "attention_dropout": 0.0,
            ] as [String: Any],
        ]
    }

    /// Writes everything but the weights: `config.json`, `preprocessor_config.json` (the 64×64 image as
    /// it is, CLIP's normalisation) and the diffusion model's tokenizer files.
    public static func writeFolder(to folder: String, tokenizerFrom diffusion: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func write(_ object: Any, _ name: String) throws {
            try writeAtomically(JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
                                to: folder + "/" + name)
        }
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try? FileManager.default.removeItem(atPath: folder + "/" + file)
            try FileManager.default.copyItem(atPath: diffusion + "/tokenizer/" + file, toPath: folder + "/" + file)
        }
        let tokenizer = try PipelineTokenizer.load(folder: folder, maxLength: Miniature.maxLength)
        try write(config(vocabularySize: tokenizer.base.vocabularySize), "config.json")
        try write([
            "image_processor_type": "CLIPImageProcessor", "do_resize": false, "do_center_crop": false,
            "size": ["shortest_edge": 64], "crop_size": ["height": 64, "width": 64], "resample": 3,
            "do_rescale": true, "rescale_factor": 1.0 / 255, "do_normalize": true, "do_convert_rgb": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        ] as [String: Any], "preprocessor_config.json")
    }
}

/// The proxy's data: the miniature's own samples of training queries (a pool sampled once, in chunks,
/// under the protocol's sampler) and clean ShapeWorld renders, each paired with a query and labelled
/// with ShapeEval's soft score against it. Half of each batch is pool images with the query they were
/// made for, a quarter pool images with another training query, a quarter renders with their dense
/// caption or a training query. Every batch is a pure function of (seed, step).
public final class ProxyData {
    public let queries: [PromptRecord]
    public private(set) var images: [RGBImage] = []
    /// The query index each pool image was sampled for, and its soft score against it.
    public private(set) var owners: [Int] = []
    public private(set) var ownSoft: [Double] = []
    let shapeEval = ShapeEval()
    let pairs = TrainingPairSampler()
    let renderer = Renderer()

    public init(queries: [PromptRecord]) throws {
        guard !queries.isEmpty else { throw MiniatureError.invalidSettings("the proxy needs training queries") }
        self.queries = queries
    }

    /// Samples (or reads back) `chunks` chunks of `chunkSize` images into `folder/chunk-NNN.safetensors`;
    /// a chunk is a pure function of (seed, chunk index), written atomically, so a killed run keeps
    /// the chunks it finished.
    public func loadPool(pipeline: StableDiffusionPipeline, folder: String, chunks: Int, chunkSize: Int, seed: UInt64,
                         progress: (Int, Int) -> Void = { _, _ in }) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        images = []
        owners = []
        ownSoft = []
        for chunk in 0..<chunks {
            let path = folder + String(format: "/chunk-%03d.safetensors", chunk)
            var rng = SplitMix64(seed: seed, stream: UInt64(chunk) &+ 1)
            let rows = (0..<chunkSize).map { _ in Int(rng.next() % UInt64(queries.count)) }
            let rowSeeds = (0..<chunkSize).map { _ in rng.next() }
            let tensor: Tensor
            if FileManager.default.fileExists(atPath: path),
               let stored = try? SafeTensorsFile(path: path).tensor("images"), stored.shape == [chunkSize, 3, 64, 64] {
                tensor = stored.to(.float32)
            } else {
                tensor = try withNoGrad { () -> Tensor in
                    var parts: [Tensor] = []
                    for start in stride(from: 0, to: chunkSize, by: 16) {
                        let idx = Array(start..<Swift.min(start + 16, chunkSize))
                        let out = try pipeline.sample(prompts: idx.map { queries[rows[$0]].prompt },
                                                      options: SamplingOptions(steps: 20, guidance: 5, seed: 0,
                                                                               rowSeeds: idx.map { rowSeeds[$0] }))
                        parts.append(pipeline.decode(out.latents))
                    }
                    return Tensor.cat(parts, dim: 0)
                }
                try SafeTensors.write(["images": tensor.to(.float16)], metadata: ["format": "pt"], to: path)
            }
            let decoded = tensor.to(.float16).to(.float32)  // what a resumed run reads back
            for i in 0..<chunkSize {
                let image = RGBImage(tensor: decoded[i])
                images.append(image)
                owners.append(rows[i])
                ownSoft.append(shapeEval.score(image, queries[rows[i]].constraints).soft)
            }
            progress(chunk + 1, chunks)
        }
    }

    /// The examples of `step`: images, query texts and soft targets.
    public func batch(seed: UInt64, step: Int, size: Int) -> (images: [RGBImage], queries: [String], targets: [Double]) {
        precondition(!images.isEmpty, "loadPool first")
        var rng = SplitMix64(seed: seed, stream: UInt64(step) &+ 0x9000)
        var out: (images: [RGBImage], queries: [String], targets: [Double]) = ([], [], [])
        for k in 0..<size {
            let part = Double(k) / Double(size)
            if part < 0.5 {
                let i = Int(rng.next() % UInt64(images.count))
                out.images.append(images[i])
                out.queries.append(queries[owners[i]].prompt)
                out.targets.append(ownSoft[i])
            } else if part < 0.75 {
                let i = Int(rng.next() % UInt64(images.count))
                let q = queries[Int(rng.next() % UInt64(queries.count))]
                out.images.append(images[i])
                out.queries.append(q.prompt)
                out.targets.append(shapeEval.score(images[i], q.constraints).soft)
            } else {
                let pair = pairs.sample(rng: &rng)
                let image = renderer.render(pair.scene)
                let own = rng.uniform() < 0.5
                let q = own ? (pair.caption, pair.constraints) : {
                    let r = queries[Int(rng.next() % UInt64(queries.count))]
                    return (r.prompt, r.constraints)
                }()
                out.images.append(image)
                out.queries.append(q.0)
                out.targets.append(shapeEval.score(image, q.1).soft)
            }
        }
        return out
    }
}

/// Trains a fresh proxy (``MiniatureProxy/writeFolder(to:tokenizerFrom:)``): the cosine of image and
/// query embeddings regresses ShapeEval soft (MSE).
public final class ProxyTrainer {
    public let store: ParameterStore
    public let reward: LearnedProxyReward
    public let optimizer: AdamW
    public let schedule: LRSchedule
    public private(set) var step = 0
    public private(set) var lastSkipReason: String?

    public init(folder: String, seed: UInt64, schedule: LRSchedule) throws {
        let config = try ModelFolder.config(CLIPModelConfig.self, in: folder)
        store = try ParameterStore(seed: seed)
        let model = try CLIPModel(config: config, path: store.root)
        reward = LearnedProxyReward(model: model,
                                    tokenizer: try PipelineTokenizer.load(folder: folder, maxLength: Miniature.maxLength),
                                    processor: try ImageProcessor.load(folder: folder))
        optimizer = AdamW(store.trainableTensors, learningRate: schedule.rate(at: 0), betas: (0.9, 0.999),
                          weightDecay: 0.01)
        self.schedule = schedule
    }

    public func loss(images: [RGBImage], queries: [String], targets: [Double]) throws -> Tensor {
        let pixels = Tensor.cat(images.map { Tensor($0.planar(), shape: [1, 3, $0.height, $0.width]) }, dim: 0)
        let cos = try reward.cosine(images: pixels, queries: queries)
        return (cos - Tensor(targets.map(Float.init))).square().mean()
    }

    @discardableResult
    public func trainStep(images: [RGBImage], queries: [String], targets: [Double]) throws -> Double {
        optimizer.learningRate = schedule.rate(at: step)
        optimizer.zeroGrad()
        let l = try loss(images: images, queries: queries, targets: targets)
        let outcome = guardedStep(l, optimizer: optimizer, maxNorm: 1, step: step + 1)
        lastSkipReason = outcome.skipReason
        step += 1
        return outcome.loss
    }

    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try TrainingCheckpoint.save(to: path, stores: ["proxy": store], optimizer: optimizer, generators: [:],
                                    step: step, metadata: metadata)
    }

    public func resume(from path: String) throws {
        step = try TrainingCheckpoint.load(from: path, stores: ["proxy": store], optimizer: optimizer,
                                           generators: [:]).step
    }

    /// `model.safetensors` with transformers' CLIPModel keys (the module keys are transformers').
    public func exportWeights(to folder: String) throws {
        try SafeTensors.write(store.state(.all), metadata: ["format": "pt"], to: folder + "/model.safetensors")
    }
}

extension ProxyTrainer: StageTrainer {}

/// How far the proxy agrees with ShapeEval soft on images it never trained on.
public struct ProxyAgreement: Sendable, Codable {
    public var images: Int
    /// Pearson correlation and mean absolute error of proxy and soft score.
    public var pearson: Double
    public var meanAbsoluteError: Double
    /// Of the pairs of images of one query whose soft scores differ, the share the proxy orders alike.
    public var pairOrder: Double
    public var pairs: Int

    public static func measure(proxy: [Double], soft: [Double], groups: [Int]) -> ProxyAgreement {
        let n = Double(proxy.count)
        let mp = proxy.reduce(0, +) / n, ms = soft.reduce(0, +) / n
        let cov = zip(proxy, soft).map { ($0 - mp) * ($1 - ms) }.reduce(0, +)
        let vp = proxy.map { ($0 - mp) * ($0 - mp) }.reduce(0, +), vs = soft.map { ($0 - ms) * ($0 - ms) }.reduce(0, +)
        var agree = 0, total = 0
        for i in proxy.indices {
            for j in proxy.indices where j > i && groups[i] == groups[j] && soft[i] != soft[j] {
                total += 1
                if (proxy[i] - proxy[j]) * (soft[i] - soft[j]) > 0 { agree += 1 }
            }
        }
        return ProxyAgreement(images: proxy.count, pearson: cov / (vp * vs).squareRoot(),
                              meanAbsoluteError: zip(proxy, soft).map { abs($0 - $1) }.reduce(0, +) / n,
                              pairOrder: total == 0 ? .nan : Double(agree) / Double(total), pairs: total)
    }
}

/// Training of the learned proxy (`promptloop pretrain proxy`): the pool of the miniature's samples of
/// training queries is sampled into `folder/pool` first (chunked, resumable), then the proxy trains
/// in `folder/proxy`; when done it is a complete transformers `CLIPModel` folder (copied to `export`
/// when given), and its agreement with ShapeEval on held-out samples (of eval queries, which it never
/// trains on) is written to `folder/agreement.json`.
public struct ProxyRecipe {
    public var folder: String
    public var diffusion: String
    public var settings: RunSettings
    public var trainQueries: [PromptRecord]
    /// Queries whose samples measure agreement (never trained on).
    public var heldOutQueries: [PromptRecord]
    public var poolChunks = 6
    public var chunkSize = 256
    public var export: String?

    public init(folder: String, diffusion: String, settings: RunSettings, trainQueries: [PromptRecord],
                heldOutQueries: [PromptRecord], export: String? = nil) {
        self.folder = folder
        self.diffusion = diffusion
        self.settings = settings
        self.trainQueries = trainQueries
        self.heldOutQueries = heldOutQueries
        self.export = export
    }

    @discardableResult
    public func run(progress: (RunEvent) -> Void = { _ in }, poolProgress: (Int, Int) -> Void = { _, _ in })
        throws -> ProxyAgreement? {
        try settings.validate()
        try RunLock.createFolder(folder)
        let modelFolder = folder + "/proxy"
        if !FileManager.default.fileExists(atPath: modelFolder + "/config.json") {
            try MiniatureProxy.writeFolder(to: modelFolder, tokenizerFrom: diffusion)
        }
        let pipeline = try StableDiffusionPipeline.load(folder: diffusion, scheduler: "ddim")
        let data = try ProxyData(queries: trainQueries)
        try data.loadPool(pipeline: pipeline, folder: folder + "/pool", chunks: poolChunks, chunkSize: chunkSize,
                          seed: settings.seed, progress: poolProgress)
        let trainer = try ProxyTrainer(folder: modelFolder, seed: settings.seed, schedule: settings.schedule)
        let finished = try runStage("proxy", folder: folder, settings: settings, trainer: trainer, columns: ["loss"],
                                    progress: progress) {
            let b = data.batch(seed: settings.seed, step: trainer.step, size: settings.batch)
            let loss = try trainer.trainStep(images: b.images, queries: b.queries, targets: b.targets)
            return ([loss], String(format: "loss %.4f", loss))
        }
        guard finished else { return nil }
        try trainer.exportWeights(to: modelFolder)
        progress(.exported(modelFolder))
        let heldOut = try ProxyData(queries: heldOutQueries)
        try heldOut.loadPool(pipeline: pipeline, folder: folder + "/held-out", chunks: 1, chunkSize: chunkSize,
                             seed: settings.seed &+ 0x4E1D)
        // Each held-out image against its own query and against another held-out query.
        var proxyScores: [Double] = [], soft: [Double] = [], groups: [Int] = []
        var rng = SplitMix64(seed: 5)
        for (i, image) in heldOut.images.enumerated() {
            let other = Int(rng.next() % UInt64(heldOutQueries.count))
            for q in [heldOut.owners[i], other] {
                let record = heldOutQueries[q]
                proxyScores.append(try trainer.reward.checkedScore([RewardInput(image: image, query: record.prompt)])[0].value)
                soft.append(ShapeEval().score(image, record.constraints).soft)
                groups.append(q)
            }
        }
        let agreement = ProxyAgreement.measure(proxy: proxyScores, soft: soft, groups: groups)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
        try writeAtomically(try encoder.encode(agreement), to: folder + "/agreement.json")
        try writeAtomically(try encoder.encode(agreement), to: modelFolder + "/agreement.json")
        if let export {
            try copyFolderFiles(from: modelFolder, to: export)
            progress(.exported(export))
        }
        return agreement
    }
}
