import ArgumentParser
import Foundation
import Training

@main
struct PromptLoopCommand: ParsableCommand {
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
        subcommands: [GenerateCommand.self, RewriteCommand.self, LMCommand.self, EvalCommand.self, PretrainCommand.self,
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
