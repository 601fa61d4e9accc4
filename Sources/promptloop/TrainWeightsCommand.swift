import ArgumentParser
import Foundation
import PromptLoop

struct TrainWeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-weights",
        abstract: "Train a weight-level baseline: a LoRA of the diffusion model's UNet against a reward.",
        discussion: """
            The baselines PromptLoop is compared with and stacked on: they change the diffusion model \
            (a LoRA on the UNet's attention projections, saved in diffusers' format so that \
            `pipe.load_lora_weights(DIR)` and `promptloop generate --unet-lora DIR` read it), where \
            PromptLoop changes only the prompt: DDPO (reinforcement learning on the sampler's \
            log-densities), Diffusion-DPO (preference pairs against a frozen reference) and ReFL \
            (gradients of a learned reward through the last denoising step and the VAE decoder).
            """,
        subcommands: [TrainDDPO.self, TrainDPO.self, TrainReFL.self])
}

/// The flags every `train-weights` command shares; each overrides its run file's key.
struct WeightRunOptions: ParsableArguments {
    @Option(help: "Run configuration (JSON); flags override its keys.")
    var config: String?

    @Option(name: .customLong("run"), help: "Run folder (default: runs/<method>).")
    var folder: String?

    @Option(help: "Iterations of the run.")
    var iterations: Int?

    @Option(help: "Queries per iteration.")
    var queries: Int?

    @Option(help: "AdamW learning rate.")
    var learningRate: Double?

    @Option(help: "Seed of the run.")
    var seed: UInt64?

    @Option(help: "Checkpoint every this many iterations.")
    var saveEvery: Int?

    @Option(help: "Evaluate the withheld training queries every this many iterations (0: never).")
    var evalEvery: Int?

    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var diffusion: String?

    @Option(help: "Stop after this iteration (checkpointed); the same command later continues.")
    var until: Int?

    @Option(help: "Also write the finished LoRA here (diffusers folder).")
    var export: String?

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        if let until, until <= 0 { throw ValidationError("--until must be positive") }
    }

    /// The run file (or the defaults) with these flags and `more` applied, validated.
    func resolved<C: WeightRunConfiguration>(_ defaults: C, _ more: (inout C) -> Void) throws -> C {
        var c = try config.map { try C.load(path: $0) } ?? defaults
        if let iterations { c.iterations = iterations }
        if let queries { c.queriesPerIteration = queries }
        if let learningRate { c.learningRate = learningRate }
        if let seed { c.seed = seed }
        if let saveEvery { c.saveEvery = saveEvery }
        if let evalEvery { c.evalEvery = evalEvery }
        if let diffusion { c.diffusion = diffusion }
        more(&c)
        do { try c.validate() } catch {
            throw ValidationError(config.map { "\($0) (with the flags given): \(error)" } ?? "\(error)")
        }
        return c
    }

    /// Trains in the run folder (`runs/<method>` by default), resuming what is there.
    func train<T: IterativeTrainer>(method: String, make: () throws -> T) throws {
        threadOption.apply()
        var run = IterativeRun(folder: folder ?? "runs/" + method, until: until, export: export)
        run.adapterName = "lora"
        try run.run(make: make, progress: printTrainingEvent)
    }
}

struct TrainDDPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ddpo",
        abstract: "DDPO (Black et al. 2023) on a UNet LoRA, with ddpo-pytorch's semantics.",
        discussion: """
            Each iteration samples QUERIES training queries (balanced over the six categories) × \
            IMAGES-PER-QUERY images with a stochastic DDIM (η = 1) that records every step's \
            log-density, scores them against the query, normalises each reward by its prompt's recent \
            rewards (or the batch's, for prompts seen fewer than stat_min_count times), and updates the \
            LoRA with the clipped surrogate of each step's likelihood ratio. The variant and its \
            departures from ddpo-pytorch are stated in Sources/PromptLoop/DDPOTrainer.swift.

            Settings come from --config (a JSON file with DDPOConfig's keys: iterations, \
            queries_per_iteration, images_per_query, inner_epochs, clip_range, adv_clip_max, \
            timestep_fraction, stat_buffer, stat_min_count, reward, learning_rate, lora_rank, …); flags \
            override keys. The run folder holds config.json, metrics.jsonl, checkpoint.safetensors \
            (atomic, every save_every iterations; the per-prompt reward buffers are part of it), \
            learning_curve.png/svg and, when done, lora/ in diffusers' format. The same command resumes \
            a stopped or killed run; a checkpoint of other settings is refused.
            """)

    @OptionGroup var options: WeightRunOptions

    @Option(help: "Images per query.")
    var imagesPerQuery: Int?

    @Option(help: "Reward: shapeeval_soft, shapeeval_strict, shapeeval_strict_exact, proxy (the learned proxy, Models/shapeworld-proxy) or a weighted sum.")
    var reward: String?

    @Option(help: "Denoising steps T.")
    var steps: Int?

    @Option(help: "Training queries withheld for evaluation.")
    var evalQueries: Int?

    func resolved() throws -> DDPOConfig {
        try options.resolved(DDPOConfig()) { c in
            if let imagesPerQuery { c.imagesPerQuery = imagesPerQuery }
            if let reward { c.reward = reward }
            if let steps { c.steps = steps }
            if let evalQueries { c.evalQueries = evalQueries }
        }
    }

    func validate() throws { _ = try resolved() }

    func run() throws {
        let config = try resolved()
        try options.train(method: "ddpo") { try DDPOTrainer.load(config: config) }
    }
}

struct TrainDPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Diffusion-DPO (Wallace et al. 2023) on a UNet LoRA, with DiffusionDPO's loss.",
        discussion: """
            Each iteration samples QUERIES training queries (balanced over the six categories) × \
            IMAGES-PER-QUERY images with the frozen reference model (the LoRA off; DDIM η = 0, the \
            protocol's sampler), scores them against the query, and makes a (winner, loser) pair of \
            every two images of a query whose scores differ. The LoRA is trained on the pairs with the \
            DPO loss on the denoising error against the reference: −log σ(−½β((e_w − e_l) − (e_w,ref − \
            e_l,ref))), winner and loser noised with the same ε at the same t. The variant is stated \
            in Sources/PromptLoop/DPOTrainer.swift.

            Settings come from --config (a JSON file with DPOConfig's keys: iterations, \
            queries_per_iteration, images_per_query, inner_epochs, beta, reward, learning_rate, \
            train_batch_size, lora_rank, …); flags override keys. The run folder holds config.json, \
            metrics.jsonl (loss, implicit_acc, model_mse, ref_mse, delta_eps, pairs), \
            checkpoint.safetensors (atomic, every save_every iterations), learning_curve.png/svg and, \
            when done, lora/ in diffusers' format. The same command resumes a stopped or killed run; a \
            checkpoint of other settings is refused.
            """)

    @OptionGroup var options: WeightRunOptions

    @Option(help: "Images per query (pairs are made among them).")
    var imagesPerQuery: Int?

    @Option(help: "β of the DPO loss.")
    var beta: Double?

    @Option(help: "Passes over each iteration's pairs.")
    var innerEpochs: Int?

    @Option(help: "Ranking of a query's images: shapeeval_soft, shapeeval_strict, shapeeval_strict_exact or a weighted sum.")
    var reward: String?

    func resolved() throws -> DPOConfig {
        try options.resolved(DPOConfig()) { c in
            if let imagesPerQuery { c.imagesPerQuery = imagesPerQuery }
            if let beta { c.beta = beta }
            if let innerEpochs { c.innerEpochs = innerEpochs }
            if let reward { c.reward = reward }
        }
    }

    func validate() throws { _ = try resolved() }

    func run() throws {
        let config = try resolved()
        try options.train(method: "dpo") { try DPOTrainer.load(config: config) }
    }
}

struct TrainReFL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refl",
        abstract: "ReFL (ImageReward, Xu et al. 2023) on a UNet LoRA through the learned proxy of ShapeEval.",
        discussion: """
            Each iteration samples QUERIES training queries (one image each) without gradients up to \
            a step k drawn from stop_range (default 15…19 of 20), then runs step k with gradients: the \
            guided noise prediction, DDIM's x̂₀, the frozen VAE decoder and the frozen learned proxy \
            (Models/shapeworld-proxy, `promptloop pretrain proxy`), and minimises ImageReward's \
            ReLU(λ − r)·grad_scale. The variant is stated in Sources/PromptLoop/ReFLTrainer.swift.

            Settings come from --config (a JSON file with ReFLConfig's keys: iterations, \
            queries_per_iteration, stop_range, reward_target, grad_scale, learning_rate, lora_rank, \
            proxy, …); flags override keys. The run folder holds config.json, metrics.jsonl (reward = \
            the proxy on x̂₀ at k, rollout/strict and rollout/soft = ShapeEval on the same images, \
            delta_eps = ‖ε_θ − ε_base‖²), checkpoint.safetensors (atomic, every save_every iterations), \
            learning_curve.png/svg and, when done, lora/ in diffusers' format. The same command \
            resumes a stopped or killed run; a checkpoint of other settings is refused.
            """)

    @OptionGroup var options: WeightRunOptions

    @Option(help: "The learned proxy folder (default: Models/shapeworld-proxy).")
    var proxy: String?

    func resolved() throws -> ReFLConfig {
        try options.resolved(ReFLConfig()) { c in
            if let proxy { c.proxy = proxy }
        }
    }

    func validate() throws { _ = try resolved() }

    func run() throws {
        let config = try resolved()
        try options.train(method: "refl") { try ReFLTrainer.load(config: config) }
    }
}
