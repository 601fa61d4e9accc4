import Testing
import Torch

@Suite struct AutogradTests {
    /// A composite of matmul, broadcasting, GELU, layer norm, softmax, log and reductions.
    static func composite(_ x: Tensor, _ w: Tensor) -> Tensor {
        let h = x.matmul(w).gelu() + x.sum(dim: 1, keepDim: true).sin()
        let n = h.layerNorm([h.size(1)])
        let p = (n * 2).softmax(dim: -1)
        return (p.log() * Tensor.linspace(-1, 1, count: h.size(1), dtype: .float64)).sum() + w.square().mean()
    }

    @Test func gradientsMatchCentralDifferences() throws {
        let g = try Generator(seed: 11)
        let x = Tensor.randn([3, 4], dtype: .float64, generator: g).requiringGrad()
        let w = Tensor.randn([4, 5], dtype: .float64, generator: g).requiringGrad()
        let loss = Self.composite(x, w)
        loss.backward()
        let gx = try #require(x.grad).toArray(Double.self)
        let gw = try #require(w.grad).toArray(Double.self)

        let h = 1e-6
        func numeric(_ which: Int, _ i: Int) -> Double {
            withNoGrad {
                var xs = x.detached().toArray(Double.self)
                var ws = w.detached().toArray(Double.self)
                func eval(_ delta: Double) -> Double {
                    var xd = xs, wd = ws
                    if which == 0 { xd[i] += delta } else { wd[i] += delta }
                    return Self.composite(Tensor(xd, shape: [3, 4]), Tensor(wd, shape: [4, 5])).item()
                }
                let value = (eval(h) - eval(-h)) / (2 * h)
                xs.removeAll(); ws.removeAll()
                return value
            }
        }
        for i in 0..<gx.count { #expect(abs(gx[i] - numeric(0, i)) < 1e-6, "d/dx[\(i)]") }
        for i in 0..<gw.count { #expect(abs(gw[i] - numeric(1, i)) < 1e-6, "d/dw[\(i)]") }
    }

    @Test func gradientsAccumulateAndReset() {
        let w = Tensor([1, 2, 3] as [Float]).requiringGrad()
        #expect(w.grad == nil && w.isLeaf)
        (w * w).sum().backward()
        #expect(w.grad!.toArray(Float.self) == [2, 4, 6])
        (w * 3).sum().backward()
        #expect(w.grad!.toArray(Float.self) == [5, 7, 9])
        w.zeroGrad()
        #expect(w.grad == nil)
    }

    @Test func noGradScopeAndDetach() {
        let w = Tensor([1, 2] as [Float]).requiringGrad()
        let inside = withNoGrad { w * 2 }
        #expect(!inside.requiresGrad)
        #expect(isGradEnabled)
        #expect((w * 2).requiresGrad)
        #expect(!(w * 2).detached().requiresGrad)
        let nested: Bool = withNoGrad { withGrad { (w * 2).requiresGrad } }
        #expect(nested)
        // A detached branch receives no gradient.
        let y = (w * 2).detached() * w
        y.sum().backward()
        #expect(w.grad!.toArray(Float.self) == [2, 4])
    }

    @Test func backwardWithExplicitGradient() {
        let x = Tensor([1, 2, 3] as [Float]).requiringGrad()
        let y = x * x
        y.backward(Tensor([1, 0, 2] as [Float]))
        #expect(x.grad!.toArray(Float.self) == [2, 0, 12])
    }
}
