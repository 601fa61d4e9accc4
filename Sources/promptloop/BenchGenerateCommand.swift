import ArgumentParser
import Diffusion
import Foundation
import PromptLoop
import Torch

/// End-to-end image generation throughput of a diffusers folder, against diffusers on the same folder.
struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Images/s of `generate` (batch 8, 20 DDIM steps, CFG, VAE decode) vs diffusers on the same folder.")

    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var model: String?

    @Option(help: "Images per batch.")
    var batch = 8

    @Option(help: "Denoising steps.")
    var steps = 20

    @Option(help: "Timed runs (the best is reported).")
    var trials = 3

    @Option(help: "Python interpreter with torch and diffusers.")
    var python: String?

    static let prompt = "two red circles left of a blue square"

    func run() throws {
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: "ddim")
        let options = SamplingOptions(steps: steps, guidance: 5, seed: 0)
        func once() throws {
            let out = try pipeline.sample(prompts: Array(repeating: Self.prompt, count: batch), options: options)
            _ = pipeline.decode(out.latents)
        }
        try once()
        var best = Double.infinity
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            try once()
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let script = """
            import sys, time, json, torch
            from diffusers import StableDiffusionPipeline, DDIMScheduler
            folder, batch, steps, trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
            pipe = StableDiffusionPipeline.from_pretrained(folder)
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
            pipe.set_progress_bar_config(disable=True)
            def once():
                with torch.no_grad():
                    pipe(sys.argv[5], num_images_per_prompt=batch, num_inference_steps=steps, guidance_scale=5.0,
                         generator=torch.Generator().manual_seed(0), output_type="np")
            once()
            best = 1e9
            for _ in range(trials):
                t = time.perf_counter(); once(); best = min(best, time.perf_counter() - t)
            print(json.dumps({"seconds": best}))
            """
        let reference = referenceNumbers(runReferencePython(python, fallback: "false", script: script, arguments: [
            folder, String(batch), String(steps), String(trials), Self.prompt,
        ]))
        print("machine: \(ProcessInfo.processInfo.processorCount) cores, libtorch threads \(Threads.count)")
        var line = String(format: "%@: batch %d, %d DDIM steps, CFG 5, with VAE decode: swift %.2f images/s (%.2f s)",
                          (folder as NSString).lastPathComponent, batch, steps, Double(batch) / best, best)
        if let py = reference["seconds"] {
            line += String(format: ", diffusers %.2f images/s, %.2f× faster", Double(batch) / py, py / best)
        }
        print(line)
    }
}
