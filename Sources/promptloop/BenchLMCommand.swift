import ArgumentParser
import Foundation
import PromptLoop
import Torch
import VisionLanguage

/// Batched generation throughput against transformers' `generate()` on the same weights.
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

    func run() throws {
        let tiny = try CausalLM.load(folder: "Tests/VisionLanguageTests/Fixtures/tiny-qwen2")
        let swiftTiny = try time(tiny)
        var swiftSmol: Double?
        let smolPath = EmbeddedModels.smolLM2
        if !skipSmolLM2, let smolPath { swiftSmol = try time(try CausalLM.load(gguf: smolPath).model) }
        let reference = runPython(smol: skipSmolLM2 ? nil : smolPath)
        print("machine: \(ProcessInfo.processInfo.processorCount) cores, libtorch threads \(Threads.count)")
        print("batch \(batch), \(tokens) new tokens per row, greedy, KV cache")
        var line = String(format: "tiny Qwen2:    swift %8.0f tokens/s", swiftTiny)
        if let py = reference["tiny"] { line += String(format: ", transformers %8.0f tokens/s, %.2f× (goal ≥ 1.5×)", py, swiftTiny / py) }
        print(line)
        if let swiftSmol {
            var l = String(format: "SmolLM2-135M:  swift %8.1f tokens/s", swiftSmol)
            if let py = reference["smol"] { l += String(format: ", transformers %8.1f tokens/s, %.2f× (goal ≥ 1.0×)", py, swiftSmol / py) }
            print(l)
        }
        if reference.isEmpty { print("transformers reference unavailable (scripts/fixtures/setup-python or --python)") }
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
        return referenceNumbers(runReferencePython(python, fallback: "false", script: script, arguments:
            [String(batch), String(tokens), String(trials)] + (smol.map { [$0] } ?? [])))
    }
}
