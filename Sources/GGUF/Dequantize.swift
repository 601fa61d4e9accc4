// Dequantisation as gguf-py 0.19.0 (`gguf/quants.py`) and ggml (`ggml-quants.c`) do it: the block
// layouts of `block_q4_0` … `block_q6_K`, computed in float32 in the same order as the NumPy
// reference (`d * q + m`, `d * sc * q - dmin * m`, never fused), so that results equal it bit for bit.

enum Dequantize {
    /// Writes `count` floats decoded from `raw` (whose size the caller has checked) into `out`.
    static func run(
        _ type: GGMLType, from raw: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<Float>, count: Int
    ) {
        let src = raw.baseAddress!
        switch type {
        case .f32:
            // The mapping is little-endian and 4-byte aligned only if the file's alignment says so.
            for i in 0..<count {
                let bits = src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                out[i] = Float(bitPattern: UInt32(littleEndian: bits))
            }
        case .f16:
            for i in 0..<count { out[i] = halfToFloat(loadU16(src, 2 * i)) }
        case .bf16:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(loadU16(src, 2 * i)) << 16) }
        case .q8_0:
            // block_q8_0 { ggml_half d; int8_t qs[32]; }
            for b in 0..<count / 32 {
                let block = src + 34 * b
                let d = halfToFloat(loadU16(block, 0))
                let qs = block + 2
                let o = out + 32 * b
                for j in 0..<32 { o[j] = Float(qs.load(fromByteOffset: j, as: Int8.self)) * d }
            }
        case .q4_0:
            // block_q4_0 { ggml_half d; uint8_t qs[16]; }: low nibbles are elements 0..15, high 16..31.
            for b in 0..<count / 32 {
                let block = src + 18 * b
                let d = halfToFloat(loadU16(block, 0))
                let qs = block + 2
                let o = out + 32 * b
                for j in 0..<16 {
                    let q = qs.load(fromByteOffset: j, as: UInt8.self)
                    o[j] = d * Float(Int8(q & 0x0F) - 8)
                    o[j + 16] = d * Float(Int8(q >> 4) - 8)
                }
            }
        case .q4_1:
            // block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }
            for b in 0..<count / 32 {
                let block = src + 20 * b
                let d = halfToFloat(loadU16(block, 0))
                let m = halfToFloat(loadU16(block, 2))
                let qs = block + 4
                let o = out + 32 * b
                for j in 0..<16 {
                    let q = qs.load(fromByteOffset: j, as: UInt8.self)
                    let lo = d * Float(q & 0x0F)
                    let hi = d * Float(q >> 4)
                    o[j] = lo + m
                    o[j + 16] = hi + m
                }
            }
        case .q5_0:
            // block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }: bit j of qh is bit 4 of element j.
            for b in 0..<count / 32 {
                let block = src + 22 * b
                let d = halfToFloat(loadU16(block, 0))
                let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                let qs = block + 6
                let o = out + 32 * b
                for j in 0..<16 {
                    let q = qs.load(fromByteOffset: j, as: UInt8.self)
                    let lo = (q & 0x0F) | UInt8(truncatingIfNeeded: (qh >> UInt32(j)) & 1) << 4
                    let hi = (q >> 4) | UInt8(truncatingIfNeeded: (qh >> UInt32(j + 16)) & 1) << 4
                    o[j] = d * Float(Int8(lo) - 16)
                    o[j + 16] = d * Float(Int8(hi) - 16)
                }
            }
        case .q5_1:
            // block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }
            for b in 0..<count / 32 {
                let block = src + 24 * b
                let d = halfToFloat(loadU16(block, 0))
                let m = halfToFloat(loadU16(block, 2))
                let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let qs = block + 8
                let o = out + 32 * b
                for j in 0..<16 {
                    let q = qs.load(fromByteOffset: j, as: UInt8.self)
                    let lo = (q & 0x0F) | UInt8(truncatingIfNeeded: (qh >> UInt32(j)) & 1) << 4
                    let hi = (q >> 4) | UInt8(truncatingIfNeeded: (qh >> UInt32(j + 16)) & 1) << 4
                    let x = d * Float(lo)
                    let y = d * Float(hi)
                    o[j] = x + m
                    o[j + 16] = y + m
                }
            }
        case .q4_K, .q5_K:
            // block_q4_K { ggml_half d, dmin; uint8_t scales[12]; uint8_t qs[128]; }
            // block_q5_K { ggml_half d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
            // Eight sub-blocks of 32; sub-block s = 2g + h takes nibble h of qs[32g ..< 32g + 32].
            let five = type == .q5_K
            let blockBytes = five ? 176 : 144
            for b in 0..<count / 256 {
                let block = src + blockBytes * b
                let d = halfToFloat(loadU16(block, 0))
                let dmin = halfToFloat(loadU16(block, 2))
                let (sc, mn) = kScaleMin(block + 4)
                let qh = block + 16
                let qs = block + (five ? 48 : 16)
                let o = out + 256 * b
                for s in 0..<8 {
                    let scale = d * Float(sc[s])
                    let offset = dmin * Float(mn[s])
                    let g = s / 2
                    let shift = UInt8(4 * (s % 2))
                    for l in 0..<32 {
                        var q = (qs.load(fromByteOffset: 32 * g + l, as: UInt8.self) >> shift) & 0x0F
                        if five { q |= ((qh.load(fromByteOffset: l, as: UInt8.self) >> UInt8(s)) & 1) << 4 }
                        let x = scale * Float(q)
                        o[32 * s + l] = x - offset
                    }
                }
            }
        case .q6_K:
            // block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
            // Element e = 128c + 32k + l (l < 32): low 4 bits from nibble (k / 2) of ql[64c + 32(k % 2) + l],
            // high 2 bits from bits 2k of qh[32c + l]; scale scales[e / 16].
            for b in 0..<count / 256 {
                let block = src + 210 * b
                let ql = block
                let qh = block + 128
                let d = halfToFloat(loadU16(block, 208))
                let o = out + 256 * b
                for e in 0..<256 {
                    let c = e / 128
                    let l64 = e % 64
                    let nibble = UInt8(4 * ((e % 128) / 64))
                    let k = (e % 128) / 32
                    let l32 = e % 32
                    let low = (ql.load(fromByteOffset: 64 * c + l64, as: UInt8.self) >> nibble) & 0x0F
                    let high = (qh.load(fromByteOffset: 32 * c + l32, as: UInt8.self) >> UInt8(2 * k)) & 0x03
                    let q = Int8(low | high << 4) - 32
                    let scale = d * Float(block.load(fromByteOffset: 192 + e / 16, as: Int8.self))
                    o[e] = scale * Float(q)
                }
            }
        default:
            preconditionFailure("Dequantize.run called for \(type)")
        }
    }

    /// The 6-bit scales and mins packed in the 12 bytes of a Q4_K/Q5_K block (`get_scale_min_k4`).
    /// SIMD values rather than arrays keep the per-block work off the heap.
    @inline(__always)
    static func kScaleMin(_ p: UnsafeRawPointer) -> (SIMD8<UInt8>, SIMD8<UInt8>) {
        var sc = SIMD8<UInt8>()
        var mn = SIMD8<UInt8>()
        for i in 0..<4 {
            let d = p.load(fromByteOffset: i, as: UInt8.self)
            let m = p.load(fromByteOffset: 4 + i, as: UInt8.self)
            let md = p.load(fromByteOffset: 8 + i, as: UInt8.self)
            sc[i] = d & 0x3F
            mn[i] = m & 0x3F
            sc[4 + i] = (md & 0x0F) | ((d >> 2) & 0x30)
            mn[4 + i] = (md >> 4) | ((m >> 2) & 0x30)
        }
        return (sc, mn)
    }

    @inline(__always)
    static func loadU16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
}

/// IEEE 754 binary16 → binary32, exact (subnormals, infinities and NaN payloads included).
/// Written out rather than using `Float16`, which is unavailable on some platforms.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x03FF)
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal half: mantissa · 2^-24, exactly representable as a normal float.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}
