// Speed measurements against a reference measured in the same run (PyTorch, diffusers,
// transformers in a Python subprocess); the `bench` commands print them. Benchmarks are not tests:
// nothing here asserts a time.
import Diffusion
import Foundation
import Imaging
import Torch
import TorchNN
import VisionLanguage

/// Runs Python reference scripts for the benchmarks.
public enum ReferencePython {
    /// Runs `script` with the reference Python (`--python`, else `.deps/pyref/bin/python`, else `fallback`)
    /// and returns its standard output, or nil when it cannot run (no interpreter, torch missing, error).
    public static func run(_ python: String?, fallback: String = "python3", script: String, arguments: [String]) -> String? {
        let interpreter: String
        if let python {
            interpreter = python
        } else {
            let local = FileManager.default.currentDirectoryPath + "/.deps/pyref/bin/python"
            interpreter = FileManager.default.isExecutableFile(atPath: local) ? local : fallback
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [interpreter, "-c", script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// The last line of a reference run, parsed as a JSON object of numbers.
    public static func numbers(_ output: String?) -> [String: Double] {
        guard let line = output?.split(separator: "\n").last,
              let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double] else { return [:] }
        return json
    }
}

/// Per-op overhead (Swift → shim → libtorch vs Python → PyTorch) and matmul throughput.
public struct OpsBenchmark {
    public var calls: Int
    public var trials: Int
    public var sizes: [Int]
    public var python: String?
    public var threads: Int?

    public init(calls: Int = 200_000, trials: Int = 7, sizes: [Int] = [256, 1024], python: String? = nil,
                threads: Int? = nil) {
        (self.calls, self.trials, self.sizes, self.python, self.threads) = (calls, trials, sizes, python, threads)
    }

    public struct Result {
        /// Nanoseconds per `a + b`: Swift, the loop inside C++, Python (nil without a reference).
        public var swiftAdd: Double
        public var nativeAdd: Double
        public var pythonAdd: Double?
        /// GFLOP/s per size: Swift and Python.
        public var swiftMatmul: [Double]
        public var pythonMatmul: [Int: Double]
    }

    public func run() throws -> Result {
        if let threads { Threads.count = threads }
        // Matmul first: after a million tiny-op calls, the first large matmuls ran slower (seen on
        // 2 cores), which would measure the allocator's state rather than the binding.
        let swiftMatmul = try sizes.map { try measureMatmul($0) }
        let swiftAdd = measureAdd()
        let native = measureNativeAdd()
        let reference = runPython()
        return Result(swiftAdd: swiftAdd, nativeAdd: native, pythonAdd: reference?.add, swiftMatmul: swiftMatmul,
                      pythonMatmul: reference?.matmul ?? [:])
    }

    /// Best nanoseconds per `a + b` call.
    func measureAdd() -> Double {
        let a = Tensor([1, 2, 3, 4] as [Float])
        let b = Tensor([5, 6, 7, 8] as [Float])
        for _ in 0..<1000 { _ = a + b }
        var samples: [Double] = []
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<calls { _ = a + b }
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls))
        }
        return samples.min()!
    }

    /// Best nanoseconds per `a + b` with the loop inside C++.
    func measureNativeAdd() -> Double {
        let a = Tensor([1, 2, 3, 4] as [Float])
        let b = Tensor([5, 6, 7, 8] as [Float])
        _ = TorchBenchmark.nativeAddNanoseconds(a, b, calls: 1000)
        return (0..<trials).map { _ in TorchBenchmark.nativeAddNanoseconds(a, b, calls: calls) }.min()!
    }

    /// Best GFLOP/s of an n×n by n×n matmul.
    func measureMatmul(_ n: Int) throws -> Double {
        let g = try Generator(seed: 0)
        let a = Tensor.randn([n, n], generator: g)
        let b = Tensor.randn([n, n], generator: g)
        _ = a.matmul(b)
        let reps = max(3, Int(2e9 / (2 * pow(Double(n), 3))))
        var samples: [Double] = []
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<reps { _ = a.matmul(b) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            samples.append(2 * pow(Double(n), 3) * Double(reps) / seconds / 1e9)
        }
        return samples.max()!
    }

    struct Reference {
        var add: Double
        var matmul: [Int: Double]
    }

    func runPython() -> Reference? {
        let script = """
            import sys, time, torch
            calls, trials, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
            if threads > 0: torch.set_num_threads(threads)
            g = torch.Generator().manual_seed(0)
            for n in map(int, sys.argv[4:]):
                x = torch.randn(n, n, generator=g); y = torch.randn(n, n, generator=g); x @ y
                reps = max(3, int(2e9 / (2 * n ** 3)))
                rates = []
                for _ in range(trials):
                    t = time.perf_counter()
                    for _ in range(reps): x @ y
                    rates.append(2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9)
                print("matmul", n, max(rates))
            a = torch.tensor([1., 2., 3., 4.]); b = torch.tensor([5., 6., 7., 8.])
            for _ in range(1000): a + b
            samples = []
            for _ in range(trials):
                t = time.perf_counter_ns()
                for _ in range(calls): a + b
                samples.append((time.perf_counter_ns() - t) / calls)
            print("add", min(samples))
            """
        guard let text = ReferencePython.run(python, script: script, arguments: [String(calls), String(trials),
                                                                                  String(threads ?? 0)] + sizes.map(String.init))
        else { return nil }
        var reference = Reference(add: 0, matmul: [:])
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.first == "add", parts.count == 2, let v = Double(parts[1]) { reference.add = v }
            if parts.first == "matmul", parts.count == 3, let n = Int(parts[1]), let v = Double(parts[2]) {
                reference.matmul[n] = v
            }
        }
        return reference.add > 0 ? reference : nil
    }
}

/// 20-step CFG sampling on a tiny SD1.5-like pipeline and one SD1.5-sized UNet forward, vs diffusers.
public struct DiffusionBenchmark {
    public var tiny: String
    public var trials: Int
    public var batch: Int
    public var steps: Int
    public var skipLarge: Bool
    public var python: String?

    public init(tiny: String, trials: Int = 3, batch: Int = 4, steps: Int = 20, skipLarge: Bool = false,
                python: String? = nil) {
        (self.tiny, self.trials, self.batch, self.steps, self.skipLarge, self.python) =
            (tiny, trials, batch, steps, skipLarge, python)
    }

    /// Seconds: Swift tiny sampling, Swift large UNet forward (nil when skipped), and the reference's
    /// `tiny` / `large` (absent without diffusers).
    public func run() throws -> (tiny: Double, large: Double?, reference: [String: Double]) {
        let swiftTiny = try timeTinySampling()
        let swiftLarge = skipLarge ? nil : try timeLargeUNet()
        return (swiftTiny, swiftLarge, runPython())
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
            throw DiffusionError.invalidArgument("--tiny \(tiny): this benchmark feeds the tiny fixture's made-up token ids (998, 999; 77 "
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
        return ReferencePython.numbers(ReferencePython.run(python, fallback: "false", script: script, arguments: [
            tiny, String(steps), String(batch), String(trials), skipLarge ? "0" : "1", Self.sd15Config,
        ]))
    }
}

/// Batched greedy generation tokens/s vs transformers' generate(): the tiny Qwen2 fixture and SmolLM2.
public struct LMBenchmark {
    public var tiny: String
    public var smolLM2: String?
    public var batch: Int
    public var tokens: Int
    public var trials: Int
    public var python: String?

    public init(tiny: String, smolLM2: String?, batch: Int = 8, tokens: Int = 32, trials: Int = 3,
                python: String? = nil) {
        (self.tiny, self.smolLM2, self.batch, self.tokens, self.trials, self.python) =
            (tiny, smolLM2, batch, tokens, trials, python)
    }

    /// Tokens/s: Swift tiny, Swift SmolLM2 (nil without it), and the reference's `tiny` / `smol`.
    public func run() throws -> (tiny: Double, smolLM2: Double?, reference: [String: Double]) {
        let swiftTiny = try time(try CausalLM.load(folder: tiny))
        let swiftSmol = try smolLM2.map { try time(try CausalLM.load(gguf: $0).model) }
        return (swiftTiny, swiftSmol, runPython(smol: smolLM2))
    }

    func prompts(vocab: Int) -> [[Int]] {
        (0..<batch).map { r in (0..<(6 + r % 5)).map { 3 + ($0 * 7 + r * 13) % (vocab - 3) } }
    }

    func time(_ model: CausalLM) throws -> Double {
        let config = SamplingConfig(greedy: true, maxNewTokens: tokens)
        let p = prompts(vocab: Swift.min(model.config.vocabSize, 1000))
        _ = try model.generate(prompts: p, config: config, padId: 0)
        var best = Double.infinity
        for _ in 0..<trials {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model.generate(prompts: p, config: config, padId: 0)
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return Double(batch * tokens) / best
    }

    func runPython(smol: String?) -> [String: Double] {
        let script = """
            import sys, time, json, os, torch
            from transformers import AutoModelForCausalLM
            batch, tokens, trials = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
            smol = sys.argv[4] if len(sys.argv) > 4 else None
            def prompts(vocab):
                return [[3 + (i * 7 + r * 13) % (vocab - 3) for i in range(6 + r % 5)] for r in range(batch)]
            def rate(model):
                p = prompts(min(model.config.vocab_size, 1000))
                width = max(map(len, p))
                ids = torch.tensor([[0] * (width - len(x)) + x for x in p])
                mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in p])
                def go():
                    with torch.no_grad():
                        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                                       do_sample=False, eos_token_id=None, pad_token_id=0)
                go()
                best = 1e9
                for _ in range(trials):
                    t = time.perf_counter(); go(); best = min(best, time.perf_counter() - t)
                return batch * tokens / best
            out = {"tiny": rate(AutoModelForCausalLM.from_pretrained("Tests/VisionLanguageTests/Fixtures/tiny-qwen2").eval())}
            if smol:
                m = AutoModelForCausalLM.from_pretrained(os.path.dirname(smol), gguf_file=os.path.basename(smol), dtype=torch.float32).eval()
                out["smol"] = rate(m)
            print(json.dumps(out))
            """
        return ReferencePython.numbers(ReferencePython.run(python, fallback: "false", script: script, arguments:
            [String(batch), String(tokens), String(trials)] + (smol.map { [$0] } ?? [])))
    }
}

/// Images/s of the pipeline (batch 8, 20 DDIM steps, CFG, VAE decode) vs diffusers on the same folder.
public struct GenerateBenchmark {
    public var folder: String
    public var batch: Int
    public var steps: Int
    public var trials: Int
    public var python: String?

    public static let prompt = "two red circles left of a blue square"

    public init(folder: String, batch: Int = 8, steps: Int = 20, trials: Int = 3, python: String? = nil) {
        (self.folder, self.batch, self.steps, self.trials, self.python) = (folder, batch, steps, trials, python)
    }

    /// Best seconds per batch: Swift, and diffusers (nil without a reference).
    public func run() throws -> (swift: Double, diffusers: Double?) {
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
        let reference = ReferencePython.numbers(ReferencePython.run(python, fallback: "false", script: script, arguments: [
            folder, String(batch), String(steps), String(trials), Self.prompt,
        ]))
        return (best, reference["seconds"])
    }
}

/// The cost of PromptLoop over plain sampling: `generate --refine N` at batch 8 (20 DDIM steps, CFG,
/// VAE decode of the final images) in the open and the closed loop, each relative to plain
/// sampling in the same run, median of `repeats`; the closed loop's extra time split into x̂₀ decode
/// and policy generation.
public struct RefineBenchmark {
    public var pipeline: StableDiffusionPipeline
    public var policy: RefinementPolicy
    public var refinements: [Int]
    public var batch: Int
    public var steps: Int
    public var repeats: Int

    public init(pipeline: StableDiffusionPipeline, policy: RefinementPolicy, refinements: [Int], batch: Int = 8,
                steps: Int = 20, repeats: Int = 3) {
        (self.pipeline, self.policy, self.refinements, self.batch, self.steps, self.repeats) =
            (pipeline, policy, refinements, batch, steps, repeats)
    }

    public struct Row: Sendable {
        public var mode: RolloutMode
        /// Refinements (N_R); 0 for plain sampling.
        public var count: Int
        /// Median seconds per image, and the medians of the decode and policy shares (seconds per image).
        public var secondsPerImage: Double
        public var decodePerImage: Double
        public var policyPerImage: Double
    }

    /// Plain sampling, then open and closed loop with `refinements`.
    public func run(prompt: String = GenerateBenchmark.prompt) throws -> [Row] {
        try run(configurations: [(.none, []), (.open, refinements), (.closed, refinements)], prompt: prompt)
    }

    /// Each (mode, refinement steps) configuration timed `repeats` times, interleaved so that a slow
    /// spell of the machine hits every configuration alike, after one warm-up round.
    public func run(configurations: [(mode: RolloutMode, refinements: [Int])],
                    prompt: String = GenerateBenchmark.prompt) throws -> [Row] {
        let options = SamplingOptions(steps: steps, guidance: 5, seed: 0)
        let queries = Array(repeating: prompt, count: batch)
        var samples = Array(repeating: [(Double, Double, Double)](), count: configurations.count)
        for round in 0...repeats {
            for (i, c) in configurations.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                let r = try RolloutEngine(pipeline: pipeline, policy: c.mode == .none ? nil : policy, mode: c.mode)
                    .run(queries: queries, refinements: [c.refinements], options: options)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if round > 0 { samples[i].append((seconds, r.decodeSeconds, r.policySeconds)) }
            }
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        return configurations.enumerated().map { i, c in
            let s = samples[i]
            let n = Double(batch)
            return Row(mode: c.mode, count: c.refinements.count, secondsPerImage: median(s.map(\.0)) / n,
                       decodePerImage: median(s.map(\.1)) / n, policyPerImage: median(s.map(\.2)) / n)
        }
    }
}

/// The overhead suite of the paper's Table (issue 13): seconds per image at N_R = 0, 1, 3, 5 for
/// open and closed loop, each relative to N_R = 0 measured in the same run, median of `repeats`,
/// the closed loop's cost split into x̂₀ decode and policy generation.
public struct OverheadSuite {
    /// The paper's overhead at N_R = 0, 1, 3, 5 (A100, SDXL).
    public static let paper: [Int: Double] = [0: 1.00, 1: 1.05, 3: 1.13, 5: 1.23]
    public static let counts = [0, 1, 3, 5]

    public var benchmark: RefineBenchmark

    public init(benchmark: RefineBenchmark) { self.benchmark = benchmark }

    public func run(prompt: String = GenerateBenchmark.prompt) throws -> [RefineBenchmark.Row] {
        var configurations: [(mode: RolloutMode, refinements: [Int])] = [(.none, [])]
        for n in Self.counts where n > 0 {
            let steps = RefinementSteps.equalIntervals(count: n, steps: benchmark.steps)
            configurations += [(.open, steps), (.closed, steps)]
        }
        return try benchmark.run(configurations: configurations, prompt: prompt)
    }

    /// The table: one line per N_R, open and closed side by side, the paper's figure beside.
    public static func markdown(_ rows: [RefineBenchmark.Row]) -> String {
        let plain = rows.first { $0.mode == .none }?.secondsPerImage ?? 1
        var lines = ["| N_R | open s/image | open × N_R=0 | closed s/image | closed × N_R=0 | closed: x̂₀ decode s/image "
                     + "| closed: policy s/image | paper (A100, SDXL) |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n in counts {
            let open = n == 0 ? rows.first { $0.mode == .none } : rows.first { $0.mode == .open && $0.count == n }
            let closed = n == 0 ? open : rows.first { $0.mode == .closed && $0.count == n }
            guard let open, let closed else { continue }
            lines.append(String(format: "| %d | %.3f | %.2f× | %.3f | %.2f× | %@ | %@ | %.2f× |", n, open.secondsPerImage,
                                open.secondsPerImage / plain, closed.secondsPerImage, closed.secondsPerImage / plain,
                                n == 0 ? "—" : String(format: "%.3f", closed.decodePerImage),
                                n == 0 ? "—" : String(format: "%.3f", closed.policyPerImage), paper[n] ?? .nan))
        }
        return lines.joined(separator: "\n")
    }

    /// The figure: time per image relative to N_R = 0 for open and closed loop, the paper's beside.
    public static func chart(_ rows: [RefineBenchmark.Row]) throws -> BarChart {
        let plain = rows.first { $0.mode == .none }?.secondsPerImage ?? 1
        func relative(_ mode: RolloutMode, _ n: Int) -> Double {
            let row = n == 0 ? rows.first { $0.mode == .none } : rows.first { $0.mode == mode && $0.count == n }
            return row.map { $0.secondsPerImage / plain } ?? .nan
        }
        var chart = BarChart(title: "Time per image relative to plain sampling (N_R = 0)", yLabel: "× plain",
                             groups: counts.map { "N_R = \($0)" }, reference: 1)
        try chart.add("open loop (miniature, CPU)", values: counts.map { relative(.open, $0) })
        try chart.add("closed loop (miniature, CPU)", values: counts.map { relative(.closed, $0) })
        try chart.add("paper (A100, SDXL)", values: counts.map { paper[$0] ?? .nan }, color: LinePlot.palette[4])
        return chart
    }

    public static func json(_ rows: [RefineBenchmark.Row]) -> [[String: Any]] {
        let plain = rows.first { $0.mode == .none }?.secondsPerImage ?? 1
        return rows.map {
            ["mode": $0.mode.rawValue, "n_r": $0.count, "seconds_per_image": $0.secondsPerImage,
             "relative": $0.secondsPerImage / plain, "decode_seconds_per_image": $0.decodePerImage,
             "policy_seconds_per_image": $0.policyPerImage, "paper_relative": paper[$0.count] as Any]
        }
    }
}
