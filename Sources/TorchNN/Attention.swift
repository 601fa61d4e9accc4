import Torch

/// Multi-head attention on packed heads.
///
/// `query` is `[B, L, H·D]`, `key` and `value` are `[B, S, Hkv·D]` with `H` a multiple of `Hkv`
/// (grouped-query attention repeats each key/value head `H / Hkv` times). `mask` broadcasts to
/// `[B, H, L, S]` (boolean: true attends; float: added to the scores). Returns `[B, L, H·D]`.
public func multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, heads: Int, kvHeads: Int? = nil,
                               mask: Tensor? = nil, causal: Bool = false, scale: Double? = nil) -> Tensor {
    let kvHeads = kvHeads ?? heads
    let (b, l, width) = (query.size(0), query.size(1), query.size(2))
    precondition(width % heads == 0, "attention: width \(width) is not divisible by \(heads) heads")
    precondition(heads % kvHeads == 0, "attention: \(heads) heads are not a multiple of \(kvHeads) kv heads")
    let d = width / heads
    let s = key.size(1)
    let q = query.reshape([b, l, heads, d]).transpose(1, 2)
    var k = key.reshape([b, s, kvHeads, d]).transpose(1, 2)
    var v = value.reshape([b, s, kvHeads, d]).transpose(1, 2)
    if kvHeads != heads {
        let n = heads / kvHeads
        k = k.unsqueeze(2).expand([b, kvHeads, n, s, d]).reshape([b, heads, s, d])
        v = v.unsqueeze(2).expand([b, kvHeads, n, s, d]).reshape([b, heads, s, d])
    }
    let out = scaledDotProductAttention(query: q, key: k, value: v, mask: mask, causal: causal, scale: scale)
    return out.transpose(1, 2).reshape([b, l, heads * d])
}
