import Testing
import Torch

@Suite struct CreationAndConversionTests {
    @Test func arraysRoundTripInEveryDType() {
        let values: [Float] = [0, 1, -2, 3.5, 100, -0.25]
        let t = Tensor(values, shape: [2, 3])
        #expect(t.shape == [2, 3])
        #expect(t.dtype == .float32)
        #expect(t.toArray(Float.self) == values)
        #expect(t.to(.float16).toArray(Float.self) == values)
        #expect(t.to(.bfloat16).toArray(Float.self) == values)
        #expect(t.to(.float64).toArray(Double.self) == values.map(Double.init))
        #expect(t.to(.int64).toArray(Int64.self) == [0, 1, -2, 3, 100, 0])
        #expect(t.to(.int32).toArray(Int32.self) == [0, 1, -2, 3, 100, 0])
        #expect(Tensor([1, 2, 255] as [UInt8]).toArray(UInt8.self) == [1, 2, 255])
        #expect((t .> 0.5).toArray(Bool.self) == [false, true, false, true, true, false])
        #expect(Tensor([true, false] as [Bool]).dtype == .bool)
        #expect(Tensor(scalar: Float(2.5)).shape == [])
        #expect(Tensor(scalar: Float(2.5)).item() == 2.5)
    }

    @Test func factories() {
        #expect(Tensor.zeros([2, 2]).toArray(Float.self) == [0, 0, 0, 0])
        #expect(Tensor.ones([3], dtype: .int64).toArray(Int64.self) == [1, 1, 1])
        #expect(Tensor.full([2], 7, dtype: .float16).toArray(Float.self) == [7, 7])
        #expect(Tensor.arange(0, 5).toArray(Int64.self) == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(1, 2, step: 0.25, dtype: .float32).toArray(Float.self) == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.linspace(0, 1, count: 5).toArray(Float.self) == [0, 0.25, 0.5, 0.75, 1])
    }

    // On a machine with a GPU (the static CUDA build on a lent GPU machine) there is nothing to refuse.
    @Test(.enabled(if: Device.cudaDeviceCount == 0, "the machine has a GPU"))
    func cudaRequestsAreClearErrorsWithoutAGPU() throws {
        #expect(throws: TorchError.self) { try Device.cuda(0).validate() }
        #expect(throws: TorchError.self) { try Generator(seed: 0, device: .cuda(0)) }
    }

    @Test func devicesParseAndUnknownOnesAreErrors() throws {
        #expect(throws: TorchError.self) { try Device(parsing: "tpu") }
        #expect(try Device(parsing: "cuda:1") == .cuda(1))
        #expect(try Device(parsing: "cpu") == .cpu)
        try Device.cpu.validate()
        #expect(throws: TorchError.self) { try Device.cuda(Device.cudaDeviceCount).validate() }
    }
}

@Suite struct ArithmeticTests {
    @Test func broadcastingArithmetic() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let row = Tensor([10, 20, 30] as [Float])
        let col = Tensor([1, -1] as [Float], shape: [2, 1])
        #expect((a + row).toArray(Float.self) == [11, 22, 33, 14, 25, 36])
        #expect((a * col).toArray(Float.self) == [1, 2, 3, -4, -5, -6])
        #expect((a - 1).toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        #expect((1 - a).toArray(Float.self) == [0, -1, -2, -3, -4, -5])
        #expect((a / 2).toArray(Float.self) == [0.5, 1, 1.5, 2, 2.5, 3])
        #expect((12 / a).toArray(Float.self) == [12, 6, 4, 3, 2.4, 2])
        #expect((-a).toArray(Float.self) == [-1, -2, -3, -4, -5, -6])
        #expect(a.pow(2).toArray(Float.self) == [1, 4, 9, 16, 25, 36])
        #expect(a.maximum(Tensor(scalar: Float(3.5))).toArray(Float.self) == [3.5, 3.5, 3.5, 4, 5, 6])
        #expect(a.clamp(min: 2, max: 4).toArray(Float.self) == [2, 2, 3, 4, 4, 4])
        #expect(a.clamp(max: 2).toArray(Float.self) == [1, 2, 2, 2, 2, 2])
        let picked = Tensor.where(a .> 3, a, a * 0)
        #expect(picked.toArray(Float.self) == [0, 0, 0, 4, 5, 6])
        #expect((a .== row / 10).toArray(Bool.self) == [true, true, true, false, false, false])
    }

    @Test func unaryFunctionsAgainstKnownValues() {
        let x = Tensor([0, 1, -1, 4] as [Double])
        #expect(x.exp().toArray(Double.self)[1] == 2.718281828459045)
        #expect(Tensor([1, 4, 9] as [Float]).sqrt().toArray(Float.self) == [1, 2, 3])
        #expect(Tensor([1, 4] as [Float]).rsqrt().toArray(Float.self) == [1, 0.5])
        #expect(x.sigmoid().toArray(Double.self)[0] == 0.5)
        #expect(x.tanh().toArray(Double.self)[0] == 0)
        #expect(x.relu().toArray(Double.self) == [0, 1, 0, 4])
        #expect(abs(x.silu().toArray(Double.self)[1] - 1 / (1 + 1 / 2.718281828459045)) < 1e-15)
        // gelu(1) = 0.5·(1 + erf(1/√2)) = 0.8413447460685429
        #expect(abs(x.gelu().toArray(Double.self)[1] - 0.8413447460685429) < 1e-12)
        // tanh approximation at 1: 0.5·(1 + tanh(√(2/π)·(1 + 0.044715)))
        #expect(abs(x.gelu(approximateTanh: true).toArray(Double.self)[1] - 0.8411919906082768) < 1e-12)
        #expect(Tensor([1, 2.718281828459045] as [Double]).log().toArray(Double.self) == [0, 1])
        #expect(Tensor([Float.nan, 1]).isnan().toArray(Bool.self) == [true, false])
    }

    @Test func reductionsOverDims() {
        let a = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(a.sum().item() == 21)
        #expect(a.sum(dim: 0).toArray(Float.self) == [5, 7, 9])
        #expect(a.sum(dim: 1, keepDim: true).shape == [2, 1])
        #expect(a.mean(dim: 1).toArray(Float.self) == [2, 5])
        #expect(a.max(dim: 1).toArray(Float.self) == [3, 6])
        #expect(a.min().item() == 1)
        #expect(a.argmax(dim: 1).toArray(Int64.self) == [2, 2])
        #expect(a.argmin(dim: 0).toArray(Int64.self) == [0, 0, 0])
        let (values, indices) = a.maxWithIndices(dim: 0)
        #expect(values.toArray(Float.self) == [4, 5, 6] && indices.toArray(Int64.self) == [1, 1, 1])
        #expect(a.variance(dims: [1]).toArray(Float.self) == [1, 1])
        #expect(a.variance(dims: [1], correction: 0).toArray(Float.self).map { ($0 * 1000).rounded() } == [667, 667])
        #expect(a.std().item() == 1.8708287477493286)
        // logsumexp([0, ln 3]) = ln 4
        let l = Tensor([0, 1.0986122886681098] as [Double]).logsumexp(dim: 0).item()
        #expect(abs(l - 1.3862943611198906) < 1e-12)
        #expect(a.prod().item() == 720)
        #expect(a.cumsum(dim: 1).toArray(Float.self) == [1, 3, 6, 4, 9, 15])
        #expect((a .> 2).any().item() == 1 && (a .> 0).all().item() == 1 && (a .> 1).all().item() == 0)
    }

    @Test func softmaxKnownValues() {
        // softmax([0, ln 2]) = [1/3, 2/3]
        let s = Tensor([0, 0.6931471805599453] as [Double]).softmax(dim: 0).toArray(Double.self)
        #expect(abs(s[0] - 1.0 / 3) < 1e-15 && abs(s[1] - 2.0 / 3) < 1e-15)
        let ls = Tensor([0, 0.6931471805599453] as [Double]).logSoftmax(dim: 0).toArray(Double.self)
        #expect(abs(ls[0] - (-1.0986122886681098)) < 1e-12)
    }

    @Test func sortTopkMultinomial() throws {
        let a = Tensor([3, 1, 2, 5] as [Float])
        let (sorted, order) = a.sort()
        #expect(sorted.toArray(Float.self) == [1, 2, 3, 5] && order.toArray(Int64.self) == [1, 2, 0, 3])
        #expect(a.sort(descending: true).values.toArray(Float.self) == [5, 3, 2, 1])
        let top = a.topk(2)
        #expect(top.values.toArray(Float.self) == [5, 3] && top.indices.toArray(Int64.self) == [3, 0])
        // A one-hot distribution always samples its hot index.
        let p = Tensor([0, 0, 1, 0] as [Float])
        let draws = p.multinomial(samples: 5, replacement: true, generator: try Generator(seed: 3))
        #expect(draws.toArray(Int64.self) == [2, 2, 2, 2, 2])
    }
}

@Suite struct ShapeOpTests {
    let a = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])

    @Test func views() {
        #expect(a.reshape([6, 4]).shape == [6, 4])
        #expect(a.reshape(4, -1).shape == [4, 6])
        #expect(a.permute(2, 0, 1).shape == [4, 2, 3])
        #expect(a.permute(2, 0, 1).contiguous().toArray(Float.self)[0..<6] == [0, 4, 8, 12, 16, 20])
        #expect(a.transpose(0, 2).shape == [4, 3, 2])
        #expect(!a.transpose(0, 2).isContiguous && a.transpose(0, 2).contiguous().isContiguous)
        #expect(a.flatten().shape == [24] && a.flatten(start: 1).shape == [2, 12])
        #expect(a.unsqueeze(0).shape == [1, 2, 3, 4] && a.unsqueeze(0).squeeze(0).shape == [2, 3, 4])
        #expect(Tensor.zeros([1, 3, 1]).squeeze().shape == [3])
        #expect(a.narrow(dim: 2, start: 1, length: 2).toArray(Float.self)[0..<2] == [1, 2])
        #expect(a.slice(dim: 1, start: 1).shape == [2, 2, 4])
        #expect(a.slice(dim: 2, start: 0, step: 2).toArray(Float.self)[0..<4] == [0, 2, 4, 6])
        #expect(a[1].shape == [3, 4] && a[1].toArray(Float.self)[0] == 12)
        #expect(Tensor([1, 2] as [Float], shape: [2, 1]).expand([2, 3]).toArray(Float.self) == [1, 1, 1, 2, 2, 2])
        #expect(Tensor([1, 2] as [Float]).repeat([2]).toArray(Float.self) == [1, 2, 1, 2])
        #expect(Tensor([1, 2, 3] as [Float]).flip([0]).toArray(Float.self) == [3, 2, 1])
    }

    @Test func joinAndSplit() {
        let x = Tensor([1, 2] as [Float])
        let y = Tensor([3, 4] as [Float])
        #expect(Tensor.cat([x, y]).toArray(Float.self) == [1, 2, 3, 4])
        #expect(Tensor.stack([x, y]).shape == [2, 2])
        #expect(Tensor.stack([x, y], dim: 1).toArray(Float.self) == [1, 3, 2, 4])
        let chunks = Tensor.arange(0, 7, dtype: .float32).chunk(3)
        #expect(chunks.map(\.shape) == [[3], [3], [1]])
        let parts = a.split(sizes: [1, 3], dim: 2)
        #expect(parts.map(\.shape) == [[2, 3, 1], [2, 3, 3]])
        #expect(a.split(size: 2, dim: 1).map(\.shape) == [[2, 2, 4], [2, 1, 4]])
    }

    @Test func indexing() {
        let m = Tensor([10, 11, 12, 20, 21, 22] as [Float], shape: [2, 3])
        let idx = Tensor([2, 0] as [Int64])
        #expect(m.indexSelect(dim: 1, index: idx).toArray(Float.self) == [12, 10, 22, 20])
        let g = Tensor([1, 1, 0, 2] as [Int64], shape: [2, 2])
        #expect(m.gather(dim: 1, index: g).toArray(Float.self) == [11, 11, 20, 22])
        let s = Tensor.zeros([2, 3]).scatter(dim: 1, index: Tensor([0, 2] as [Int64], shape: [2, 1]),
                                             source: Tensor.ones([2, 1]))
        #expect(s.toArray(Float.self) == [1, 0, 0, 0, 0, 1])
        #expect(m.maskedFill(m .> 20, -1).toArray(Float.self) == [10, 11, 12, 20, -1, -1])
        #expect(Tensor.ones([3, 3]).tril().sum().item() == 6 && Tensor.ones([3, 3]).triu(1).sum().item() == 3)
        let e = Tensor([1, 0] as [Int64]).embedding(Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]))
        #expect(e.toArray(Float.self) == [3, 4, 1, 2])
    }

    @Test func padding() {
        let x = Tensor([1, 2, 3] as [Float], shape: [1, 3])
        #expect(x.pad([1, 2]).toArray(Float.self) == [0, 1, 2, 3, 0, 0])
        #expect(x.pad([1, 0], value: 9).toArray(Float.self) == [9, 1, 2, 3])
        #expect(x.unsqueeze(0).pad([1, 1], mode: .reflect).toArray(Float.self) == [2, 1, 2, 3, 2])
        #expect(x.unsqueeze(0).pad([2, 0], mode: .replicate).toArray(Float.self) == [1, 1, 1, 2, 3])
    }
}

// Reference outputs from torch.nn.functional (see scripts/fixtures/torch_ops.py).
@Suite struct FunctionalParityTests {
    let f: SafeTensorsFile

    init() throws { f = try SafeTensorsFile(path: fixturePath("ops.safetensors")) }

    func t(_ name: String) throws -> Tensor { try f.tensor(name) }

    @Test func activationsAndNorms() throws {
        let x = try t("x")
        let row = try t("row")
        #expect(relativeError(x.gelu(), try t("gelu")) < 1e-6)
        #expect(relativeError(x.gelu(approximateTanh: true), try t("gelu_tanh")) < 1e-6)
        #expect(relativeError(x.silu(), try t("silu")) < 1e-6)
        #expect(relativeError(x.groupNorm(groups: 3, weight: try t("gamma"), bias: try t("beta"), eps: 1e-6),
                              try t("group_norm")) < 1e-5)
        #expect(relativeError(row.layerNorm([10]), try t("layer_norm")) < 1e-5)
        #expect(relativeError(row.rmsNorm([10], weight: Tensor.linspace(0.5, 1.5, count: 10), eps: 1e-6),
                              try t("rms_norm")) < 1e-5)
        #expect(relativeError(row.softmax(dim: -1), try t("softmax")) < 1e-6)
        #expect(relativeError(row.logSoftmax(dim: -1), try t("log_softmax")) < 1e-6)
        #expect(relativeError(row.logsumexp(dim: 1), try t("logsumexp")) < 1e-6)
        #expect(relativeError(row.std(dims: [1]), try t("std")) < 1e-6)
        #expect(relativeError(row.variance(dims: [0], correction: 0), try t("var0")) < 1e-6)
        #expect(relativeError(row.cumsum(dim: 1), try t("cumsum")) < 1e-6)
        #expect(row.topk(3).indices.equal(try t("topk_indices")))
        #expect(relativeError(row.topk(3).values, try t("topk_values")) == 0)
    }

    @Test func spatialOps() throws {
        let x = try t("x")
        #expect(relativeError(x.interpolate(scale: 2), try t("nearest")) == 0)
        #expect(relativeError(x.interpolate(size: (8, 9), mode: .bilinear), try t("bilinear")) < 1e-6)
        #expect(relativeError(x.interpolate(size: (8, 9), mode: .bilinear, alignCorners: true),
                              try t("bilinear_ac")) < 1e-6)
        let conv = x.conv2d(try t("wconv"), try t("bconv"), stride: (2, 2), padding: (1, 1), groups: 2)
        #expect(relativeError(conv, try t("conv")) < 1e-5)
        #expect(relativeError(x.pad([1, 2, 2, 1], mode: .reflect), try t("pad_reflect")) == 0)
    }

    @Test func attention() throws {
        let (q, k, v) = (try t("q"), try t("k"), try t("v"))
        let masked = scaledDotProductAttention(query: q, key: k, value: v, mask: try t("mask"))
        #expect(relativeError(masked, try t("sdpa_mask")) < 1e-5)
        #expect(relativeError(scaledDotProductAttention(query: q, key: q, value: q, causal: true),
                              try t("sdpa_causal")) < 1e-5)
        #expect(relativeError(scaledDotProductAttention(query: q, key: k, value: v, scale: 0.3),
                              try t("sdpa_scale")) < 1e-5)
    }

    @Test func matmulFamily() {
        let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        let b = Tensor([5, 6, 7, 8] as [Float], shape: [2, 2])
        #expect(a.matmul(b).toArray(Float.self) == [19, 22, 43, 50])
        #expect(a.unsqueeze(0).bmm(b.unsqueeze(0)).toArray(Float.self) == [19, 22, 43, 50])
        // linear: x·Wᵀ + b
        #expect(a.linear(b, Tensor([1, -1] as [Float])).toArray(Float.self) == [18, 22, 40, 52])
    }
}
