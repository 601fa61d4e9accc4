// Mirrors diffusers UNet2DConditionModel (diffusers 0.42.1): SD1.x, SD2.x and SDXL configurations.
import Foundation
import Torch
import TorchNN

/// `unet/config.json`, with the field names diffusers writes.
public struct UNet2DConditionConfig: Codable, Sendable {
    public var sampleSize: OneOrMany<Int>? = nil
    public var inChannels = 4
    public var outChannels = 4
    public var centerInputSample = false
    public var flipSinToCos = true
    public var freqShift = 0
    public var downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                 "DownBlock2D"]
    public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    public var upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    public var onlyCrossAttention: OneOrMany<Bool> = .one(false)
    public var blockOutChannels = [320, 640, 1280, 1280]
    public var layersPerBlock: OneOrMany<Int> = .one(2)
    public var downsamplePadding = 1
    public var midBlockScaleFactor = 1.0
    public var actFn: Activation = .silu
    public var normNumGroups: Int? = 32
    public var normEps = 1e-5
    public var crossAttentionDim: OneOrMany<Int> = .one(1280)
    public var transformerLayersPerBlock: OneOrMany<Int> = .one(1)
    public var attentionHeadDim: OneOrMany<Int> = .one(8)
    public var numAttentionHeads: OneOrMany<Int>? = nil
    public var useLinearProjection = false
    public var classEmbedType: String? = nil
    public var additionEmbedType: String? = nil
    public var additionTimeEmbedDim: Int? = nil
    public var projectionClassEmbeddingsInputDim: Int? = nil
    public var upcastAttention = false
    public var resnetTimeScaleShift = "default"
    public var timeEmbeddingType = "positional"
    public var convInKernel = 3
    public var convOutKernel = 3
    public var encoderHidDim: Int? = nil
    public var timeCondProjDim: Int? = nil
    public var dualCrossAttention = false
    public var timestepPostAct: String? = nil
    public var attentionType = "default"
    public var crossAttentionNorm: String? = nil
    public var reverseTransformerLayersPerBlock: [[Int]]? = nil

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size", inChannels = "in_channels", outChannels = "out_channels"
        case centerInputSample = "center_input_sample", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downBlockTypes = "down_block_types", midBlockType = "mid_block_type", upBlockTypes = "up_block_types"
        case onlyCrossAttention = "only_cross_attention", blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block", downsamplePadding = "downsample_padding"
        case midBlockScaleFactor = "mid_block_scale_factor", actFn = "act_fn", normNumGroups = "norm_num_groups"
        case normEps = "norm_eps", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block", attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads", useLinearProjection = "use_linear_projection"
        case classEmbedType = "class_embed_type", additionEmbedType = "addition_embed_type"
        case additionTimeEmbedDim = "addition_time_embed_dim"
        case projectionClassEmbeddingsInputDim = "projection_class_embeddings_input_dim"
        case upcastAttention = "upcast_attention", resnetTimeScaleShift = "resnet_time_scale_shift"
        case timeEmbeddingType = "time_embedding_type", convInKernel = "conv_in_kernel"
        case convOutKernel = "conv_out_kernel", encoderHidDim = "encoder_hid_dim"
        case timeCondProjDim = "time_cond_proj_dim", dualCrossAttention = "dual_cross_attention"
        case timestepPostAct = "timestep_post_act", attentionType = "attention_type"
        case crossAttentionNorm = "cross_attention_norm"
        case reverseTransformerLayersPerBlock = "reverse_transformer_layers_per_block"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = UNet2DConditionConfig()
        sampleSize = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .sampleSize) ?? d.sampleSize
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        centerInputSample = try c.decodeIfPresent(Bool.self, forKey: .centerInputSample) ?? d.centerInputSample
        flipSinToCos = try c.decodeIfPresent(Bool.self, forKey: .flipSinToCos) ?? d.flipSinToCos
        freqShift = try c.decodeIfPresent(Int.self, forKey: .freqShift) ?? d.freqShift
        downBlockTypes = try c.decodeIfPresent([String].self, forKey: .downBlockTypes) ?? d.downBlockTypes
        midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? d.midBlockType
        upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes) ?? d.upBlockTypes
        onlyCrossAttention = try c.decodeIfPresent(OneOrMany<Bool>.self, forKey: .onlyCrossAttention)
            ?? d.onlyCrossAttention
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? d.blockOutChannels
        layersPerBlock = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .layersPerBlock) ?? d.layersPerBlock
        downsamplePadding = try c.decodeIfPresent(Int.self, forKey: .downsamplePadding) ?? d.downsamplePadding
        midBlockScaleFactor = try c.decodeIfPresent(Double.self, forKey: .midBlockScaleFactor)
            ?? d.midBlockScaleFactor
        actFn = try c.decodeIfPresent(Activation.self, forKey: .actFn) ?? d.actFn
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? d.normNumGroups
        normEps = try c.decodeIfPresent(Double.self, forKey: .normEps) ?? d.normEps
        crossAttentionDim = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .crossAttentionDim)
            ?? d.crossAttentionDim
        transformerLayersPerBlock = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .transformerLayersPerBlock)
            ?? d.transformerLayersPerBlock
        attentionHeadDim = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .attentionHeadDim)
            ?? d.attentionHeadDim
        numAttentionHeads = try c.decodeIfPresent(OneOrMany<Int>.self, forKey: .numAttentionHeads)
        useLinearProjection = try c.decodeIfPresent(Bool.self, forKey: .useLinearProjection) ?? d.useLinearProjection
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        additionTimeEmbedDim = try c.decodeIfPresent(Int.self, forKey: .additionTimeEmbedDim)
        projectionClassEmbeddingsInputDim = try c.decodeIfPresent(Int.self, forKey: .projectionClassEmbeddingsInputDim)
        upcastAttention = try c.decodeIfPresent(Bool.self, forKey: .upcastAttention) ?? d.upcastAttention
        resnetTimeScaleShift = try c.decodeIfPresent(String.self, forKey: .resnetTimeScaleShift)
            ?? d.resnetTimeScaleShift
        timeEmbeddingType = try c.decodeIfPresent(String.self, forKey: .timeEmbeddingType) ?? d.timeEmbeddingType
        convInKernel = try c.decodeIfPresent(Int.self, forKey: .convInKernel) ?? d.convInKernel
        convOutKernel = try c.decodeIfPresent(Int.self, forKey: .convOutKernel) ?? d.convOutKernel
        encoderHidDim = try c.decodeIfPresent(Int.self, forKey: .encoderHidDim)
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        dualCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .dualCrossAttention) ?? d.dualCrossAttention
        timestepPostAct = try c.decodeIfPresent(String.self, forKey: .timestepPostAct)
        attentionType = try c.decodeIfPresent(String.self, forKey: .attentionType) ?? d.attentionType
        crossAttentionNorm = try c.decodeIfPresent(String.self, forKey: .crossAttentionNorm)
        reverseTransformerLayersPerBlock = try c.decodeIfPresent([[Int]].self, forKey: .reverseTransformerLayersPerBlock)
    }

    /// Heads per down block (diffusers reads `attention_head_dim` when `num_attention_heads` is absent).
    public var headsPerBlock: [Int] { (numAttentionHeads ?? attentionHeadDim).perBlock(blockOutChannels.count) }

    /// Rejects configurations this implementation does not cover, naming the field and value.
    public func validate(file: String = "unet/config.json") throws {
        func unsupported(_ field: String, _ value: Any) -> ModelError {
            .unsupported(file: file, field: field, value: "\(value)")
        }
        let n = blockOutChannels.count
        guard n > 0 else { throw ModelError.badConfig(file: file, message: "`block_out_channels` is empty") }
        // Ranges first: everything below divides by, loops over or allocates from these numbers.
        let range = ConfigRange(file: file)
        try range.count("block_out_channels.count", n, 1...16)
        try range.counts("block_out_channels", blockOutChannels, 1...ConfigRange.maxWidth)
        try range.count("in_channels", inChannels, 1...ConfigRange.maxWidth)
        try range.count("out_channels", outChannels, 1...ConfigRange.maxWidth)
        try range.counts("sample_size", sampleSize?.all ?? [], 1...4096)
        try range.count("freq_shift", freqShift, -ConfigRange.maxWidth...ConfigRange.maxWidth)
        try range.count("downsample_padding", downsamplePadding, 0...16)
        try range.count("conv_in_kernel", convInKernel, 1...31)
        try range.count("conv_out_kernel", convOutKernel, 1...31)
        try range.counts("layers_per_block", layersPerBlock.all, 1...ConfigRange.maxLayers)
        try range.counts("transformer_layers_per_block", transformerLayersPerBlock.all, 1...ConfigRange.maxLayers)
        try range.counts("attention_head_dim", attentionHeadDim.all, 1...ConfigRange.maxWidth)
        try range.counts("num_attention_heads", numAttentionHeads?.all ?? [], 1...ConfigRange.maxWidth)
        try range.counts("cross_attention_dim", crossAttentionDim.all, 1...ConfigRange.maxWidth)
        try range.count("norm_num_groups", normNumGroups ?? 1, 1...ConfigRange.maxWidth)
        try range.real("norm_eps", normEps, above: 0, below: 1)
        try range.real("mid_block_scale_factor", midBlockScaleFactor, above: 0, atMost: 1e6)
        if let d = additionTimeEmbedDim { try range.count("addition_time_embed_dim", d, 1...ConfigRange.maxWidth) }
        if let d = projectionClassEmbeddingsInputDim {
            try range.count("projection_class_embeddings_input_dim", d, 1...(ConfigRange.maxWidth * 16))
        }
        guard downBlockTypes.count == n, upBlockTypes.count == n else {
            throw ModelError.badConfig(file: file,
                message: "\(downBlockTypes.count) down and \(upBlockTypes.count) up blocks for \(n) `block_out_channels`")
        }
        for t in downBlockTypes where !["CrossAttnDownBlock2D", "DownBlock2D"].contains(t) {
            throw unsupported("down_block_types", t)
        }
        for t in upBlockTypes where !["CrossAttnUpBlock2D", "UpBlock2D"].contains(t) {
            throw unsupported("up_block_types", t)
        }
        if let m = midBlockType, m != "UNetMidBlock2DCrossAttn" { throw unsupported("mid_block_type", m) }
        if midBlockType == nil { throw unsupported("mid_block_type", "null") }
        if onlyCrossAttention.perBlock(n).contains(true) { throw unsupported("only_cross_attention", true) }
        if classEmbedType != nil { throw unsupported("class_embed_type", classEmbedType!) }
        if let a = additionEmbedType, a != "text_time" { throw unsupported("addition_embed_type", a) }
        if additionEmbedType == "text_time" && (additionTimeEmbedDim == nil || projectionClassEmbeddingsInputDim == nil) {
            throw ModelError.badConfig(file: file, message:
                "`addition_embed_type` text_time needs `addition_time_embed_dim` and `projection_class_embeddings_input_dim`")
        }
        if resnetTimeScaleShift != "default" { throw unsupported("resnet_time_scale_shift", resnetTimeScaleShift) }
        if timeEmbeddingType != "positional" { throw unsupported("time_embedding_type", timeEmbeddingType) }
        if encoderHidDim != nil { throw unsupported("encoder_hid_dim", encoderHidDim!) }
        if timeCondProjDim != nil { throw unsupported("time_cond_proj_dim", timeCondProjDim!) }
        if dualCrossAttention { throw unsupported("dual_cross_attention", true) }
        if timestepPostAct != nil { throw unsupported("timestep_post_act", timestepPostAct!) }
        if attentionType != "default" { throw unsupported("attention_type", attentionType) }
        if crossAttentionNorm != nil { throw unsupported("cross_attention_norm", crossAttentionNorm!) }
        if reverseTransformerLayersPerBlock != nil { throw unsupported("reverse_transformer_layers_per_block", "set") }
        if convInKernel % 2 == 0 { throw unsupported("conv_in_kernel", convInKernel) }
        if convOutKernel % 2 == 0 { throw unsupported("conv_out_kernel", convOutKernel) }
        guard let groups = normNumGroups else { throw unsupported("norm_num_groups", "null") }
        for (name, list) in [("attention_head_dim", attentionHeadDim.perBlock(n)),
                             ("layers_per_block", layersPerBlock.perBlock(n)),
                             ("cross_attention_dim", crossAttentionDim.perBlock(n)),
                             ("transformer_layers_per_block", transformerLayersPerBlock.perBlock(n))] {
            guard list.count == n else {
                throw ModelError.badConfig(file: file, message: "`\(name)` has \(list.count) entries for \(n) blocks")
            }
            guard list.allSatisfy({ $0 > 0 }) else {
                throw ModelError.badConfig(file: file, message: "`\(name)` must be positive")
            }
        }
        for (i, c) in blockOutChannels.enumerated() {
            guard headsPerBlock.count == n, headsPerBlock[i] > 0 else {
                throw ModelError.badConfig(file: file, message: "`num_attention_heads` has \(headsPerBlock.count) entries for \(n) blocks")
            }
            guard c % groups == 0 else {
                throw ModelError.badConfig(file: file,
                    message: "block_out_channels[\(i)] = \(c) is not divisible by norm_num_groups \(groups)")
            }
            guard c % headsPerBlock[i] == 0 else {
                throw ModelError.badConfig(file: file,
                    message: "block_out_channels[\(i)] = \(c) is not divisible by \(headsPerBlock[i]) heads")
            }
        }
    }
}

/// Extra SDXL conditioning (`added_cond_kwargs`): pooled text embeddings and the six time ids.
public struct AddedConditioning {
    public var textEmbeds: Tensor
    public var timeIds: Tensor

    public init(textEmbeds: Tensor, timeIds: Tensor) {
        self.textEmbeds = textEmbeds
        self.timeIds = timeIds
    }
}

final class UNetDownBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2D]
    let downsampler: Downsample2D?

    init(_ p: ParameterPath, crossAttention: Bool, layers: Int, inChannels: Int, outChannels: Int, temb: Int,
         groups: Int, eps: Double, act: Activation, heads: Int, transformerLayers: Int, crossAttentionDim: Int,
         linearProjection: Bool, addDownsample: Bool, downsamplePadding: Int) {
        resnets = (0..<layers).map {
            ResnetBlock2D(p / "resnets" / $0, inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                          tembChannels: temb, groups: groups, eps: eps, act: act)
        }
        attentions = crossAttention ? (0..<layers).map {
            Transformer2D(p / "attentions" / $0, channels: outChannels, heads: heads, layers: transformerLayers,
                          crossAttentionDim: crossAttentionDim, groups: groups, linearProjection: linearProjection)
        } : []
        downsampler = addDownsample
            ? Downsample2D(p / "downsamplers" / 0, channels: outChannels, padding: downsamplePadding) : nil
    }

    func callAsFunction(_ x: Tensor, temb: Tensor, context: Tensor, skips: inout [Tensor]) -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            h = resnet(h, temb)
            if !attentions.isEmpty { h = attentions[i](h, context: context) }
            skips.append(h)
        }
        if let downsampler {
            h = downsampler(h)
            skips.append(h)
        }
        return h
    }
}

final class UNetUpBlock {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2D]
    let upsampler: Upsample2D?

    init(_ p: ParameterPath, crossAttention: Bool, layers: Int, inChannels: Int, prevOutputChannels: Int,
         outChannels: Int, temb: Int, groups: Int, eps: Double, act: Activation, heads: Int, transformerLayers: Int,
         crossAttentionDim: Int, linearProjection: Bool, addUpsample: Bool) {
        resnets = (0..<layers).map { j in
            let skip = j == layers - 1 ? inChannels : outChannels
            let input = j == 0 ? prevOutputChannels : outChannels
            return ResnetBlock2D(p / "resnets" / j, inChannels: input + skip, outChannels: outChannels,
                                 tembChannels: temb, groups: groups, eps: eps, act: act)
        }
        attentions = crossAttention ? (0..<layers).map {
            Transformer2D(p / "attentions" / $0, channels: outChannels, heads: heads, layers: transformerLayers,
                          crossAttentionDim: crossAttentionDim, groups: groups, linearProjection: linearProjection)
        } : []
        upsampler = addUpsample ? Upsample2D(p / "upsamplers" / 0, channels: outChannels) : nil
    }

    func callAsFunction(_ x: Tensor, temb: Tensor, context: Tensor, skips: inout [Tensor],
                        upsampleSize: (Int, Int)?) -> Tensor {
        var h = x
        for (i, resnet) in resnets.enumerated() {
            let skip = skips.removeLast()
            h = resnet(Tensor.cat([h, skip], dim: 1), temb)
            if !attentions.isEmpty { h = attentions[i](h, context: context) }
        }
        if let upsampler { h = upsampler(h, size: upsampleSize) }
        return h
    }
}

/// The denoising network of Stable Diffusion: `UNet2DConditionModel` with diffusers' keys.
///
/// ```swift
/// let unet = try UNet2DConditionModel(config: config, store: store.root)
/// let eps = unet(latents, timestep: t, context: textStates)
/// ```
public final class UNet2DConditionModel {
    public let config: UNet2DConditionConfig
    /// The dtype of the weights (and of the latents it expects).
    public let dtype: DType
    let convIn: Conv2d
    let timeEmbedding: TimestepEmbedding
    let addEmbedding: TimestepEmbedding?
    /// The parameters (and any LoRA adapters injected as it was built).
    public let store: ParameterStore
    let downBlocks: [UNetDownBlock]
    let midResnets: [ResnetBlock2D]
    let midAttentions: [Transformer2D]
    let upBlocks: [UNetUpBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    public init(config: UNet2DConditionConfig, path p: ParameterPath) throws {
        try config.validate()
        self.config = config
        store = p.store
        dtype = p.store.dtype
        let n = config.blockOutChannels.count
        let channels = config.blockOutChannels
        let groups = config.normNumGroups ?? 32
        let eps = config.normEps
        let act = config.actFn
        let heads = config.headsPerBlock
        let layers = config.layersPerBlock.perBlock(n)
        let crossDims = config.crossAttentionDim.perBlock(n)
        let tLayers = config.transformerLayersPerBlock.perBlock(n)
        let temb = channels[0] * 4

        convIn = Conv2d(p / "conv_in", config.inChannels, channels[0], kernelSize: config.convInKernel,
                        padding: (config.convInKernel - 1) / 2)
        timeEmbedding = TimestepEmbedding(p / "time_embedding", inChannels: channels[0], embedDim: temb, act: act)
        if config.additionEmbedType == "text_time" {
            addEmbedding = TimestepEmbedding(p / "add_embedding", inChannels: config.projectionClassEmbeddingsInputDim!,
                                             embedDim: temb, act: act)
        } else {
            addEmbedding = nil
        }

        var down: [UNetDownBlock] = []
        var output = channels[0]
        for i in 0..<n {
            let input = output
            output = channels[i]
            down.append(UNetDownBlock(
                p / "down_blocks" / i, crossAttention: config.downBlockTypes[i] == "CrossAttnDownBlock2D",
                layers: layers[i], inChannels: input, outChannels: output, temb: temb, groups: groups, eps: eps,
                act: act, heads: heads[i], transformerLayers: tLayers[i], crossAttentionDim: crossDims[i],
                linearProjection: config.useLinearProjection, addDownsample: i < n - 1,
                downsamplePadding: config.downsamplePadding))
        }
        downBlocks = down

        let mid = p / "mid_block"
        midResnets = (0..<2).map {
            ResnetBlock2D(mid / "resnets" / $0, inChannels: channels[n - 1], outChannels: channels[n - 1],
                          tembChannels: temb, groups: groups, eps: eps, act: act,
                          outputScaleFactor: config.midBlockScaleFactor)
        }
        midAttentions = [Transformer2D(mid / "attentions" / 0, channels: channels[n - 1], heads: heads[n - 1],
                                       layers: tLayers[n - 1], crossAttentionDim: crossDims[n - 1], groups: groups,
                                       linearProjection: config.useLinearProjection)]

        var up: [UNetUpBlock] = []
        let rChannels = Array(channels.reversed())
        let rHeads = Array(heads.reversed())
        let rLayers = Array(layers.reversed())
        let rCross = Array(crossDims.reversed())
        let rTLayers = Array(tLayers.reversed())
        output = rChannels[0]
        for i in 0..<n {
            let prev = output
            output = rChannels[i]
            let input = rChannels[Swift.min(i + 1, n - 1)]
            up.append(UNetUpBlock(
                p / "up_blocks" / i, crossAttention: config.upBlockTypes[i] == "CrossAttnUpBlock2D",
                layers: rLayers[i] + 1, inChannels: input, prevOutputChannels: prev, outChannels: output, temb: temb,
                groups: groups, eps: eps, act: act, heads: rHeads[i], transformerLayers: rTLayers[i],
                crossAttentionDim: rCross[i], linearProjection: config.useLinearProjection, addUpsample: i < n - 1))
        }
        upBlocks = up
        convNormOut = GroupNorm(p / "conv_norm_out", groups: groups, channels: channels[0], eps: eps)
        convOut = Conv2d(p / "conv_out", channels[0], config.outChannels, kernelSize: config.convOutKernel,
                         padding: (config.convOutKernel - 1) / 2)
    }

    /// Predicts the model output (noise or v) for `sample` `[B, C, H, W]` at `timestep` (one value or
    /// one per row) under `context` `[B, L, D]` (the text encoder's hidden states).
    public func callAsFunction(_ sample: Tensor, timestep: Tensor, context: Tensor,
                               added: AddedConditioning? = nil) -> Tensor {
        let batch = sample.size(0)
        var x = config.centerInputSample ? sample * 2 - 1 : sample
        let t = timestep.rank == 0 || timestep.count == 1
            ? timestep.reshape([1]).expand([batch]) : timestep
        let tEmb = timestepEmbedding(t, dim: config.blockOutChannels[0], flipSinToCos: config.flipSinToCos,
                                     downscaleFreqShift: Double(config.freqShift)).to(sample.dtype)
        var emb = timeEmbedding(tEmb)
        if let addEmbedding {
            guard let added else { fatalError("this UNet (addition_embed_type text_time) needs text_embeds and time_ids") }
            let timeEmbeds = timestepEmbedding(added.timeIds.flatten(), dim: config.additionTimeEmbedDim!,
                                               flipSinToCos: config.flipSinToCos,
                                               downscaleFreqShift: Double(config.freqShift))
                .reshape([added.textEmbeds.size(0), -1])
            let addEmbeds = Tensor.cat([added.textEmbeds, timeEmbeds.to(added.textEmbeds.dtype)], dim: -1).to(emb.dtype)
            emb = emb + addEmbedding(addEmbeds)
        }

        x = convIn(x)
        var skips = [x]
        for block in downBlocks { x = block(x, temb: emb, context: context, skips: &skips) }
        x = midResnets[0](x, emb)
        x = midAttentions[0](x, context: context)
        x = midResnets[1](x, emb)
        for (i, block) in upBlocks.enumerated() {
            let count = block.resnets.count
            let isFinal = i == upBlocks.count - 1
            // As diffusers' forward_upsample_size: upsample to the next skip's size when it is not 2×.
            var size: (Int, Int)? = nil
            if !isFinal, skips.count > count {
                let next = skips[skips.count - count - 1]
                size = (next.size(2), next.size(3))
            }
            x = block(x, temb: emb, context: context, skips: &skips, upsampleSize: size)
        }
        return convOut(config.actFn(convNormOut(x)))
    }
}
