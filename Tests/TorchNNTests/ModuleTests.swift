import Foundation
import Testing
import Torch
import TorchNN

/// A two-layer block whose keys mirror a diffusers resnet.
final class TinyBlock {
    let norm1: GroupNorm
    let conv1: Conv2d
    let timeEmbProj: Linear

    init(_ p: ParameterPath) {
        norm1 = GroupNorm(p / "norm1", groups: 2, channels: 4)
        conv1 = Conv2d(p / "conv1", 4, 4, kernelSize: 3, padding: 1)
        timeEmbProj = Linear(p / "time_emb_proj", 8, 4)
    }
}

@Suite struct ParameterStoreTests {
    @Test func keysFollowTheModulePath() throws {
        let store = try ParameterStore(seed: 0)
        _ = TinyBlock(store.root / "down_blocks" / 0 / "resnets" / 1)
        #expect(store.parameters.map(\.name) == [
            "down_blocks.0.resnets.1.norm1.weight", "down_blocks.0.resnets.1.norm1.bias",
            "down_blocks.0.resnets.1.conv1.weight", "down_blocks.0.resnets.1.conv1.bias",
            "down_blocks.0.resnets.1.time_emb_proj.weight", "down_blocks.0.resnets.1.time_emb_proj.bias",
        ])
        #expect(store["down_blocks.0.resnets.1.conv1.weight"]!.tensor.shape == [4, 4, 3, 3])
        #expect(store.scalarCount == 4 + 4 + 144 + 4 + 32 + 4)
    }

    @Test func sameSeedSameInitialWeights() throws {
        let a = try ParameterStore(seed: 5)
        let b = try ParameterStore(seed: 5)
        let c = try ParameterStore(seed: 6)
        let la = Linear(a.root / "l", 16, 8)
        let lb = Linear(b.root / "l", 16, 8)
        let lc = Linear(c.root / "l", 16, 8)
        #expect(la.weight.equal(lb.weight) && !la.weight.equal(lc.weight))
        // Kaiming-uniform bound 1/√16.
        #expect(la.weight.abs().max().item() <= 0.25)
    }

    @Test func strictLoadRoundTripAndErrors() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try ParameterStore(seed: 1)
        let block = TinyBlock(source.root)
        let path = folder + "/block.safetensors"
        try source.save(to: path)

        let target = try ParameterStore(seed: 2)
        let copy = TinyBlock(target.root)
        #expect(!copy.conv1.weight.equal(block.conv1.weight))
        let report = try target.load(from: SafeTensorsFile(path: path))
        #expect(report.isClean && report.loaded == 6)
        #expect(copy.conv1.weight.equal(block.conv1.weight))
        let x = Tensor.randn([1, 4, 5, 5], generator: try Generator(seed: 0))
        #expect(copy.conv1(copy.norm1(x)).equal(block.conv1(block.norm1(x))))

        // Missing, unused and mis-shaped keys: each an error naming the key and the file.
        var tensors = source.state()
        tensors.removeValue(forKey: "conv1.bias")
        tensors["conv1.extra"] = Tensor.zeros([1])
        tensors["time_emb_proj.weight"] = Tensor.zeros([4, 9])
        let bad = DictionarySource(tensors: tensors, file: "unet/diffusion_pytorch_model.safetensors")
        let before = copy.norm1.weight!.clone()
        do {
            try target.load(from: bad)
            Issue.record("strict load accepted a bad checkpoint")
        } catch let error as NNError {
            let text = error.description
            #expect(text.contains("missing weight `conv1.bias` in unet/diffusion_pytorch_model.safetensors"))
            #expect(text.contains("`time_emb_proj.weight`") && text.contains("[4, 9]") && text.contains("[4, 8]"))
            #expect(text.contains("unused weight `conv1.extra`"))
        }
        #expect(copy.norm1.weight!.equal(before), "a failed strict load changes nothing")

        let partial = try target.load(from: bad, strict: false)
        #expect(partial.missing.map(\.key) == ["conv1.bias"])
        #expect(partial.unused.map(\.key) == ["conv1.extra"])
        #expect(partial.mismatched.map(\.key) == ["time_emb_proj.weight"])
        #expect(partial.loaded == 4)
    }

    @Test func loadConvertsDTypeAndHonoursPrefix() throws {
        let store = try ParameterStore(seed: 0)
        let l = Linear(store.root / "proj", 2, 2)
        let w = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]).to(.float16)
        let source = DictionarySource(tensors: ["text_model.proj.weight": w,
                                                "text_model.proj.bias": Tensor([0, 1] as [Double])])
        try store.load(from: source, keyPrefix: "text_model.")
        #expect(l.weight.dtype == .float32 && l.weight.toArray(Float.self) == [1, 2, 3, 4])
        #expect(l.bias!.toArray(Float.self) == [0, 1])
    }

    @Test func freezeAndUnfreeze() throws {
        let store = try ParameterStore(seed: 0)
        _ = TinyBlock(store.root)
        #expect(store.trainableTensors.count == 6)
        store.freeze()
        #expect(store.trainableTensors.isEmpty)
        store.unfreeze(prefix: "conv1")
        #expect(store.parameters.filter(\.trainable).map(\.name) == ["conv1.weight", "conv1.bias"])
        #expect(store["conv1.weight"]!.tensor.requiresGrad && !store["norm1.weight"]!.tensor.requiresGrad)
    }
}

@Suite struct LayerTests {
    @Test func layersComputeTheirFunctions() throws {
        let store = try ParameterStore(seed: 3)
        let g = try Generator(seed: 4)
        let lin = Linear(store.root / "lin", 3, 2, bias: false)
        let x = Tensor.randn([4, 3], generator: g)
        #expect(relativeError(lin(x), x.matmul(lin.weight.transpose(0, 1))) < 1e-6)
        #expect(lin.bias == nil && store["lin.bias"] == nil)

        let ln = LayerNorm(store.root / "ln", 3)
        let normed = ln(x)
        #expect(normed.mean(dim: -1).abs().max().item() < 1e-6)

        let rms = RMSNorm(store.root / "rms", 3, eps: 1e-6)
        let manual = x / (x.square().mean(dim: -1, keepDim: true) + 1e-6).sqrt()
        #expect(relativeError(rms(x), manual) < 1e-6)

        let emb = Embedding(store.root / "emb", count: 5, dim: 2)
        #expect(emb(Tensor([4, 0] as [Int64])).toArray(Float.self)
            == emb.weight.indexSelect(dim: 0, index: Tensor([4, 0] as [Int64])).toArray(Float.self))

        let conv = Conv2d(store.root / "conv", 2, 4, kernelSize: 3, stride: 2, padding: 1)
        #expect(conv(Tensor.zeros([1, 2, 8, 8])).shape == [1, 4, 4, 4])

        let drop = Dropout(0.5, generator: g)
        #expect(drop(x).equal(x))
        drop.training = true
        #expect(!drop(x).equal(x))
    }

    @Test func multiHeadAttentionMatchesTheFormula() throws {
        let g = try Generator(seed: 8)
        let (b, l, s, heads, d) = (2, 3, 4, 2, 4)
        let q = Tensor.randn([b, l, heads * d], dtype: .float64, generator: g)
        let k = Tensor.randn([b, s, heads * d], dtype: .float64, generator: g)
        let v = Tensor.randn([b, s, heads * d], dtype: .float64, generator: g)
        let out = multiHeadAttention(query: q, key: k, value: v, heads: heads)
        // softmax(Q·Kᵀ/√d)·V per head, written out with matmuls.
        var perHead: [Tensor] = []
        for h in 0..<heads {
            let qh = q.narrow(dim: 2, start: h * d, length: d)
            let kh = k.narrow(dim: 2, start: h * d, length: d)
            let vh = v.narrow(dim: 2, start: h * d, length: d)
            perHead.append((qh.matmul(kh.transpose(1, 2)) / Double(d).squareRoot()).softmax(dim: -1).matmul(vh))
        }
        #expect(relativeError(out, Tensor.cat(perHead, dim: 2)) < 1e-12)

        // Grouped-query attention equals full attention with each kv head repeated.
        let k1 = Tensor.randn([b, s, d], dtype: .float64, generator: g)
        let v1 = Tensor.randn([b, s, d], dtype: .float64, generator: g)
        let gqa = multiHeadAttention(query: q, key: k1, value: v1, heads: heads, kvHeads: 1, causal: true)
        let full = multiHeadAttention(query: q, key: Tensor.cat([k1, k1], dim: 2), value: Tensor.cat([v1, v1], dim: 2),
                                      heads: heads, causal: true)
        #expect(relativeError(gqa, full) < 1e-12)
    }
}

@Suite struct LoRATests {
    @Test func newAdapterEqualsTheBaseLayer() throws {
        let store = try ParameterStore(seed: 0)
        let lora = LoRALinear(store.root / "q_proj", 6, 4, rank: 2, alpha: 4)
        let x = Tensor.randn([3, 6], generator: try Generator(seed: 1))
        #expect(lora(x).equal(lora.base(x)))
        #expect(lora.loraB.abs().max().item() == 0 && lora.loraA.abs().max().item() > 0)
        #expect(store.parameters.map(\.name) == ["q_proj.weight", "q_proj.bias", "q_proj.lora_A.weight",
                                                 "q_proj.lora_B.weight"])
        #expect(store.parameters.filter(\.trainable).map(\.name) == ["q_proj.lora_A.weight", "q_proj.lora_B.weight"])
        #expect(lora.scaling == 2)
    }

    @Test func mergeUnmergeAndDisable() throws {
        let store = try ParameterStore(seed: 0)
        let lora = LoRALinear(store.root / "v_proj", 6, 4, bias: false, rank: 2, alpha: 2)
        withNoGrad { lora.loraB.normal_(generator: try! Generator(seed: 2)) }
        let x = Tensor.randn([3, 6], dtype: .float32, generator: try Generator(seed: 1))
        let adapted = lora(x)
        let expected = x.linear(lora.base.weight) + x.linear(lora.loraA).linear(lora.loraB)
        #expect(relativeError(adapted, expected) < 1e-6)
        let baseOnly = lora.base(x)
        lora.enabled = false
        #expect(lora(x).equal(baseOnly))
        lora.enabled = true
        lora.merge()
        #expect(relativeError(lora(x), adapted) < 1e-5)
        lora.enabled = false
        #expect(relativeError(lora(x), baseOnly) < 1e-5)
        lora.enabled = true
        lora.unmerge()
        #expect(relativeError(lora.base(x), baseOnly) < 1e-5)
        #expect(relativeError(lora(x), adapted) < 1e-6)
    }

    /// Folding for inference: the same function within float32 rounding, and afterwards the frozen
    /// base weights are bit for bit what they were (an add-then-subtract would leave rounding behind),
    /// also when the body throws; a disabled layer is not folded.
    @Test func withMergedRestoresTheBaseWeightsExactly() throws {
        struct Stop: Error {}
        let store = try ParameterStore(seed: 0)
        let on = LoRALinear(store.root / "q_proj", 6, 4, rank: 2, alpha: 4)
        let off = LoRALinear(store.root / "k_proj", 6, 4, rank: 2, alpha: 4)
        withNoGrad {
            on.loraB.normal_(generator: try! Generator(seed: 2))
            off.loraB.normal_(generator: try! Generator(seed: 3))
        }
        off.enabled = false
        let x = Tensor.randn([3, 6], dtype: .float32, generator: try Generator(seed: 1))
        let adapted = on(x), baseOnly = off(x)
        let weights = [on.base.weight.clone(), off.base.weight.clone()]
        let inside = LoRALinear.withMerged([on, off]) { (on.merged, off.merged, on(x), off(x)) }
        #expect(inside.0 && !inside.1)
        #expect(relativeError(inside.2, adapted) < 1e-5 && inside.3.equal(baseOnly))
        #expect(on.base.weight.equal(weights[0]) && off.base.weight.equal(weights[1]) && !on.merged)
        #expect(on(x).equal(adapted))
        #expect(throws: Stop.self) { try LoRALinear.withMerged([on]) { throw Stop() } }
        #expect(on.base.weight.equal(weights[0]) && !on.merged)
    }

    @Test func adaptersSaveAndLoadApartFromTheBase() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let a = try ParameterStore(seed: 0)
        let la = LoRALinear(a.root / "o_proj", 4, 4, rank: 2, alpha: 2)
        withNoGrad { la.loraB.fill_(0.5) }
        try a.save(to: folder + "/base.safetensors", selection: .base)
        try a.save(to: folder + "/adapter.safetensors", selection: .adapters)
        #expect(try SafeTensorsFile(path: folder + "/adapter.safetensors").names
            == ["o_proj.lora_A.weight", "o_proj.lora_B.weight"])

        let b = try ParameterStore(seed: 9)
        let lb = LoRALinear(b.root / "o_proj", 4, 4, rank: 2, alpha: 2)
        try b.load(from: SafeTensorsFile(path: folder + "/base.safetensors"))
        try b.load(from: SafeTensorsFile(path: folder + "/adapter.safetensors"), selection: .adapters)
        let x = Tensor.ones([1, 4])
        #expect(lb(x).equal(la(x)))
        // A base checkpoint that carries adapter keys is rejected by a strict base load.
        #expect(throws: NNError.self) { try b.load(from: DictionarySource(tensors: a.state(.all))) }
    }
}
