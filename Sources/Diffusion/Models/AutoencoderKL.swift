// Mirrors diffusers AutoencoderKL with Encoder / Decoder from autoencoders/vae.py (diffusers 0.42.1).
import Foundation
import Torch
import TorchNN

/// `vae/config.json`, with the field names diffusers writes.
public struct AutoencoderKLConfig: Codable, Sendable {
    public var inChannels = 3
    public var outChannels = 3
    public var downBlockTypes = ["DownEncoderBlock2D"]
    public var upBlockTypes = ["UpDecoderBlock2D"]
    public var blockOutChannels = [64]
    public var layersPerBlock = 1
    public var actFn: Activation = .silu
    public var latentChannels = 4
    public var normNumGroups = 32
    public var sampleSize: Int? = 32
    public var scalingFactor = 0.18215
    public var shiftFactor: Double? = nil
    public var forceUpcast = true
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block", actFn = "act_fn", latentChannels = "latent_channels"
        case normNumGroups = "norm_num_groups", sampleSize = "sample_size", scalingFactor = "scaling_factor"
        case shiftFactor = "shift_factor", forceUpcast = "force_upcast", useQuantConv = "use_quant_conv"
        case usePostQuantConv = "use_post_quant_conv", midBlockAddAttention = "mid_block_add_attention"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoencoderKLConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        downBlockTypes = try c.decodeIfPresent([String].self, forKey: .downBlockTypes) ?? d.downBlockTypes
        upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes) ?? d.upBlockTypes
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? d.blockOutChannels
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? d.layersPerBlock
        actFn = try c.decodeIfPresent(Activation.self, forKey: .actFn) ?? d.actFn
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? d.latentChannels
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? d.normNumGroups
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? d.sampleSize
        scalingFactor = try c.decodeIfPresent(Double.self, forKey: .scalingFactor) ?? d.scalingFactor
        shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
        forceUpcast = try c.decodeIfPresent(Bool.self, forKey: .forceUpcast) ?? d.forceUpcast
        useQuantConv = try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? d.useQuantConv
        usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? d.usePostQuantConv
        midBlockAddAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? d.midBlockAddAttention
    }

    public func validate(file: String = "vae/config.json") throws {
        let n = blockOutChannels.count
        let range = ConfigRange(file: file)
        try range.count("block_out_channels.count", n, 1...16)
        try range.counts("block_out_channels", blockOutChannels, 1...ConfigRange.maxWidth)
        try range.count("in_channels", inChannels, 1...ConfigRange.maxWidth)
        try range.count("out_channels", outChannels, 1...ConfigRange.maxWidth)
        try range.count("latent_channels", latentChannels, 1...ConfigRange.maxWidth)
        try range.count("layers_per_block", layersPerBlock, 1...ConfigRange.maxLayers)
        try range.count("norm_num_groups", normNumGroups, 1...ConfigRange.maxWidth)
        if let s = sampleSize { try range.count("sample_size", s, 1...ConfigRange.maxSpatial) }
        try range.real("scaling_factor", scalingFactor, above: 0, atMost: 1e6)
        if let s = shiftFactor { try range.real("shift_factor", s, atLeast: -1e6, atMost: 1e6) }
        guard n > 0, downBlockTypes.count == n, upBlockTypes.count == n else {
            throw ModelError.badConfig(file: file,
                message: "\(downBlockTypes.count) down / \(upBlockTypes.count) up blocks for \(n) `block_out_channels`")
        }
        for t in downBlockTypes where t != "DownEncoderBlock2D" {
            throw ModelError.unsupported(file: file, field: "down_block_types", value: t)
        }
        for t in upBlockTypes where t != "UpDecoderBlock2D" {
            throw ModelError.unsupported(file: file, field: "up_block_types", value: t)
        }
        for c in blockOutChannels where c % normNumGroups != 0 {
            throw ModelError.badConfig(file: file, message: "block_out_channels \(c) not divisible by norm_num_groups \(normNumGroups)")
        }
        guard layersPerBlock > 0, latentChannels > 0 else {
            throw ModelError.badConfig(file: file, message: "`layers_per_block` and `latent_channels` must be positive")
        }
    }
}

/// diffusers `UNetMidBlock2D` without time embedding: resnet, attention (one head, residual), resnet.
final class VAEMidBlock {
    let resnets: [ResnetBlock2D]
    let attention: Attention?

    init(_ p: ParameterPath, channels: Int, groups: Int, act: Activation, addAttention: Bool) {
        resnets = (0..<2).map {
            ResnetBlock2D(p / "resnets" / $0, inChannels: channels, outChannels: channels, tembChannels: nil,
                          groups: groups, eps: 1e-6, act: act)
        }
        attention = addAttention
            ? Attention(p / "attentions" / 0, queryDim: channels, heads: 1, dimHead: channels, bias: true,
                        normGroups: groups, eps: 1e-6, residualConnection: true)
            : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = resnets[0](x, nil)
        if let attention { h = attention(h) }
        return resnets[1](h, nil)
    }
}

final class VAEEncoder {
    let convIn: Conv2d
    let blocks: [(resnets: [ResnetBlock2D], down: Downsample2D?)]
    let mid: VAEMidBlock
    let convNormOut: GroupNorm
    let convOut: Conv2d
    let act: Activation

    init(_ p: ParameterPath, _ c: AutoencoderKLConfig) {
        let ch = c.blockOutChannels
        convIn = Conv2d(p / "conv_in", c.inChannels, ch[0], kernelSize: 3, padding: 1)
        var blocks: [([ResnetBlock2D], Downsample2D?)] = []
        var output = ch[0]
        for i in 0..<ch.count {
            let input = output
            output = ch[i]
            let b = p / "down_blocks" / i
            let resnets = (0..<c.layersPerBlock).map {
                ResnetBlock2D(b / "resnets" / $0, inChannels: $0 == 0 ? input : output, outChannels: output,
                              tembChannels: nil, groups: c.normNumGroups, eps: 1e-6, act: c.actFn)
            }
            let down = i < ch.count - 1 ? Downsample2D(b / "downsamplers" / 0, channels: output, padding: 0) : nil
            blocks.append((resnets, down))
        }
        self.blocks = blocks
        mid = VAEMidBlock(p / "mid_block", channels: ch[ch.count - 1], groups: c.normNumGroups, act: c.actFn,
                          addAttention: c.midBlockAddAttention)
        convNormOut = GroupNorm(p / "conv_norm_out", groups: c.normNumGroups, channels: ch[ch.count - 1], eps: 1e-6)
        convOut = Conv2d(p / "conv_out", ch[ch.count - 1], 2 * c.latentChannels, kernelSize: 3, padding: 1)
        act = c.actFn
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convIn(x)
        for block in blocks {
            for r in block.resnets { h = r(h, nil) }
            if let down = block.down { h = down(h) }
        }
        h = mid(h)
        return convOut(act(convNormOut(h)))
    }
}

final class VAEDecoder {
    let convIn: Conv2d
    let mid: VAEMidBlock
    let blocks: [(resnets: [ResnetBlock2D], up: Upsample2D?)]
    let convNormOut: GroupNorm
    let convOut: Conv2d
    let act: Activation

    init(_ p: ParameterPath, _ c: AutoencoderKLConfig) {
        let reversed = Array(c.blockOutChannels.reversed())
        convIn = Conv2d(p / "conv_in", c.latentChannels, reversed[0], kernelSize: 3, padding: 1)
        mid = VAEMidBlock(p / "mid_block", channels: reversed[0], groups: c.normNumGroups, act: c.actFn,
                          addAttention: c.midBlockAddAttention)
        var blocks: [([ResnetBlock2D], Upsample2D?)] = []
        var output = reversed[0]
        for i in 0..<reversed.count {
            let prev = output
            output = reversed[i]
            let b = p / "up_blocks" / i
            let resnets = (0..<(c.layersPerBlock + 1)).map {
                ResnetBlock2D(b / "resnets" / $0, inChannels: $0 == 0 ? prev : output, outChannels: output,
                              tembChannels: nil, groups: c.normNumGroups, eps: 1e-6, act: c.actFn)
            }
            let up = i < reversed.count - 1 ? Upsample2D(b / "upsamplers" / 0, channels: output) : nil
            blocks.append((resnets, up))
        }
        self.blocks = blocks
        convNormOut = GroupNorm(p / "conv_norm_out", groups: c.normNumGroups, channels: c.blockOutChannels[0], eps: 1e-6)
        convOut = Conv2d(p / "conv_out", c.blockOutChannels[0], c.outChannels, kernelSize: 3, padding: 1)
        act = c.actFn
    }

    func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid(convIn(z))
        for block in blocks {
            for r in block.resnets { h = r(h, nil) }
            if let up = block.up { h = up(h) }
        }
        return convOut(act(convNormOut(h)))
    }
}

/// The latent posterior `N(mean, exp(logvar))` that the encoder outputs.
public struct DiagonalGaussian {
    public let mean: Tensor
    public let logvar: Tensor

    init(_ moments: Tensor) {
        let parts = moments.chunk(2, dim: 1)
        mean = parts[0]
        logvar = parts[1].clamp(min: -30, max: 20)
    }

    public var std: Tensor { (logvar * 0.5).exp() }

    /// A draw `mean + std · ε` with `ε` from `generator` (as diffusers with a CPU generator).
    public func sample(generator: Generator) -> Tensor {
        mean + std * Tensor.randn(mean.shape, dtype: mean.dtype, device: mean.device, generator: generator)
    }
}

/// The variational autoencoder of Stable Diffusion: images in [-1, 1] ↔ latents.
public final class AutoencoderKL {
    public let config: AutoencoderKLConfig
    let encoder: VAEEncoder
    let decoder: VAEDecoder
    let quantConv: Conv2d?
    let postQuantConv: Conv2d?

    public init(config: AutoencoderKLConfig, path p: ParameterPath) throws {
        try config.validate()
        self.config = config
        encoder = VAEEncoder(p / "encoder", config)
        decoder = VAEDecoder(p / "decoder", config)
        let l = config.latentChannels
        quantConv = config.useQuantConv ? Conv2d(p / "quant_conv", 2 * l, 2 * l, kernelSize: 1) : nil
        postQuantConv = config.usePostQuantConv ? Conv2d(p / "post_quant_conv", l, l, kernelSize: 1) : nil
    }

    /// Encodes images `[B, 3, H, W]` in [-1, 1] to the latent posterior (unscaled latents).
    public func encode(_ images: Tensor) -> DiagonalGaussian {
        var h = encoder(images)
        if let quantConv { h = quantConv(h) }
        return DiagonalGaussian(h)
    }

    /// Decodes unscaled latents to images in (roughly) [-1, 1].
    public func decode(_ latents: Tensor) -> Tensor {
        decoder(postQuantConv.map { $0(latents) } ?? latents)
    }

    /// Latents as the UNet sees them: `(z − shift) · scaling_factor`.
    public func scale(_ latents: Tensor) -> Tensor {
        (latents - (config.shiftFactor ?? 0)) * config.scalingFactor
    }

    /// Inverse of ``scale(_:)``.
    public func unscale(_ latents: Tensor) -> Tensor {
        latents / config.scalingFactor + (config.shiftFactor ?? 0)
    }

    /// Decodes UNet-space latents to an image tensor in [0, 1] (as the pipelines' post-processing).
    public func decodeToImage(_ latents: Tensor) -> Tensor {
        (decode(unscale(latents)) / 2 + 0.5).clamp(min: 0, max: 1)
    }
}
