import Torch

/// Activation functions named as in configs (`silu`, `gelu`, `quick_gelu`).
public enum Activation: String, Codable, Sendable {
    case silu, swish, gelu, quickGelu = "quick_gelu", relu, geluTanh = "gelu_pytorch_tanh"

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .silu, .swish: return x.silu()
        case .gelu: return x.gelu()
        case .geluTanh: return x.gelu(approximateTanh: true)
        case .quickGelu: return x * (x * 1.702).sigmoid()
        case .relu: return x.relu()
        }
    }
}
