/// Every error the Imaging target throws; each message names the file or the image at fault.
public enum ImagingError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A file could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file could not be written.
    case unwritableFile(path: String, reason: String)
    /// The bytes are not a PNG image libpng can decode.
    case invalidPNG(source: String, reason: String)
    /// An image has a size the operation cannot handle.
    case invalidImageSize(width: Int, height: Int, reason: String)
    /// A plot was given nothing it can draw (no finite point, mismatched series).
    case invalidPlot(String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason): return "cannot read '\(path)': \(reason)"
        case .unwritableFile(let path, let reason): return "cannot write '\(path)': \(reason)"
        case .invalidPNG(let source, let reason): return "'\(source)' is not a readable PNG image: \(reason)"
        case .invalidImageSize(let width, let height, let reason):
            return "image of size \(width)×\(height) is invalid: \(reason)"
        case .invalidPlot(let message): return "cannot draw the plot: \(message)"
        }
    }
}
