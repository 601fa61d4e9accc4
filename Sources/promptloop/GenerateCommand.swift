import ArgumentParser
import Diffusion
import Foundation
import Imaging
import PromptLoop
import ShapeWorld
import Torch
import TorchNN
import VisionLanguage

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

            PromptLoop: --refine N lets the policy (default Models/shapeworld-policy) rewrite the prompt \
            N times during sampling. In the closed loop (default) it sees the decoded x̂₀ after steps \
            ⌊i·W/N⌋ (W = --refine-window × steps) and its prompt is used from the next step on; \
            --mode open writes all N prompts before sampling without images; --mode feed-forward \
            rewrites the query once before sampling. With the embedded policy the shipped GRPO adapter \
            acts too (--adapter none: the pretrained policy alone). The prompt of every refinement is printed above \
            each image's line; ShapeEval always scores against your prompt, not the rewrites.
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

    @Option(help: ArgumentHelp("A UNet LoRA folder in diffusers' format (pytorch_lora_weights.safetensors, as "
        + "`pipe.save_lora_weights` writes and `pipe.load_lora_weights` reads) to apply.", valueName: "dir"))
    var unetLora: String?

    @Flag(help: "Print no progress bar.")
    var quiet = false

    @Option(help: "PromptLoop: refinements of the prompt by the policy during sampling (0: plain sampling).")
    var refine = 0

    @Option(help: "closed (the policy sees x̂₀), open (prompts written before sampling) or feed-forward (one rewrite).")
    var mode = "closed"

    @Option(help: "Policy: a transformers LLaVA folder (default: the embedded Models/shapeworld-policy).")
    var policy: String?

    @Option(help: ArgumentHelp("PEFT adapter on the policy: a folder, or `none` for the policy alone.",
                               discussion: "Default: the shipped GRPO adapter (Models/shapeworld-policy/adapters/promptloop) "
                                   + "when the policy is the embedded one."))
    var adapter: String?

    @Option(help: "Spread the refinements over this fraction of the steps (1: equal intervals over all).")
    var refineWindow = 1.0

    @Option(help: "Tokens per policy reply at most.")
    var policyMaxTokens = 48

    @Option(help: "Write the x̂₀ frame of every refinement and an HTML page (frames beside prompts) here.")
    var trajectory: String?

    var rolloutMode: RolloutMode? {
        if mode == "feed-forward" { return .feedForward }
        return refine > 0 ? RolloutMode(rawValue: mode) : nil
    }

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
        guard refine >= 0 else { throw ValidationError("--refine must not be negative") }
        guard ["closed", "open", "feed-forward"].contains(mode) else {
            throw ValidationError("unknown --mode \(mode): use closed, open or feed-forward")
        }
        guard refineWindow > 0, refineWindow <= 1 else { throw ValidationError("--refine-window must be in (0, 1]") }
        guard policyMaxTokens > 0 else { throw ValidationError("--policy-max-tokens must be positive") }
        if rolloutMode != nil && !promptAt.isEmpty {
            throw ValidationError("--prompt-at and a refining --mode/--refine both set the prompt: use one")
        }
        if adapter != nil && rolloutMode == nil { throw ValidationError("--adapter needs --refine N or --mode feed-forward") }
        if trajectory != nil && rolloutMode == nil { throw ValidationError("--trajectory needs --refine N or --mode feed-forward") }
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

    @OptionGroup var threadOption: ThreadOption

    func run() throws {
        threadOption.apply()
        let device = try Device(parsing: self.device)
        try device.validate()
        guard let folder = model ?? EmbeddedModels.diffusion else {
            throw CLIError("no --model given and the embedded default model (Models/shapeworld-sd) is not "
                + "in this checkout; pass --model DIR with a diffusers pipeline folder")
        }
        let text = positionalPrompt ?? prompt ?? ""
        let pipeline = try StableDiffusionPipeline.load(
            folder: folder, options: LoadOptions(dtype: DType(name: dtype) ?? .float32, device: device, variant: variant,
                                                 unetLoRA: unetLora),
            scheduler: scheduler)
        if pipeline.usedFallbackScheduler {
            warn("the folder's scheduler is not supported; using DDIM with its noise schedule (pick one with --scheduler)")
        }
        let start = Date()
        let options = SamplingOptions(steps: steps, guidance: guidance, guidanceRescale: guidanceRescale,
                                      height: height, width: width, seed: seed)
        let bar: ((Int, Int) -> Void)? = quiet ? nil : { done, total in progressBar(done, total, since: start) }
        let latents: Tensor
        var rollout: RolloutResult?
        if let rolloutMode {
            let agent = LlavaPolicy(chat: try EmbeddedModels.loadPolicy(folder: policy, adapter: adapter, device: device),
                                    sampling: SamplingConfig(greedy: true, maxNewTokens: policyMaxTokens))
            let refinements = RefinementSteps.equalIntervals(count: refine, steps: steps, window: refineWindow)
            let r = try RolloutEngine(pipeline: pipeline, policy: agent, mode: rolloutMode)
                .run(queries: Array(repeating: text, count: batch), refinements: [refinements], options: options,
                     negativePrompts: negativePrompt.map { Array(repeating: $0, count: batch) }, progress: bar)
            latents = r.latents
            rollout = r
        } else {
            latents = try pipeline.sample(
                prompts: Array(repeating: text, count: batch),
                negativePrompts: negativePrompt.map { Array(repeating: $0, count: batch) }, options: options,
                schedule: try parsedSchedule().mapValues { Array(repeating: Optional($0), count: batch) },
                progress: bar).latents
        }
        for prompt in pipeline.truncatedPrompts {
            warn("prompt truncated to the text encoder's maximum length: \"\(prompt.prefix(60))…\"")
        }
        // ShapeEval's verdict when the prompt speaks ShapeWorld's language: the embedded model's reward.
        let constraints = PromptParser().scorableConstraints(text)
        var verdicts: [String?] = []
        for (i, (path, image)) in zip(outputPaths(count: batch), pipeline.decodeImages(latents)).enumerated() {
            try PNG.write(image, to: path)
            for action in rollout?.trajectories[i].actions ?? [] {
                let when = action.state.step < 0 ? "before sampling" : "after step \(action.state.step)"
                print("  \(when): \(action.valid ? "" : "(invalid reply, kept) ")\(action.prompt)")
            }
            let verdict = constraints.map { ShapeEval().score(image, $0).summary }
            verdicts.append(verdict)
            print(verdict.map { "\(path)  ShapeEval: \($0)" } ?? path)
        }
        if let trajectory, let rollout {
            try TrajectoryPage.write(rollout, to: trajectory, verdicts: verdicts)
            print("trajectory: \(trajectory)/index.html")
        }
    }

    func outputPaths(count: Int) -> [String] {
        if count == 1 { return [out] }
        let stem = String(out.dropLast(4))
        return (0..<count).map { "\(stem)-\($0).png" }
    }
}
