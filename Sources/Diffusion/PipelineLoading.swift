import Foundation
import TorchNN
import Torch

/// `model_index.json` of a diffusers pipeline folder.
public struct ModelIndex: Decodable, Sendable {
    public var className: String
    public var components: [String: [String]]
    public var forceZerosForEmptyPrompt: Bool?

    enum Keys: String, CodingKey {
        case className = "_class_name", forceZeros = "force_zeros_for_empty_prompt"
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        className = try c.decode(String.self, forKey: .className)
        forceZerosForEmptyPrompt = try c.decodeIfPresent(Bool.self, forKey: .forceZeros)
        let all = try decoder.container(keyedBy: AnyKey.self)
        var components: [String: [String]] = [:]
        for key in all.allKeys where !key.stringValue.hasPrefix("_") {
            if let pair = try? all.decode([String?].self, forKey: key), pair.count == 2, let lib = pair[0], let cls = pair[1] {
                components[key.stringValue] = [lib, cls]
            }
        }
        self.components = components
    }

    /// SD (1.x / 2.x) or SDXL, from `_class_name`.
    public func kind(file: String) throws -> StableDiffusionPipeline.Kind {
        switch className {
        case "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline": return .sd
        case "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline": return .sdxl
        default: throw ModelError.unsupported(file: file, field: "_class_name", value: className)
        }
    }
}

extension StableDiffusionPipeline {
    /// Loads a diffusers pipeline folder (`model_index.json`, `text_encoder[_2]/`, `tokenizer[_2]/`,
    /// `unet/`, `vae/`, `scheduler/`).
    ///
    /// - Parameters:
    ///   - tokenizer: builds the tokenizer for a `tokenizer*/` folder, given the text encoder's
    ///     maximum length (the pipeline target does not depend on a tokenizer implementation).
    ///   - scheduler: a scheduler kind (`ddim`, `ddpm`, `euler`, `euler-a`, `dpm`) overriding the
    ///     folder's; when nil and the folder's class is not supported, DDIM with the folder's
    ///     noise schedule is used and `usedFallbackScheduler` is set.
    public static func load(folder: String, options: LoadOptions = .init(), scheduler kindOverride: String? = nil,
                            tokenizer: (String, Int) throws -> PromptTokenizer = PipelineTokenizer.load)
        throws -> StableDiffusionPipeline
    {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelError.missingFile("model folder \(folder)")
        }
        let indexPath = (folder as NSString).appendingPathComponent("model_index.json")
        let index = try ModelFolder.config(ModelIndex.self, in: folder, name: "model_index.json")
        let kind = try index.kind(file: indexPath)
        func sub(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

        var encoders: [CLIPTextModel] = []
        var tokenizers: [PromptTokenizer] = []
        for (encoderName, tokenizerName) in kind == .sdxl
            ? [("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2")] : [("text_encoder", "tokenizer")] {
            let encoder = try CLIPTextModel.load(folder: sub(encoderName), options: options)
            encoders.append(encoder)
            tokenizers.append(try tokenizer(sub(tokenizerName), encoder.config.maxPositionEmbeddings))
        }
        let unet = try UNet2DConditionModel.load(folder: sub("unet"), options: options)
        // The VAE runs in float32 when its config asks for it (force_upcast), as diffusers does.
        var vaeOptions = options
        let vaeConfig = try ModelFolder.config(AutoencoderKLConfig.self, in: sub("vae"))
        if vaeConfig.forceUpcast { vaeOptions.dtype = .float32 }
        let vae = try AutoencoderKL.load(folder: sub("vae"), options: vaeOptions)

        let schedulerConfig = try ModelFolder.config(SchedulerConfig.self, in: sub("scheduler"),
                                                     name: "scheduler_config.json")
        try schedulerConfig.validate(file: sub("scheduler") + "/scheduler_config.json")
        let scheduler: Scheduler
        var fallback = false
        let schedulerPath = sub("scheduler") + "/scheduler_config.json"
        do {
            if let kindOverride {
                scheduler = try makeScheduler(schedulerConfig, kind: kindOverride)
            } else if let s = try? makeScheduler(schedulerConfig) {
                scheduler = s
            } else {
                scheduler = try makeScheduler(schedulerConfig, kind: "ddim")
                fallback = true
            }
        } catch let error as ModelError {
            // The schedulers name their file without its folder.
            throw error.located(at: schedulerPath)
        }
        let pipeline = try StableDiffusionPipeline(kind: kind, textEncoders: encoders, tokenizers: tokenizers,
                                                   unet: unet, vae: vae, scheduler: scheduler, folder: folder)
        pipeline.forceZerosForEmptyPrompt = index.forceZerosForEmptyPrompt ?? (kind == .sdxl)
        pipeline.usedFallbackScheduler = fallback
        return pipeline
    }
}
