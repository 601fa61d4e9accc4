// PNG reading and writing through libpng's simplified API.

import CPNG
import Foundation

/// PNG input and output for `RGBImage` (8-bit RGB), through libpng.
///
/// Reading accepts any PNG libpng decodes (grey, palette, 16-bit, alpha); transparency is composited
/// onto white.
///
/// ```swift
/// try PNG.write(image, to: "a.png")
/// let back = try PNG.read(from: "a.png")
/// ```
public enum PNG {
    /// Encodes `image` as an 8-bit RGB PNG.
    public static func encode(_ image: RGBImage) throws(ImagingError) -> [UInt8] {
        try encode(bytes: image.bytes, width: image.width, height: image.height, channels: 3)
    }

    /// Encodes 8-bit samples with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels.
    static func encode(bytes: [UInt8], width: Int, height: Int, channels: Int) throws(ImagingError)
        -> [UInt8]
    {
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        png.width = png_uint_32(width)
        png.height = png_uint_32(height)
        switch channels {
        case 1: png.format = png_uint_32(PNG_FORMAT_GRAY)
        case 2: png.format = png_uint_32(PNG_FORMAT_FLAG_ALPHA)
        case 4: png.format = png_uint_32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        default: png.format = png_uint_32(PNG_FORMAT_RGB)
        }
        var size: Int = 0
        let stride = Int32(width * channels)
        let sized = bytes.withUnsafeBytes { raw in
            png_image_write_to_memory(&png, nil, &size, 0, raw.baseAddress, stride, nil)
        }
        guard sized != 0, size > 0 else {
            throw .invalidPNG(source: "<encoder>", reason: message(&png))
        }
        var out = [UInt8](repeating: 0, count: size)
        let ok = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { raw in
                png_image_write_to_memory(&png, dst.baseAddress, &size, 0, raw.baseAddress, stride, nil)
            }
        }
        guard ok != 0 else { throw .invalidPNG(source: "<encoder>", reason: message(&png)) }
        return Array(out.prefix(size))
    }

    /// Decodes PNG bytes; `source` names them in errors.
    public static func decode(_ data: [UInt8], source: String = "<memory>") throws(ImagingError)
        -> RGBImage
    {
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        let began = data.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count)
        }
        guard began != 0 else { throw .invalidPNG(source: source, reason: message(&png)) }
        png.format = png_uint_32(PNG_FORMAT_RGB)
        let width = Int(png.width), height = Int(png.height)
        guard width > 0, height > 0, width * height <= 64_000_000 else {
            png_image_free(&png)
            throw .invalidPNG(source: source, reason: "unsupported dimensions \(width)×\(height) (at most 64 million pixels)")
        }
        var buffer = [UInt8](repeating: 0, count: width * height * 3)
        var white = png_color(red: 255, green: 255, blue: 255)
        let finished = data.withUnsafeBytes { _ in
            buffer.withUnsafeMutableBytes { dst in
                png_image_finish_read(&png, &white, dst.baseAddress, Int32(width * 3), nil)
            }
        }
        guard finished != 0 else {
            let reason = message(&png)
            png_image_free(&png)
            throw .invalidPNG(source: source, reason: reason)
        }
        return RGBImage(width: width, height: height, bytes: buffer)
    }

    /// Reads a PNG file.
    public static func read(from path: String) throws(ImagingError) -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw .unreadableFile(path: path, reason: exists ? "permission denied" : "no such file")
        }
        return try decode([UInt8](data), source: path)
    }

    /// Writes `image` to a PNG file.
    public static func write(_ image: RGBImage, to path: String) throws(ImagingError) {
        let bytes = try encode(image)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw .unwritableFile(path: path, reason: "could not create the file")
        }
    }

    static func message(_ png: inout png_image) -> String {
        withUnsafeBytes(of: &png.message) { raw in
            let chars = raw.prefix { $0 != 0 }
            let text = String(decoding: chars, as: UTF8.self)
            return text.isEmpty ? "libpng reported an error" : text
        }
    }
}
