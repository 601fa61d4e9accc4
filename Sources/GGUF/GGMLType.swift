// swift-format-ignore-file: AlwaysUseLowerCamelCase
// The constants keep ggml's type names (`q4_1`, `q6_K`), the spelling every GGUF tool uses.

/// A ggml tensor type code (`enum ggml_type` in ggml.h). Unknown codes are kept, so that a file with
/// a newer type still opens and the error names the type when that tensor is dequantised.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `ggml_type` code as stored in the tensor table.
    public let rawValue: UInt32
    /// Wraps any code, known or not.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    // Type codes as in ggml.h (gaps are types ggml has removed).
    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q8_1 = GGMLType(rawValue: 9)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let q8_K = GGMLType(rawValue: 15)
    public static let i8 = GGMLType(rawValue: 24)
    public static let i16 = GGMLType(rawValue: 25)
    public static let i32 = GGMLType(rawValue: 26)
    public static let i64 = GGMLType(rawValue: 27)
    public static let f64 = GGMLType(rawValue: 28)
    public static let bf16 = GGMLType(rawValue: 30)

    /// The types ``GGUFFile/dequantize(_:)`` handles.
    public static let dequantisable: [GGMLType] = [
        .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K,
    ]

    /// Name as in ggml and the `gguf` Python package (`Q4_1`), or `type <code>` if unknown.
    public var description: String {
        switch rawValue {
        case 0: return "F32"
        case 1: return "F16"
        case 2: return "Q4_0"
        case 3: return "Q4_1"
        case 6: return "Q5_0"
        case 7: return "Q5_1"
        case 8: return "Q8_0"
        case 9: return "Q8_1"
        case 10: return "Q2_K"
        case 11: return "Q3_K"
        case 12: return "Q4_K"
        case 13: return "Q5_K"
        case 14: return "Q6_K"
        case 15: return "Q8_K"
        case 24: return "I8"
        case 25: return "I16"
        case 26: return "I32"
        case 27: return "I64"
        case 28: return "F64"
        case 30: return "BF16"
        default: return "type \(rawValue)"
        }
    }

    /// `(elements per block, bytes per block)` (`GGML_QUANT_SIZES` in gguf-py), nil for unknown
    /// codes. Known for every type whose layout is fixed, so that data sizes and offsets can be
    /// checked even for tensors this reader cannot dequantise.
    public var blockLayout: (elements: Int, bytes: Int)? {
        switch rawValue {
        case 0: return (1, 4)
        case 1: return (1, 2)
        case 2: return (32, 2 + 16)
        case 3: return (32, 2 + 2 + 16)
        case 6: return (32, 2 + 4 + 16)
        case 7: return (32, 2 + 2 + 4 + 16)
        case 8: return (32, 2 + 32)
        case 9: return (32, 4 + 4 + 32)
        case 10: return (256, 2 + 2 + 256 / 16 + 256 / 4)
        case 11: return (256, 2 + 256 / 4 + 256 / 8 + 12)
        case 12: return (256, 2 + 2 + 256 / 2 + 12)
        case 13: return (256, 2 + 2 + 256 / 2 + 256 / 8 + 12)
        case 14: return (256, 2 + 256 / 2 + 256 / 4 + 256 / 16)
        case 15: return (256, 4 + 256 + 256 / 8)
        case 24: return (1, 1)
        case 25: return (1, 2)
        case 26: return (1, 4)
        case 27: return (1, 8)
        case 28: return (1, 8)
        case 30: return (1, 2)
        default: return nil
        }
    }
}
