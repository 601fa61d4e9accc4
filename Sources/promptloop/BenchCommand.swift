import ArgumentParser
import Foundation
import Torch

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed against a reference run on the same machine.",
        subcommands: [BenchOps.self, BenchDiffusion.self, BenchLM.self, BenchGenerate.self]
    )
}

/// Runs `script` with the reference Python (`--python`, else `.deps/pyref/bin/python`, else `fallback`)
/// and returns its standard output, or nil when it cannot run (no interpreter, torch missing, error).
func runReferencePython(_ python: String?, fallback: String = "python3", script: String, arguments: [String]) -> String? {
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
func referenceNumbers(_ output: String?) -> [String: Double] {
    guard let line = output?.split(separator: "\n").last,
          let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double] else { return [:] }
    return json
}

/// Per-op overhead (Swift → shim → libtorch vs Python → PyTorch) and matmul throughput.
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
        if let threads { Threads.count = threads }
        // Matmul first: after a million tiny-op calls, the first large matmuls ran slower (seen on
        // 2 cores), which would measure the allocator's state rather than the binding.
        let swiftMatmul = try sizes.map { try measureMatmul($0) }
        let swiftAdd = measureAdd()
        let native = measureNativeAdd()
        let reference = runPython()

        print("machine: \(ProcessInfo.processInfo.processorCount) cores, libtorch threads \(Threads.count)")
        print("small op: c = a + b on float32 tensors of 4 elements, \(calls) calls, best of \(trials) trials")
        print(String(format: "  libtorch alone (loop in C++)  %6.0f ns/call", native))
        print(String(format: "  swift                         %6.0f ns/call  overhead %5.0f ns", swiftAdd,
                     swiftAdd - native))
        if let py = reference?.add {
            print(String(format: "  python                        %6.0f ns/call  overhead %5.0f ns", py, py - native))
            print(String(format: "  ratio swift/python: per call %.2f, overhead above libtorch %.2f (goal ≤ 0.50)",
                         swiftAdd / py, Swift.max(0, swiftAdd - native) / Swift.max(1, py - native)))
        }
        for (i, n) in sizes.enumerated() {
            var line = String(format: "matmul %4d×%-4d float32: swift %7.1f GFLOP/s", n, n, swiftMatmul[i])
            if let py = reference?.matmul[n] {
                line += String(format: ", python %7.1f GFLOP/s, ratio %.2f", py, swiftMatmul[i] / py)
            }
            print(line)
        }
        if reference == nil {
            print("python reference unavailable (no interpreter that can import torch); "
                + "run scripts/fixtures/setup-python or pass --python")
        }
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
        guard let text = runReferencePython(python, script: script, arguments: [String(calls), String(trials),
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
