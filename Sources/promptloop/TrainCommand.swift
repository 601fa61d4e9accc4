import ArgumentParser
import Foundation
import PromptLoop
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the policy's LoRA adapters with GRPO against a reward (PromptLoop, part 2).",
        discussion: """
            Each iteration draws queries from the training set (balanced over the six categories), \
            rolls out GROUP trajectories per query in the chosen mode (the frozen diffusion model \
            samples while the policy rewrites the prompt at N_R random steps), scores the images \
            against the query, and updates only the policy's LoRA adapters with token-level GRPO \
            (clipped surrogate, KL to the adapter-off policy). The variant and its departures from TRL \
            are stated in Sources/PromptLoop/GRPO.swift; docs/grpo.md explains the run folder.

            Settings come from --config (a JSON file whose keys are GRPOConfig's: mode, n_r_range, \
            group_size, learning_rate, beta, reward, …); each flag below overrides its key. The run \
            folder holds config.json (resolved), metrics.jsonl (TRL's metric names), \
            checkpoint.safetensors (atomic, every save_every iterations), learning_curve.png and, \
            when done, adapter/ in PEFT format. The same command resumes a stopped or killed run \
            from its last checkpoint; a checkpoint written with other settings is refused.
            """)

    @Option(help: "Run configuration (JSON); flags override its keys.")
    var config: String?

    @Option(name: .customLong("run"), help: "Run folder.")
    var folder = "runs/grpo"

    @Option(help: "closed, open or feed-forward.")
    var mode: String?

    @Option(name: .customLong("n-r-range"), help: "N_R range per group, LOW-HIGH (e.g. 1-8, or 5-5).")
    var nRRange: String?

    @Option(help: "Iterations of the run.")
    var iterations: Int?

    @Option(help: "Trajectories per query (G).")
    var groupSize: Int?

    @Option(help: "Queries per iteration.")
    var queries: Int?

    @Option(help: "AdamW learning rate.")
    var learningRate: Double?

    @Option(help: "KL coefficient β.")
    var beta: Double?

    @Option(help: "Reward: shapeeval_soft, shapeeval_strict, shapeeval_strict_exact, proxy (the learned proxy, Models/shapeworld-proxy) or a weighted sum.")
    var reward: String?

    @Option(help: "Seed of the run.")
    var seed: UInt64?

    @Option(help: "Denoising steps T.")
    var steps: Int?

    @Option(help: "Checkpoint every this many iterations.")
    var saveEvery: Int?

    @Option(help: "Evaluate the withheld training queries every this many iterations (0: never).")
    var evalEvery: Int?

    @Option(help: "Training queries withheld for evaluation.")
    var evalQueries: Int?

    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var diffusion: String?

    @Option(help: "Policy: a transformers LLaVA folder (default: the embedded policy).")
    var policy: String?

    @Option(help: "Stop after this iteration (checkpointed); the same command later continues.")
    var until: Int?

    @Option(help: "Also write the finished adapter here (PEFT folder).")
    var export: String?

    @OptionGroup var threadOption: ThreadOption

    func resolved() throws -> GRPOConfig {
        var c = try config.map { try GRPOConfig.load(path: $0) } ?? GRPOConfig()
        if let mode {
            guard let m = RolloutMode(rawValue: mode), m != .none else {
                throw ValidationError("unknown --mode \(mode): use closed, open or feed-forward")
            }
            c.mode = m
        }
        if let nRRange {
            let parts = nRRange.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let lo = parts[0], let hi = parts[1] else {
                throw ValidationError("--n-r-range wants LOW-HIGH, got `\(nRRange)`")
            }
            c.nRRange = [lo, hi]
        }
        if let iterations { c.iterations = iterations }
        if let groupSize { c.groupSize = groupSize }
        if let queries { c.queriesPerIteration = queries }
        if let learningRate { c.learningRate = learningRate }
        if let beta { c.beta = beta }
        if let reward { c.reward = reward }
        if let seed { c.seed = seed }
        if let steps { c.steps = steps }
        if let saveEvery { c.saveEvery = saveEvery }
        if let evalEvery { c.evalEvery = evalEvery }
        if let evalQueries { c.evalQueries = evalQueries }
        if let diffusion { c.diffusion = diffusion }
        if let policy { c.policy = policy }
        do { try c.validate() } catch {
            throw ValidationError(config.map { "\($0) (with the flags given): \(error)" } ?? "\(error)")
        }
        return c
    }

    func validate() throws {
        _ = try resolved()
        if let until, until <= 0 { throw ValidationError("--until must be positive") }
    }

    func run() throws {
        threadOption.apply()
        let run = GRPORun(folder: folder, config: try resolved(), until: until, export: export)
        try run.run(progress: printTrainingEvent)
    }
}

/// The progress of a GRPO or weight-level run: a status line per iteration, a line per evaluation.
func printTrainingEvent(_ event: GRPOEvent) {
    switch event {
    case .resumed(let checkpoint, let iteration):
        print("resumed from \(checkpoint) at iteration \(iteration)")
    case .iteration(let meter, let m):
        let v = m.values
        // The trainer's own headline values, those it logs (DPO has no rollout reward, GRPO no pairs).
        let shown: [(String, String, String)] = [
            ("reward", "reward", "%.3f"), ("rollout/strict", "strict", "%.3f"), ("kl", "kl", "%.4f"),
            ("invalid_actions", "invalid", "%.2f"), ("loss", "loss", "%.4f"), ("implicit_acc", "acc", "%.2f"),
            ("pairs", "pairs", "%.0f"), ("delta_eps", "Δε²", "%.2e"),
        ].filter { v[$0.0] != nil && !($0.0 == "loss" && v["reward"] != nil) }
        let text = m.skipped ? "skipped: \(m.skipReason ?? "")"
            : shown.map { "\($0.1) " + String(format: $0.2, v[$0.0]!) }.joined(separator: "  ")
        report(meter, step: m.iteration, text: text)
    case .evaluated(let iteration, let values):
        let text = values.keys.sorted().map { String(format: "%@ %.3f", $0, values[$0]!) }.joined(separator: "  ")
        statusLine("", done: true)
        print("iteration \(iteration): \(text)")
    case .exported(let path):
        print("adapter: \(path)")
    }
}
