import ArgumentParser
import Foundation
import Torch
import Training

@main
struct PromptLoopCommand: ParsableCommand {
    /// libtorch's OpenMP threads spin while they wait for work. On a machine whose cores another
    /// process also uses, the spinning threads take the cores from the thread with work: a 4-image
    /// `generate` took 17.4 s next to a training run, 5.1 s with `OMP_WAIT_POLICY=PASSIVE`
    /// (BENCHMARKS.md). libgomp reads the policy when it loads, before `main`, so the tool sets it and
    /// starts itself again, once, unless the caller chose a policy.
    static func main() {
        let environment = ProcessInfo.processInfo.environment
        if environment["OMP_WAIT_POLICY"] == nil, environment["PROMPTLOOP_NO_REEXEC"] == nil {
            setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
            setenv("PROMPTLOOP_NO_REEXEC", "1", 1)
            let arguments = CommandLine.arguments
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", &argv)
            // exec failed (no /proc): carry on with spinning threads rather than not at all.
        }
        // A write past the file-size limit fails with EFBIG (reported, the old file intact)
        // instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "promptloop",
        abstract: "Align text-to-image diffusion models by rewriting the prompt during sampling.",
        discussion: """
            PromptLoop reimplements "PromptLoop: Plug-and-Play Prompt Refinement via Latent Feedback \
            for Diffusion Model Alignment" (CVPR 2026) on libtorch. `generate` samples the embedded \
            miniature Stable Diffusion (Models/shapeworld-sd) or any diffusers folder and scores the \
            images with ShapeEval; `rewrite` and `lm` run the policy language model; `eval`, \
            `pretrain`, `shapeworld` and `bench` measure, train and benchmark.
            """,
        subcommands: [GenerateCommand.self, TrainCommand.self, TrainWeightsCommand.self, RewriteCommand.self, LMCommand.self, EvalCommand.self, PretrainCommand.self,
                      ShapeWorldCommand.self, BenchCommand.self]
    )
}

/// A run-time failure the tool reports as `Error: <message>` (no usage text: the arguments were fine).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// Writes `line` over the current line of standard error; a newline when `done`.
func statusLine(_ line: String, done: Bool) {
    FileHandle.standardError.write(Data(("\r" + line + "   " + (done ? "\n" : "")).utf8))
}

/// A one-line progress bar on standard error.
func progressBar(_ done: Int, _ total: Int, since start: Date) {
    let width = 30
    let filled = total > 0 ? width * done / total : width
    let elapsed = Date().timeIntervalSince(start)
    let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    statusLine(String(format: "[%@] %d/%d  %.1fs elapsed, eta %.1fs", bar, done, total, elapsed, eta),
               done: done == total)
}

/// Prints a ``ProgressMeter`` line for `step` on standard error.
func report(_ progress: ProgressMeter, step: Int, text: String) {
    statusLine(progress.line(step: step, text: text), done: progress.isDone(step))
}

/// `--threads N`: libtorch's intra-op threads (default: one per core). Threads wait passively (see
/// ``PromptLoopCommand/main()``), so the default degrades gracefully when other work shares the cores.
struct ThreadOption: ParsableArguments {
    @Option(help: "libtorch threads (default: one per core).")
    var threads: Int?

    func validate() throws {
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive") }
    }

    func apply() {
        if let threads { Threads.count = threads }
    }
}
