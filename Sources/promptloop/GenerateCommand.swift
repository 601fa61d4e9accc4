import ArgumentParser
import Diffusion
import Foundation
import Imaging
import PromptLoop
import ShapeWorld
import Torch
import TorchNN

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate images with a Stable Diffusion (1.x/2.x/SDXL) diffusers folder.",
        discussion: """
            Without --model it uses the embedded miniature (Models/shapeworld-sd) and prints ShapeEval's \
            verdict for each image whenever the prompt is in ShapeWorld's vocabulary. \
            The pipeline kind comes from the folder's model_index.json. Initial noise is drawn on the \
            CPU from --seed as diffusers draws it, so the same folder, seed, scheduler, steps and \
            guidance give diffusers' image. --prompt-at STEP:PROMPT (repeatable) switches to PROMPT \
            from the 0-based step STEP on, for every image of the batch. An empty prompt is \
            unconditional; a prompt longer than the text encoder takes is cut, with a warning.
            """)

    @Argument(help: "The prompt (or use --prompt).")
    var positionalPrompt: String?

    @Option(help: "The prompt.")
    var prompt: String?

    @Option(help: "Diffusers pipeline folder (default: the embedded model, Models/shapeworld-sd).")
    var model: String?

    @Option(help: "Negative prompt (default: empty; SDXL: zero embeddings).")
    var negativePrompt: String?

    @Option(help: "Denoising steps.")
    var steps = 20

    @Option(help: "Classifier-free guidance scale (≤ 1 turns guidance off).")
    var guidance = 7.5

    @Option(help: "Guidance rescale (0 = off).")
    var guidanceRescale = 0.0

    @Option(help: "Scheduler: ddim, ddpm, euler, euler-a or dpm (default: the folder's).")
    var scheduler: String?

    @Option(help: "Random seed for the initial noise.")
    var seed: UInt64 = 0

    @Option(help: "Image height in pixels (default: the model's).")
    var height: Int?

    @Option(help: "Image width in pixels (default: the model's).")
    var width: Int?

    @Option(help: "Images to generate.")
    var batch = 1

    @Option(name: .customLong("prompt-at"), help: "STEP:PROMPT — use PROMPT from 0-based step STEP on (repeatable).")
    var promptAt: [String] = []

    @Option(help: "Output PNG (a batch writes NAME-0.png, NAME-1.png, …).")
    var out = "out.png"

    @Option(help: "Device: cpu, cuda or cuda:N.")
    var device = "cpu"

    @Option(help: "Weight dtype: float32, float16 or bfloat16.")
    var dtype = "float32"

    @Option(help: "Weight file variant (e.g. fp16).")
    var variant: String?

    @Flag(help: "Print no progress bar.")
    var quiet = false

    func validate() throws {
        guard (positionalPrompt ?? prompt) != nil else { throw ValidationError("give a prompt (argument or --prompt)") }
        if positionalPrompt != nil && prompt != nil { throw ValidationError("give the prompt once, not both ways") }
        guard steps > 0 else { throw ValidationError("--steps must be positive") }
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        if let height, height <= 0 { throw ValidationError("--height must be positive") }
        if let width, width <= 0 { throw ValidationError("--width must be positive") }
        guard guidance.isFinite, guidanceRescale.isFinite, (0...1).contains(guidanceRescale) else {
            throw ValidationError("--guidance must be finite and --guidance-rescale in [0, 1]")
        }
        if let s = scheduler, !["ddim", "ddpm", "euler", "euler-a", "dpm"].contains(s) {
            throw ValidationError("unknown --scheduler \(s): use ddim, ddpm, euler, euler-a or dpm")
        }
        guard DType(name: dtype).map({ [.float32, .float16, .bfloat16].contains($0) }) == true else {
            throw ValidationError("--dtype must be float32, float16 or bfloat16")
        }
        _ = try parsedSchedule()
        guard out.lowercased().hasSuffix(".png") else { throw ValidationError("--out must name a .png file") }
    }

    func parsedSchedule() throws -> [Int: String] {
        var schedule: [Int: String] = [:]
        for item in promptAt {
            guard let colon = item.firstIndex(of: ":"), let step = Int(item[..<colon]), step >= 0 else {
                throw ValidationError("--prompt-at wants STEP:PROMPT with a step ≥ 0, got `\(item)`")
            }
            guard step < steps else { throw ValidationError("--prompt-at step \(step) is past the last step \(steps - 1)") }
            schedule[step] = String(item[item.index(after: colon)...])
        }
        return schedule
    }

    func run() throws {
        let device = try Device(parsing: self.device)
        try device.validate()
        guard let folder = model ?? EmbeddedModels.diffusion else {
            throw CLIError("no --model given and the embedded default model (Models/shapeworld-sd) is not "
                + "in this checkout; pass --model DIR with a diffusers pipeline folder")
        }
        let text = positionalPrompt ?? prompt ?? ""
        let pipeline = try StableDiffusionPipeline.load(
            folder: folder, options: LoadOptions(dtype: DType(name: dtype) ?? .float32, device: device, variant: variant),
            scheduler: scheduler)
        if pipeline.usedFallbackScheduler {
            warn("the folder's scheduler is not supported; using DDIM with its noise schedule (pick one with --scheduler)")
        }
        let start = Date()
        let result = try pipeline.sample(
            prompts: Array(repeating: text, count: batch),
            negativePrompts: negativePrompt.map { Array(repeating: $0, count: batch) },
            options: SamplingOptions(steps: steps, guidance: guidance, guidanceRescale: guidanceRescale,
                                     height: height, width: width, seed: seed),
            schedule: try parsedSchedule().mapValues { Array(repeating: Optional($0), count: batch) },
            progress: quiet ? nil : { done, total in progressBar(done, total, since: start) })
        for prompt in pipeline.truncatedPrompts {
            warn("prompt truncated to the text encoder's maximum length: \"\(prompt.prefix(60))…\"")
        }
        // ShapeEval's verdict when the prompt speaks ShapeWorld's language: the embedded model's reward.
        let constraints = PromptParser().scorableConstraints(text)
        for (path, image) in zip(outputPaths(count: batch), pipeline.decodeImages(result.latents)) {
            try PNG.write(image, to: path)
            if let constraints {
                print("\(path)  ShapeEval: \(ShapeEval().score(image, constraints).summary)")
            } else {
                print(path)
            }
        }
    }

    func outputPaths(count: Int) -> [String] {
        if count == 1 { return [out] }
        let stem = String(out.dropLast(4))
        return (0..<count).map { "\(stem)-\($0).png" }
    }
}
