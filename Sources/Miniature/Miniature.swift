import Diffusion
import Foundation
import Imaging
import ShapeWorld
import Torch

/// The embedded miniature Stable Diffusion of ShapeWorld: its configs (same classes as SD1.5, small
/// sizes) and its training data. The recipes that trained the shipped folder (`Models/shapeworld-sd`)
/// are ``VAERecipe`` and ``TextToImageRecipe``.
public enum Miniature {
    /// Text encoder context length.
    public static let maxLength = 32

    /// The VAE: 64×64×3 ↔ 16×16×4 (two downsamplings), SD's block types.
    public static func vaeConfig() -> AutoencoderKLConfig {
        var c = AutoencoderKLConfig()
        c.blockOutChannels = [32, 64, 64]
        c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 3)
        c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 3)
        c.layersPerBlock = 1
        c.latentChannels = 4
        c.normNumGroups = 16
        c.sampleSize = 64
        return c
    }

    public static func textConfig(vocabularySize: Int) -> CLIPTextConfig {
        var c = CLIPTextConfig()
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads) =
            (vocabularySize, 128, 512, 3, 4)
        (c.maxPositionEmbeddings, c.projectionDim, c.hiddenAct) = (maxLength, 128, .gelu)
        (c.padTokenId, c.bosTokenId, c.eosTokenId) = (3, 2, 3)
        return c
    }

    /// The UNet; `width` is the first block's channel count (the shipped model: 64 → [64, 128, 128]).
    /// The transfer backbone (`Models/shapeworld-sd-b`) uses 48. A multiple of 16 (the group norm).
    public static func unetConfig(width: Int = 64) -> UNet2DConditionConfig {
        var c = UNet2DConditionConfig()
        c.sampleSize = .one(16)
        c.blockOutChannels = [width, 2 * width, 2 * width]
        c.downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
        c.upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        c.layersPerBlock = .one(1)
        c.crossAttentionDim = .one(128)
        c.attentionHeadDim = .one(4)
        c.normNumGroups = 16
        return c
    }

    /// SD's noise schedule; sampling ships with DDIM on it.
    public static func scheduler(className: String) -> SchedulerConfig {
        var c = SchedulerConfig()
        c.className = className
        (c.betaStart, c.betaEnd, c.betaSchedule) = (0.00085, 0.012, "scaled_linear")
        (c.clipSample, c.setAlphaToOne, c.stepsOffset) = (false, false, 1)
        return c
    }

    /// Training images (`[size, 3, 64, 64]` in −1…1) and captions for `step`: a pure function of
    /// (seed, step), so a resumed run sees the batches it would have seen. Scenes avoid the held-out
    /// combinations (ShapeWorld `HoldOut.v1`).
    public static func trainingBatch(seed: UInt64, step: Int, size: Int) -> (images: Tensor, captions: [String]) {
        var rng = SplitMix64(seed: seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
        let sampler = TrainingPairSampler()
        let renderer = Renderer()
        var values: [Float] = []
        var captions: [String] = []
        var side = 64
        for _ in 0..<size {
            let pair = sampler.sample(rng: &rng)
            let image = renderer.render(pair.scene)
            side = image.width
            values += image.planar(range: -1...1)
            captions.append(pair.caption)
        }
        return (Tensor(values, shape: [size, 3, side, side]), captions)
    }
}
