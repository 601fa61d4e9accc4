import ArgumentParser
import Diffusion
import Foundation
import ShapeWorld
import Torch

/// Where the embedded default model lives: `Models/shapeworld-sd` in the working directory or in the
/// checkout that holds this executable.
func defaultModelFolder() -> String? {
    locateInCheckout("Models/shapeworld-sd") { FileManager.default.fileExists(atPath: $0 + "/model_index.json") }
}

/// `relative` under the working directory, or under one of the five folders above the binary (a
/// checkout's `.build/release/promptloop`, however it is called) — the first where `present` holds.
func locateInCheckout(_ relative: String, present: (String) -> Bool) -> String? {
    var candidates = [FileManager.default.currentDirectoryPath + "/" + relative]
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<5 {
        candidates.append(dir.appendingPathComponent(relative).path)
        dir = dir.deletingLastPathComponent()
    }
    return candidates.first(where: present)
}

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
            from the 0-based step STEP on, for every image of the batch.
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
        guard let folder = model ?? defaultModelFolder() else {
            throw CLIError("no --model given and the embedded default model (Models/shapeworld-sd) is not "
                + "in this checkout yet; pass --model DIR with a diffusers pipeline folder")
        }
        let text = positionalPrompt ?? prompt!
        let pipeline = try StableDiffusionPipeline.load(
            folder: folder, options: LoadOptions(dtype: DType(name: dtype)!, device: device, variant: variant),
            scheduler: scheduler)
        if pipeline.usedFallbackScheduler {
            warn("the folder's scheduler is not supported; using DDIM with its noise schedule (pick one with --scheduler)")
        }
        let schedule = try parsedSchedule().mapValues { Array(repeating: Optional($0), count: batch) }
        let start = Date()
        let result = try pipeline.sample(
            prompts: Array(repeating: text, count: batch),
            negativePrompts: negativePrompt.map { Array(repeating: $0, count: batch) },
            options: SamplingOptions(steps: steps, guidance: guidance, guidanceRescale: guidanceRescale,
                                     height: height, width: width, seed: seed),
            schedule: schedule,
            progress: quiet ? nil : { done, total in progressBar(done, total, since: start) })
        for prompt in pipeline.truncatedPrompts {
            warn("prompt truncated to the text encoder's maximum length: \"\(prompt.prefix(60))…\"")
        }
        let images = pipeline.decode(result.latents)
        let paths = outputPaths(count: batch)
        let (h, w) = (images.size(2), images.size(3))
        // ShapeEval's verdict when the prompt speaks ShapeWorld's language (every word known to its
        // parser, at least one object): the embedded model's reward and metric.
        let parsed = PromptParser().parse(text)
        let scorable = parsed.unknownWords.isEmpty && !parsed.constraints.objects.isEmpty
        for (i, path) in paths.enumerated() {
            let planar = images[i].contiguous().toArray(Float.self)
            let image = RGBImage(width: w, height: h, planar: planar)
            try PNG.write(image, to: path)
            guard scorable else {
                print(path)
                continue
            }
            let verdict = ShapeEval().score(image, parsed.constraints)
            let passed = verdict.constraints.filter(\.passed).count
            let failed = verdict.constraints.filter { !$0.passed }.map(\.description)
            print("\(path)  ShapeEval: strict \(Int(verdict.strict)), soft \(String(format: "%.2f", verdict.soft)) "
                + "(\(passed)/\(verdict.constraints.count) constraints)"
                + (failed.isEmpty ? "" : "; failed: " + failed.joined(separator: "; ")))
        }
    }

    func outputPaths(count: Int) -> [String] {
        if count == 1 { return [out] }
        let stem = String(out.dropLast(4))
        return (0..<count).map { "\(stem)-\($0).png" }
    }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// A one-line progress bar on standard error.
func progressBar(_ done: Int, _ total: Int, since start: Date) {
    let width = 30
    let filled = total > 0 ? width * done / total : width
    let elapsed = Date().timeIntervalSince(start)
    let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    let line = String(format: "\r[%@] %d/%d  %.1fs elapsed, eta %.1fs", bar, done, total, elapsed, eta)
    FileHandle.standardError.write(Data(line.utf8))
    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
}
