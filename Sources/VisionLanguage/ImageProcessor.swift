// Mirrors transformers CLIPImageProcessor (transformers 5.24.0): resize the shortest edge, centre
// crop, rescale, normalise — on tensors, so x̂₀ from the diffusion pipeline needs no PNG round trip.
import Foundation
import TorchNN
import Torch

/// `preprocessor_config.json` of a CLIP-style image processor.
public struct ImageProcessorConfig: Codable, Sendable {
    public struct Size: Codable, Sendable {
        public var shortestEdge: Int?
        public var height: Int?
        public var width: Int?

        enum CodingKeys: String, CodingKey {
            case shortestEdge = "shortest_edge", height, width
        }
    }

    public var doResize = true
    public var size = Size(shortestEdge: 224)
    public var resample = 3
    public var doCenterCrop = true
    public var cropSize = Size(height: 224, width: 224)
    public var doRescale = true
    public var rescaleFactor = 1.0 / 255
    public var doNormalize = true
    public var imageMean = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd = [0.26862954, 0.26130258, 0.27577711]

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample, doCenterCrop = "do_center_crop", cropSize = "crop_size"
        case doRescale = "do_rescale", rescaleFactor = "rescale_factor", doNormalize = "do_normalize"
        case imageMean = "image_mean", imageStd = "image_std"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ImageProcessorConfig()
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? d.doResize
        size = try c.decodeIfPresent(Size.self, forKey: .size) ?? d.size
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? d.resample
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? d.doCenterCrop
        cropSize = try c.decodeIfPresent(Size.self, forKey: .cropSize) ?? d.cropSize
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? d.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? d.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? d.doNormalize
        imageMean = try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? d.imageMean
        imageStd = try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? d.imageStd
    }
}

/// Turns images into the vision tower's normalised pixels.
public struct ImageProcessor: Sendable {
    public let config: ImageProcessorConfig

    public init(config: ImageProcessorConfig) throws {
        guard [2, 3].contains(config.resample) else {
            throw ModelError.unsupported(file: "preprocessor_config.json", field: "resample",
                                         value: "\(config.resample) (bilinear 2 and bicubic 3 are)")
        }
        let range = ConfigRange(file: "preprocessor_config.json")
        for (field, value) in [("size.shortest_edge", config.size.shortestEdge), ("size.height", config.size.height),
                               ("size.width", config.size.width), ("crop_size.height", config.cropSize.height),
                               ("crop_size.width", config.cropSize.width)] {
            if let value { try range.count(field, value, 1...4096) }
        }
        try range.real("rescale_factor", config.rescaleFactor, above: 0, atMost: 1)
        for (i, v) in config.imageMean.enumerated() { try range.real("image_mean[\(i)]", v, atLeast: -1e3, atMost: 1e3) }
        for (i, v) in config.imageStd.enumerated() { try range.real("image_std[\(i)]", v, above: 0, atMost: 1e3) }
        guard config.imageMean.count == 3, config.imageStd.count == 3, config.imageStd.allSatisfy({ $0 > 0 }) else {
            throw ModelError.badConfig(file: "preprocessor_config.json",
                                       message: "image_mean and image_std need three values, std > 0")
        }
        self.config = config
    }

    public static func load(folder: String) throws -> ImageProcessor {
        try ImageProcessor(config: ModelFolder.config(ImageProcessorConfig.self, in: folder,
                                                      name: "preprocessor_config.json"))
    }

    /// Output size of the shortest-edge resize (`get_resize_output_image_size`, not square).
    func resizedSize(height h: Int, width w: Int) -> (Int, Int) {
        if let s = config.size.shortestEdge {
            let (short, long) = (Swift.min(h, w), Swift.max(h, w))
            let newLong = Int(Double(s) * Double(long) / Double(short))
            return h <= w ? (s, newLong) : (newLong, s)
        }
        return (config.size.height ?? h, config.size.width ?? w)
    }

    /// `images` `[B, 3, H, W]` with values in [0, 1] (a decoded x̂₀, or a PNG divided by 255) →
    /// normalised pixels `[B, 3, crop, crop]`. Resizing uses PyTorch's anti-aliased filters, which
    /// follow PIL's within a few 1/255 when shrinking.
    public func callAsFunction(_ images: Tensor) throws -> Tensor {
        guard images.rank == 4, images.size(1) == 3 else {
            throw VisionLanguageError.invalidArgument("images must be [B, 3, H, W], got \(images.shape)")
        }
        var x = images.to(.float32)
        if config.doResize {
            let (h, w) = resizedSize(height: x.size(2), width: x.size(3))
            if (h, w) != (x.size(2), x.size(3)) {
                x = x.interpolate(size: (h, w), mode: config.resample == 3 ? .bicubicAntialiased : .bilinearAntialiased)
                // PIL works on 8-bit images: clamp to the displayable range as its output would be.
                x = x.clamp(min: 0, max: 1)
            }
        }
        if config.doCenterCrop, let ch = config.cropSize.height, let cw = config.cropSize.width {
            let (h, w) = (x.size(2), x.size(3))
            guard h >= ch, w >= cw else {
                throw VisionLanguageError.invalidArgument("image \(h)×\(w) is smaller than the crop \(ch)×\(cw)")
            }
            x = x.narrow(dim: 2, start: (h - ch) / 2, length: ch).narrow(dim: 3, start: (w - cw) / 2, length: cw)
        }
        if !config.doRescale {
            // The processor expects 0…255 values when it does not rescale.
            x = x * 255
        }
        if config.doNormalize {
            let mean = Tensor(config.imageMean.map(Float.init), shape: [1, 3, 1, 1])
            let std = Tensor(config.imageStd.map(Float.init), shape: [1, 3, 1, 1])
            x = (x - mean) / std
        }
        return x.contiguous()
    }
}
