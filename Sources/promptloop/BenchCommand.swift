import ArgumentParser
import Diffusion
import Foundation
import PromptLoop
import Torch
import VisionLanguage

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed against a reference run on the same machine.",
        subcommands: [BenchOps.self, BenchDiffusion.self, BenchLM.self, BenchGenerate.self, BenchRefine.self]
    )
}

func machineLine() -> String {
    "machine: \(ProcessInfo.processInfo.processorCount) cores, libtorch threads \(Threads.count)"
}

struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Per-call overhead of a small op in Swift vs PyTorch from Python, and matmul GFLOP/s.",
        discussion: """
            Both sides call the same libtorch build (torch 2.11.0). The Python reference runs in a \
            subprocess during the same invocation, so the ratio compares like with like. Without a \
            Python that can import torch, only the Swift figures are printed.
            """
    )

    @Option(help: "Calls per timed trial of the small op.")
    var calls = 200_000

    @Option(help: "Timed trials (the best is reported: the least disturbed by other work on the machine).")
    var trials = 7

    @Option(help: "Square matmul sizes to time.")
    var sizes: [Int] = [256, 1024]

    @Option(help: "Python interpreter with torch installed (default: .deps/pyref/bin/python, else python3).")
    var python: String?

    @Option(help: "libtorch intra-op threads for both sides (default: libtorch's choice).")
    var threads: Int?

    func validate() throws {
        guard calls > 0, trials > 0 else { throw ValidationError("--calls and --trials must be positive") }
        guard sizes.allSatisfy({ $0 > 0 }) else { throw ValidationError("--sizes must be positive") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        let r = try OpsBenchmark(calls: calls, trials: trials, sizes: sizes, python: python, threads: threads).run()
        print(machineLine())
        print("small op: c = a + b on float32 tensors of 4 elements, \(calls) calls, best of \(trials) trials")
        print(String(format: "  libtorch alone (loop in C++)  %6.0f ns/call", r.nativeAdd))
        print(String(format: "  swift                         %6.0f ns/call  overhead %5.0f ns", r.swiftAdd,
                     r.swiftAdd - r.nativeAdd))
        if let py = r.pythonAdd {
            print(String(format: "  python                        %6.0f ns/call  overhead %5.0f ns", py, py - r.nativeAdd))
            print(String(format: "  ratio swift/python: per call %.2f, overhead above libtorch %.2f (goal ≤ 0.50)",
                         r.swiftAdd / py, Swift.max(0, r.swiftAdd - r.nativeAdd) / Swift.max(1, py - r.nativeAdd)))
        }
        for (i, n) in sizes.enumerated() {
            var line = String(format: "matmul %4d×%-4d float32: swift %7.1f GFLOP/s", n, n, r.swiftMatmul[i])
            if let py = r.pythonMatmul[n] {
                line += String(format: ", python %7.1f GFLOP/s, ratio %.2f", py, r.swiftMatmul[i] / py)
            }
            print(line)
        }
        if r.pythonAdd == nil {
            print("python reference unavailable (no interpreter that can import torch); "
                + "run scripts/fixtures/setup-python or pass --python")
        }
    }
}

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

    func validate() throws {
        guard trials > 0, batch > 0, steps > 0 else { throw ValidationError("--trials, --batch and --steps must be positive") }
    }

    func run() throws {
        let r = try DiffusionBenchmark(tiny: tiny, trials: trials, batch: batch, steps: steps, skipLarge: skipLarge,
                                       python: python).run()
        print(machineLine())
        var line = String(format: "tiny SD1.5-like, %d steps, CFG, batch %d:  swift %.3f s", steps, batch, r.tiny)
        if let py = r.reference["tiny"] { line += String(format: ", diffusers %.3f s, speed-up %.2f× (goal ≥ 1.3×)", py, py / r.tiny) }
        print(line)
        if let large = r.large {
            var l = String(format: "SD1.5-sized UNet forward, 64×64 latents, batch 2:  swift %.3f s", large)
            if let py = r.reference["large"] { l += String(format: ", diffusers %.3f s, ratio %.2f (goal ≤ 1.10)", py, large / py) }
            print(l)
        }
        if r.reference.isEmpty { print("diffusers reference unavailable (run scripts/fixtures/setup-python or pass --python)") }
    }
}

struct BenchLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Batched greedy generation tokens/s vs transformers generate(): tiny Qwen2 and SmolLM2-135M.",
        discussion: """
            The tiny model is the parity fixture (Tests/VisionLanguageTests/Fixtures/tiny-qwen2); SmolLM2 is the \
            GGUF that scripts/bootstrap installs (transformers dequantises the same file). Both sides decode \
            greedily with a KV cache, no stop token, the same prompt ids. The reference runs in a subprocess \
            (--python, default .deps/pyref/bin/python).
            """)

    @Option(help: "Rows per batch.")
    var batch = 8

    @Option(help: "New tokens per row.")
    var tokens = 32

    @Option(help: "Timed runs (the best is reported).")
    var trials = 3

    @Flag(help: "Skip SmolLM2.")
    var skipSmolLM2 = false

    @Option(help: "Python interpreter with torch and transformers.")
    var python: String?

    func validate() throws {
        guard batch > 0, tokens > 0, trials > 0 else { throw ValidationError("--batch, --tokens and --trials must be positive") }
    }

    func run() throws {
        let r = try LMBenchmark(tiny: "Tests/VisionLanguageTests/Fixtures/tiny-qwen2",
                                smolLM2: skipSmolLM2 ? nil : EmbeddedModels.smolLM2, batch: batch, tokens: tokens,
                                trials: trials, python: python).run()
        print(machineLine())
        print("batch \(batch), \(tokens) new tokens per row, greedy, KV cache")
        var line = String(format: "tiny Qwen2:    swift %8.0f tokens/s", r.tiny)
        if let py = r.reference["tiny"] { line += String(format: ", transformers %8.0f tokens/s, %.2f× (goal ≥ 1.5×)", py, r.tiny / py) }
        print(line)
        if let smol = r.smolLM2 {
            var l = String(format: "SmolLM2-135M:  swift %8.1f tokens/s", smol)
            if let py = r.reference["smol"] { l += String(format: ", transformers %8.1f tokens/s, %.2f× (goal ≥ 1.0×)", py, smol / py) }
            print(l)
        }
        if r.reference.isEmpty { print("transformers reference unavailable (scripts/fixtures/setup-python or --python)") }
    }
}

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

    func validate() throws {
        guard batch > 0, steps > 0, trials > 0 else { throw ValidationError("--batch, --steps and --trials must be positive") }
    }

    func run() throws {
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        let r = try GenerateBenchmark(folder: folder, batch: batch, steps: steps, trials: trials, python: python).run()
        print(machineLine())
        var line = String(format: "%@: batch %d, %d DDIM steps, CFG 5, with VAE decode: swift %.2f images/s (%.2f s)",
                          (folder as NSString).lastPathComponent, batch, steps, Double(batch) / r.swift, r.swift)
        if let py = r.diffusers {
            line += String(format: ", diffusers %.2f images/s, %.2f× faster", Double(batch) / py, py / r.swift)
        }
        print(line)
    }
}

struct BenchRefine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refine",
        abstract: "Seconds per image of generate --refine N (open and closed loop) relative to plain sampling, batch 8.",
        discussion: "The paper measured 1.05× / 1.13× / 1.23× at 1 / 3 / 5 refinements (A100, SDXL).")

    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var model: String?

    @Option(help: "Policy folder (default: the embedded policy).")
    var policy: String?

    @Option(help: "Refinements (equal intervals).")
    var refine = 5

    @Option(help: "Images per batch.")
    var batch = 8

    @Option(help: "Repeats (the median is reported).")
    var repeats = 3

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard refine > 0, batch > 0, repeats > 0 else { throw ValidationError("--refine, --batch and --repeats must be positive") }
    }

    func run() throws {
        threadOption.apply()
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        guard let policyFolder = policy ?? EmbeddedModels.policy else { throw CLIError("no --policy and no embedded policy") }
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: "ddim")
        let agent = LlavaPolicy(chat: try LlavaChat.load(folder: policyFolder),
                                sampling: SamplingConfig(greedy: true, maxNewTokens: 48))
        let rows = try RefineBenchmark(pipeline: pipeline, policy: agent,
                                       refinements: RefinementSteps.equalIntervals(count: refine, steps: 20),
                                       batch: batch, repeats: repeats).run()
        print(machineLine())
        print("batch \(batch), 20 DDIM steps, CFG 5, \(refine) refinements, median of \(repeats)")
        print("| mode | s/image | × plain | x̂₀ decode s/image | policy s/image |")
        print("|---|---|---|---|---|")
        let plain = rows.first { $0.mode == .none }?.secondsPerImage ?? 1
        for r in rows {
            print(String(format: "| %@ | %.3f | %.2f | %.3f | %.3f |", r.mode.rawValue, r.secondsPerImage,
                         r.secondsPerImage / plain, r.decodePerImage, r.policyPerImage))
        }
    }
}
