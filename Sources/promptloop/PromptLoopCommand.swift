import ArgumentParser

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
