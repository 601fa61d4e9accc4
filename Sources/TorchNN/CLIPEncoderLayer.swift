import Torch

/// A CLIP transformer layer (text and vision towers) with transformers' names: `layer_norm1`,
/// `self_attn.{q,k,v,out}_proj`, `layer_norm2`, `mlp.fc1`, `mlp.fc2`; pre-norm residual blocks.
public final class CLIPEncoderLayer {
    let layerNorm1: LayerNorm
    let qProj: Linear
    let kProj: Linear
    let vProj: Linear
    let outProj: Linear
    let layerNorm2: LayerNorm
    let fc1: Linear
    let fc2: Linear
    let heads: Int
    let act: Activation

    public init(_ p: ParameterPath, hidden d: Int, intermediate: Int, heads: Int, eps: Double, act: Activation) {
        layerNorm1 = LayerNorm(p / "layer_norm1", d, eps: eps)
        let a = p / "self_attn"
        qProj = Linear(a / "q_proj", d, d)
        kProj = Linear(a / "k_proj", d, d)
        vProj = Linear(a / "v_proj", d, d)
        outProj = Linear(a / "out_proj", d, d)
        layerNorm2 = LayerNorm(p / "layer_norm2", d, eps: eps)
        fc1 = Linear(p / "mlp" / "fc1", d, intermediate)
        fc2 = Linear(p / "mlp" / "fc2", intermediate, d)
        self.heads = heads
        self.act = act
    }

    /// `mask` (optional) broadcasts to `[B, heads, L, L]`; true attends.
    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        let h = layerNorm1(x)
        let attn = multiHeadAttention(query: qProj(h), key: kProj(h), value: vProj(h), heads: heads, mask: mask)
        let y = x + outProj(attn)
        return y + fc2(act(fc1(layerNorm2(y))))
    }
}

