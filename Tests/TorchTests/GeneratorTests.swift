import Testing
import Torch

// Reference draws come from PyTorch 2.11.0 itself:
//   .deps/pyref/bin/python scripts/fixtures/torch_ops.py   (writes Fixtures/generator.safetensors)
// e.g. torch.randn(16, generator=torch.Generator("cpu").manual_seed(seed)).
@Suite struct GeneratorTests {
    let reference: SafeTensorsFile

    init() throws { reference = try SafeTensorsFile(path: fixturePath("generator.safetensors")) }

    @Test(arguments: [UInt64(0), 42])
    func firstDrawsEqualPyTorch(seed: UInt64) throws {
        func fresh() throws -> Generator { try Generator(seed: seed) }
        // From 16 elements on, libtorch's normal_fill runs Box–Muller on the uniform draws with AVX2
        // code or with scalar libm (CPU-dependent; ATEN_CPU_CAPABILITY selects it), which round
        // log, sqrt and cos differently: the uniform bits are the same (rand below is exact), and a
        // normal r·cos θ differs by a few ulps of the radius r = √(−2 ln u₁), at most 5.8 for float32
        // uniforms: 8 ulps of it is under 64 float32 units of max(1, |x|). (Seen: 20 units.)
        #expect(boxMullerError(Tensor.randn([16], generator: try fresh()), try reference.tensor("randn.\(seed)")) < 64)
        #expect(boxMullerError(Tensor.randn([1, 4, 8, 8], generator: try fresh()),
                               try reference.tensor("randn_latent.\(seed)")) < 64)
        #expect(Tensor.rand([16], generator: try fresh()).equal(try reference.tensor("rand.\(seed)")))
        #expect(Tensor.randint(0, 1000, [16], generator: try fresh()).equal(try reference.tensor("randint.\(seed)")))
        #expect(Tensor.randperm(10, generator: try fresh()).equal(try reference.tensor("randperm.\(seed)")))
        let probs = Tensor([0.1, 0.2, 0.3, 0.4, 0.7, 0.1, 0.1, 0.1] as [Float], shape: [2, 4])
        #expect(probs.multinomial(samples: 8, replacement: true, generator: try fresh())
            .equal(try reference.tensor("multinomial.\(seed)")))
        let g = try fresh()
        let stream = Tensor.cat([Tensor.randn([5], generator: g), Tensor.randn([5], generator: g)])
        #expect(stream.equal(try reference.tensor("randn_then_randn.\(seed)")))
    }

    /// Largest |a − b| in float32 units (2⁻²⁴) of max(1, |b|), element by element.
    func boxMullerError(_ a: Tensor, _ b: Tensor) -> Double {
        guard a.shape == b.shape else { return .infinity }
        let (x, y) = (a.to(.float64), b.to(.float64))
        return ((x - y).abs() / y.abs().clamp(min: 1)).max().item() / 0x1p-24
    }

    @Test func sameSeedSameBitsDifferentSeedDifferent() throws {
        let a = Tensor.randn([3, 64], generator: try Generator(seed: 123))
        let b = Tensor.randn([3, 64], generator: try Generator(seed: 123))
        let c = Tensor.randn([3, 64], generator: try Generator(seed: 124))
        #expect(a.bytes() == b.bytes())
        #expect(a.bytes() != c.bytes())
    }

    @Test func stateRestoreReplaysTheStream() throws {
        let g = try Generator(seed: 9)
        _ = Tensor.randn([7], generator: g)
        let saved = g.state
        let first = Tensor.rand([20], generator: g)
        try g.setState(saved)
        let replay = Tensor.rand([20], generator: g)
        #expect(first.equal(replay))
        #expect(throws: TorchError.self) { try g.setState(Tensor([1, 2, 3] as [UInt8])) }
    }

    @Test func dropoutIsSeededAndScaled() throws {
        let x = Tensor.ones([1000])
        let a = x.dropout(0.25, generator: try Generator(seed: 1))
        let b = x.dropout(0.25, generator: try Generator(seed: 1))
        #expect(a.equal(b))
        let values = Set(floats(a))
        #expect(values.isSubset(of: [0, Float(1 / 0.75)]))
        let kept = Double(floats(a).filter { $0 > 0 }.count) / 1000
        #expect(abs(kept - 0.75) < 0.06)
    }
}
