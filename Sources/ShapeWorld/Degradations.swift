// Image degradations that imitate what a small diffusion model's samples look like.

import Foundation
import Imaging

/// The degradations the detector must survive (issue 4, point 5).
///
/// ```swift
/// var rng = SplitMix64(seed: 7)
/// let rough = Degradations.standard(image, rng: &rng)
/// ```
public enum Degradations {
    /// Separable Gaussian blur with standard deviation `sigma` pixels (edges clamp).
    public static func gaussianBlur(_ image: RGBImage, sigma: Double) -> RGBImage {
        guard sigma > 0 else { return image }
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let w = image.width, h = image.height
        var tmp = [Float](repeating: 0, count: image.pixels.count)
        var out = tmp
        let src = image.pixels
        for y in 0..<h {
            for x in 0..<w {
                var acc: (Float, Float, Float) = (0, 0, 0)
                for k in -radius...radius {
                    let xx = min(max(x + k, 0), w - 1)
                    let kv = kernel[k + radius], i = (y * w + xx) * 3
                    acc.0 += kv * src[i]
                    acc.1 += kv * src[i + 1]
                    acc.2 += kv * src[i + 2]
                }
                let o = (y * w + x) * 3
                tmp[o] = acc.0
                tmp[o + 1] = acc.1
                tmp[o + 2] = acc.2
            }
        }
        for y in 0..<h {
            for x in 0..<w {
                var acc: (Float, Float, Float) = (0, 0, 0)
                for k in -radius...radius {
                    let yy = min(max(y + k, 0), h - 1)
                    let kv = kernel[k + radius], i = (yy * w + x) * 3
                    acc.0 += kv * tmp[i]
                    acc.1 += kv * tmp[i + 1]
                    acc.2 += kv * tmp[i + 2]
                }
                let o = (y * w + x) * 3
                out[o] = acc.0
                out[o + 1] = acc.1
                out[o + 2] = acc.2
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// Adds independent Gaussian noise of standard deviation `sigma` to every component, clamped to
    /// [0, 1].
    public static func gaussianNoise(_ image: RGBImage, sigma: Double, rng: inout SplitMix64)
        -> RGBImage
    {
        var out = image
        for i in out.pixels.indices {
            out.pixels[i] = min(1, max(0, out.pixels[i] + Float(sigma * rng.normal())))
        }
        return out
    }

    /// Scales each channel of the whole image by an independent factor in `1 ± amount`.
    /// (Per-object jitter is a renderer option, `RenderOptions.colorJitter`.)
    public static func colorJitter(_ image: RGBImage, amount: Double, rng: inout SplitMix64)
        -> RGBImage
    {
        let gains = (0..<3).map { _ in Float(rng.uniform(1 - amount, 1 + amount)) }
        var out = image
        for i in out.pixels.indices {
            out.pixels[i] = min(1, max(0, out.pixels[i] * gains[i % 3]))
        }
        return out
    }

    /// Down-samples by `factor` (area average) and up-samples back (bilinear).
    public static func downUpSample(_ image: RGBImage, factor: Int = 2) -> RGBImage {
        let small = image.resized(width: image.width / factor, height: image.height / factor)
        return small.resized(width: image.width, height: image.height)
    }

    /// All degradations of the accuracy bar at once, in the order a generated image suffers them:
    /// whole-image colour jitter ±`jitter`, Gaussian blur σ = `blurSigma`, 2× down-up-sampling,
    /// Gaussian noise σ = `noiseSigma`. Combine with `RenderOptions.colorJitter` for per-object
    /// colour jitter.
    public static func standard(
        _ image: RGBImage, rng: inout SplitMix64, blurSigma: Double = 1, noiseSigma: Double = 0.05,
        jitter: Double = 0.08
    ) -> RGBImage {
        var out = colorJitter(image, amount: jitter, rng: &rng)
        out = gaussianBlur(out, sigma: blurSigma)
        out = downUpSample(out, factor: 2)
        return gaussianNoise(out, sigma: noiseSigma, rng: &rng)
    }
}
