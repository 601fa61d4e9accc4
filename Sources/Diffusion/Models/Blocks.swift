// Building blocks shared by UNet2DConditionModel and AutoencoderKL.
// Mirrors diffusers' resnet.py, attention_processor.py (Attention + AttnProcessor2_0),
// attention.py (BasicTransformerBlock, FeedForward, GEGLU), transformer_2d.py, embeddings.py,
// downsampling.py and upsampling.py (diffusers 0.42.1).
import Foundation
import Torch
import TorchNN

/// diffusers `ResnetBlock2D` (time-scale-shift "default").
final class ResnetBlock2D {
    let norm1: GroupNorm
    let conv1: Conv2d
    let timeEmbProj: Linear?
    let norm2: GroupNorm
    let conv2: Conv2d
    let convShortcut: Conv2d?
    let act: Activation
    let outputScaleFactor: Double

    init(_ p: ParameterPath, inChannels: Int, outChannels: Int, tembChannels: Int?, groups: Int, eps: Double,
         act: Activation = .silu, outputScaleFactor: Double = 1) {
        norm1 = GroupNorm(p / "norm1", groups: groups, channels: inChannels, eps: eps)
        conv1 = Conv2d(p / "conv1", inChannels, outChannels, kernelSize: 3, padding: 1)
        timeEmbProj = tembChannels.map { Linear(p / "time_emb_proj", $0, outChannels) }
        norm2 = GroupNorm(p / "norm2", groups: groups, channels: outChannels, eps: eps)
        conv2 = Conv2d(p / "conv2", outChannels, outChannels, kernelSize: 3, padding: 1)
        convShortcut = inChannels != outChannels ? Conv2d(p / "conv_shortcut", inChannels, outChannels, kernelSize: 1) : nil
        self.act = act
        self.outputScaleFactor = outputScaleFactor
    }

    func callAsFunction(_ x: Tensor, _ temb: Tensor?) -> Tensor {
        var h = conv1(act(norm1(x)))
        if let proj = timeEmbProj, let temb {
            h = h + proj(act(temb)).unsqueeze(-1).unsqueeze(-1)
        }
        h = conv2(act(norm2(h)))
        let shortcut = convShortcut.map { $0(x) } ?? x
        let out = shortcut + h
        return outputScaleFactor == 1 ? out : out / outputScaleFactor
    }
}

/// diffusers `Attention` with `AttnProcessor2_0`: `to_q`, `to_k`, `to_v`, `to_out.0`, an optional
/// `group_norm` over spatial input, and an optional residual connection.
final class Attention {
    let toQ: Linear
    let toK: Linear
    let toV: Linear
    let toOut: Linear
    let groupNorm: GroupNorm?
    let heads: Int
    let residualConnection: Bool
    let rescaleOutputFactor: Double

    init(_ p: ParameterPath, queryDim: Int, crossAttentionDim: Int? = nil, heads: Int, dimHead: Int, bias: Bool,
         outBias: Bool = true, normGroups: Int? = nil, eps: Double = 1e-5, residualConnection: Bool = false,
         rescaleOutputFactor: Double = 1) {
        let inner = heads * dimHead
        let context = crossAttentionDim ?? queryDim
        groupNorm = normGroups.map { GroupNorm(p / "group_norm", groups: $0, channels: queryDim, eps: eps) }
        toQ = Linear(p / "to_q", queryDim, inner, bias: bias)
        toK = Linear(p / "to_k", context, inner, bias: bias)
        toV = Linear(p / "to_v", context, inner, bias: bias)
        toOut = Linear(p / "to_out" / 0, inner, queryDim, bias: outBias)
        self.heads = heads
        self.residualConnection = residualConnection
        self.rescaleOutputFactor = rescaleOutputFactor
    }

    /// `x` is `[B, L, C]` or `[B, C, H, W]` (spatial input is flattened and restored).
    func callAsFunction(_ x: Tensor, context: Tensor? = nil) -> Tensor {
        let residual = x
        let spatial = x.rank == 4
        let shape = x.shape
        var h = spatial ? x.reshape([shape[0], shape[1], shape[2] * shape[3]]).transpose(1, 2) : x
        if let groupNorm { h = groupNorm(h.transpose(1, 2)).transpose(1, 2) }
        let c = context ?? h
        var out = multiHeadAttention(query: toQ(h), key: toK(c), value: toV(c), heads: heads)
        out = toOut(out)
        if spatial { out = out.transpose(1, 2).reshape(shape) }
        if residualConnection { out = out + residual }
        return rescaleOutputFactor == 1 ? out : out / rescaleOutputFactor
    }
}

/// diffusers `FeedForward` with the GEGLU activation: `net.0.proj` (to 2×inner), `net.2`.
final class FeedForward {
    let proj: Linear
    let out: Linear

    init(_ p: ParameterPath, dim: Int, mult: Int = 4) {
        let inner = dim * mult
        proj = Linear(p / "net" / 0 / "proj", dim, inner * 2)
        out = Linear(p / "net" / 2, inner, dim)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let parts = proj(x).chunk(2, dim: -1)
        return out(parts[0] * parts[1].gelu())
    }
}

/// diffusers `BasicTransformerBlock` (layer norms, self-attention, cross-attention, GEGLU MLP).
final class BasicTransformerBlock {
    let norm1: LayerNorm
    let attn1: Attention
    let norm2: LayerNorm
    let attn2: Attention
    let norm3: LayerNorm
    let ff: FeedForward

    init(_ p: ParameterPath, dim: Int, heads: Int, dimHead: Int, crossAttentionDim: Int) {
        norm1 = LayerNorm(p / "norm1", dim)
        attn1 = Attention(p / "attn1", queryDim: dim, heads: heads, dimHead: dimHead, bias: false)
        norm2 = LayerNorm(p / "norm2", dim)
        attn2 = Attention(p / "attn2", queryDim: dim, crossAttentionDim: crossAttentionDim, heads: heads,
                          dimHead: dimHead, bias: false)
        norm3 = LayerNorm(p / "norm3", dim)
        ff = FeedForward(p / "ff", dim: dim)
    }

    func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        var h = x + attn1(norm1(x))
        h = h + attn2(norm2(h), context: context)
        return h + ff(norm3(h))
    }
}

/// diffusers `Transformer2DModel` for continuous input: group norm, `proj_in` (1×1 conv, or linear
/// with `use_linear_projection`), transformer blocks, `proj_out`, residual.
final class Transformer2D {
    let norm: GroupNorm
    let projInConv: Conv2d?
    let projInLinear: Linear?
    let blocks: [BasicTransformerBlock]
    let projOutConv: Conv2d?
    let projOutLinear: Linear?

    init(_ p: ParameterPath, channels: Int, heads: Int, layers: Int, crossAttentionDim: Int, groups: Int,
         linearProjection: Bool) {
        let dimHead = channels / heads
        let inner = heads * dimHead
        norm = GroupNorm(p / "norm", groups: groups, channels: channels, eps: 1e-6)
        if linearProjection {
            projInLinear = Linear(p / "proj_in", channels, inner)
            projInConv = nil
        } else {
            projInConv = Conv2d(p / "proj_in", channels, inner, kernelSize: 1)
            projInLinear = nil
        }
        blocks = (0..<layers).map {
            BasicTransformerBlock(p / "transformer_blocks" / $0, dim: inner, heads: heads, dimHead: dimHead,
                                  crossAttentionDim: crossAttentionDim)
        }
        if linearProjection {
            projOutLinear = Linear(p / "proj_out", inner, channels)
            projOutConv = nil
        } else {
            projOutConv = Conv2d(p / "proj_out", inner, channels, kernelSize: 1)
            projOutLinear = nil
        }
    }

    func callAsFunction(_ x: Tensor, context: Tensor) -> Tensor {
        let shape = x.shape
        let (b, hgt, wid) = (shape[0], shape[2], shape[3])
        var h = norm(x)
        if let projInConv { h = projInConv(h) }
        let inner = h.size(1)
        h = h.permute(0, 2, 3, 1).reshape([b, hgt * wid, inner])
        if let projInLinear { h = projInLinear(h) }
        for block in blocks { h = block(h, context: context) }
        if let projOutLinear { h = projOutLinear(h) }
        h = h.reshape([b, hgt, wid, h.size(-1)]).permute(0, 3, 1, 2).contiguous()
        if let projOutConv { h = projOutConv(h) }
        return h + x
    }
}

/// diffusers `Downsample2D` with a convolution (`downsamplers.0.conv`); padding 0 means the
/// asymmetric (0, 1, 0, 1) pad that the VAE encoder uses.
final class Downsample2D {
    let conv: Conv2d
    let padding: Int

    init(_ p: ParameterPath, channels: Int, padding: Int) {
        conv = Conv2d(p / "conv", channels, channels, kernelSize: 3, stride: 2, padding: padding)
        self.padding = padding
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        padding == 0 ? conv(x.pad([0, 1, 0, 1])) : conv(x)
    }
}

/// diffusers `Upsample2D` with a convolution: nearest ×2 (or to `size`), then 3×3 conv.
final class Upsample2D {
    let conv: Conv2d

    init(_ p: ParameterPath, channels: Int) {
        conv = Conv2d(p / "conv", channels, channels, kernelSize: 3, padding: 1)
    }

    func callAsFunction(_ x: Tensor, size: (Int, Int)? = nil) -> Tensor {
        let up = size.map { x.interpolate(size: $0) } ?? x.interpolate(scale: 2)
        return conv(up)
    }
}

/// diffusers `get_timestep_embedding`: sinusoidal features of (fractional) timesteps, float32.
func timestepEmbedding(_ timesteps: Tensor, dim: Int, flipSinToCos: Bool, downscaleFreqShift: Double,
                       scale: Double = 1, maxPeriod: Double = 10000) -> Tensor {
    let half = dim / 2
    let exponent = Tensor.arange(0, Double(half), dtype: .float32, device: timesteps.device)
        * (-Foundation.log(maxPeriod)) / (Double(half) - downscaleFreqShift)
    var emb = timesteps.to(.float32).unsqueeze(1) * exponent.exp().unsqueeze(0)
    emb = emb * scale
    emb = flipSinToCos ? Tensor.cat([emb.cos(), emb.sin()], dim: -1) : Tensor.cat([emb.sin(), emb.cos()], dim: -1)
    if dim % 2 == 1 { emb = emb.pad([0, 1]) }
    return emb
}

/// diffusers `TimestepEmbedding`: `linear_1`, activation, `linear_2`.
final class TimestepEmbedding {
    let linear1: Linear
    let linear2: Linear
    let act: Activation

    init(_ p: ParameterPath, inChannels: Int, embedDim: Int, act: Activation) {
        linear1 = Linear(p / "linear_1", inChannels, embedDim)
        linear2 = Linear(p / "linear_2", embedDim, embedDim)
        self.act = act
    }

    func callAsFunction(_ x: Tensor) -> Tensor { linear2(act(linear1(x))) }
}
