import Imaging
import Torch

extension RGBImage {
    /// An image from a `[3, H, W]` tensor with values in [0, 1] (clamped).
    public init(tensor: Tensor) {
        precondition(tensor.rank == 3 && tensor.size(0) == 3, "an image tensor is [3, H, W], got \(tensor.shape)")
        self.init(width: tensor.size(2), height: tensor.size(1),
                  planar: tensor.to(.float32).contiguous().toArray(Float.self))
    }
}

extension Tensor {
    /// Images of one size as a `[N, 3, H, W]` float32 batch with values mapped from [0, 1] to `range`.
    public static func images(_ images: [RGBImage], range: ClosedRange<Float> = -1...1) -> Tensor {
        precondition(!images.isEmpty, "no images")
        let (w, h) = (images[0].width, images[0].height)
        precondition(images.allSatisfy { $0.width == w && $0.height == h }, "images of different sizes")
        return Tensor(images.flatMap { $0.planar(range: range) }, shape: [images.count, 3, h, w])
    }
}

extension AutoencoderKL {
    /// Encodes (posterior mean) and decodes `images`: what of them the latent space keeps.
    public func roundTrip(_ images: [RGBImage]) -> [RGBImage] {
        let input = Tensor.images(images)
        let output = withNoGrad { (decode(encode(input).mean) / 2 + 0.5).clamp(min: 0, max: 1) }
        return (0..<images.count).map { RGBImage(tensor: output[$0]) }
    }
}
