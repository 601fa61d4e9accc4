import ArgumentParser
import Diffusion
import Foundation
import Torch
import TorchNN

/// Sampling speed against diffusers on the same weights and machine.
struct BenchDiffusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "20-step CFG sampling on a tiny SD1.5-like pipeline and one SD1.5-sized UNet forward, vs diffusers.",
        discussion: """
            The tiny pipeline is the parity fixture (Tests/DiffusionTests/Fixtures/tiny-sd). The \
            SD1.5-sized UNet has random weights (timings do not depend on weight values); both sides \
            build it from the same config. The diffusers reference runs in a subprocess of this \
            command with the Python given by --python (default .deps/pyref/bin/python).
            """)

    @Option(help: "Tiny pipeline folder.")
    var tiny = "Tests/DiffusionTests/Fixtures/tiny-sd"

    @Option(help: "Sampling runs to time (the best is reported).")
    var trials = 3

    @Option(help: "Batch size of the sampling benchmark.")
    var batch = 4

    @Option(help: "Denoising steps of the sampling benchmark.")
    var steps = 20

    @Flag(help: "Skip the SD1.5-sized UNet forward (needs ~4 GB and a minute to build).")
    var skipLarge = false

    @Option(help: "Python interpreter with torch and diffusers.")
    var python: String?

    func run() throws {
        let swiftTiny = try timeTinySampling()
        let swiftLarge = skipLarge ? nil : try timeLargeUNet()
        let reference = runPython()
        print("machine: \(ProcessInfo.processInfo.processorCount) cores, libtorch threads \(Threads.count)")
        print(String(format: "tiny SD1.5-like, %d steps, CFG, batch %d:  swift %.3f s", steps, batch, swiftTiny), terminator: "")
        if let py = reference["tiny"] {
            print(String(format: ", diffusers %.3f s, speed-up %.2f× (goal ≥ 1.3×)", py, py / swiftTiny))
        } else { print() }
        if let swiftLarge {
            print(String(format: "SD1.5-sized UNet forward, 64×64 latents, batch 2:  swift %.3f s", swiftLarge), terminator: "")
            if let py = reference["large"] {
                print(String(format: ", diffusers %.3f s, ratio %.2f (goal ≤ 1.10)", py, swiftLarge / py))
            } else { print() }
        }
        if reference.isEmpty { print("diffusers reference unavailable (run scripts/fixtures/setup-python or pass --python)") }
    }

    struct FixedTokenizer: PromptTokenizer {
        let maxLength = 77
        func tokenize(_ text: String) -> (ids: [Int], truncated: Bool) {
            ([998] + Array(repeating: 999, count: 76), false)
        }
    }

    func timeTinySampling() throws -> Double {
        let pipe = try StableDiffusionPipeline.load(folder: tiny, scheduler: "ddim") { _, _ in FixedTokenizer() }
        let text = pipe.textEncoders[0].config
        guard text.vocabSize >= 1000, text.maxPositionEmbeddings >= 77 else {
            throw CLIError("--tiny \(tiny): this benchmark feeds the tiny fixture's made-up token ids (998, 999; 77 "
                + "positions), which this text encoder (\(text.vocabSize) tokens, \(text.maxPositionEmbeddings) positions) "
                + "does not have; time a real pipeline folder with `promptloop bench generate --model`")
        }
        let options = SamplingOptions(steps: steps, guidance: 7.5, height: 16, width: 16, seed: 0)
        _ = try pipe.sample(prompts: Array(repeating: "a", count: batch), options: options)
        var best = Double.infinity
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try pipe.sample(prompts: Array(repeating: "a", count: batch), options: options)
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    static let sd15Config = """
        {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
         "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "attention_head_dim": 8,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}
        """

    func timeLargeUNet() throws -> Double {
        let config = try JSONDecoder().decode(UNet2DConditionConfig.self, from: Data(Self.sd15Config.utf8))
        let store = try ParameterStore(seed: 0)
        let unet = try UNet2DConditionModel(config: config, path: store.root)
        store.freeze()
        let g = try Generator(seed: 0)
        let x = Tensor.randn([2, 4, 64, 64], generator: g)
        let context = Tensor.randn([2, 77, 768], generator: g)
        let t = Tensor(scalar: Int64(500))
        _ = withNoGrad { unet(x, timestep: t, context: context) }
        var best = Double.infinity
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = withNoGrad { unet(x, timestep: t, context: context) }
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    func runPython() -> [String: Double] {
        let script = """
            import sys, time, json, torch
            from diffusers import StableDiffusionPipeline, UNet2DConditionModel, DDIMScheduler, AutoencoderKL
            from transformers import CLIPTextModel
            folder, steps, batch, trials, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
            te = CLIPTextModel.from_pretrained(folder + "/text_encoder").eval()
            unet = UNet2DConditionModel.from_pretrained(folder + "/unet").eval()
            vae = AutoencoderKL.from_pretrained(folder + "/vae").eval()
            sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
            pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=None, unet=unet, scheduler=sched, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            ids = torch.tensor([[998] + [999] * 76])
            def run():
                with torch.no_grad():
                    emb = te(ids)[0].repeat(batch, 1, 1)
                    neg = te(ids)[0].repeat(batch, 1, 1)
                    pipe(prompt_embeds=emb, negative_prompt_embeds=neg, num_inference_steps=steps, guidance_scale=7.5, height=16, width=16, generator=torch.Generator().manual_seed(0), output_type="latent")
            run()
            best = 1e9
            for _ in range(trials):
                t = time.perf_counter(); run(); best = min(best, time.perf_counter() - t)
            out = {"tiny": best}
            if large:
                cfg = json.loads(sys.argv[6])
                u = UNet2DConditionModel(**cfg).eval()
                g = torch.Generator().manual_seed(0)
                x = torch.randn(2, 4, 64, 64, generator=g); c = torch.randn(2, 77, 768, generator=g)
                with torch.no_grad():
                    u(x, 500, c)
                    best = 1e9
                    for _ in range(trials):
                        t = time.perf_counter(); u(x, 500, c); best = min(best, time.perf_counter() - t)
                out["large"] = best
            print(json.dumps(out))
            """
        return referenceNumbers(runReferencePython(python, fallback: "false", script: script, arguments: [
            tiny, String(steps), String(batch), String(trials), skipLarge ? "0" : "1", Self.sd15Config,
        ]))
    }
}
