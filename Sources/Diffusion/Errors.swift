/// Errors from the diffusion library that are not about model files (those are `ModelError`): impossible
/// sampling arguments, components of a pipeline that do not fit together, inputs out of range.
public enum DiffusionError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidArgument(String)
    /// The components of a pipeline folder do not fit together (an SDXL UNet under an SD
    /// `model_index.json`, a text encoder narrower than the UNet's cross-attention).
    case incompatibleComponents(folder: String, message: String)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        case .incompatibleComponents(let folder, let message): return "\(folder): \(message)"
        }
    }
}
