import ArgumentParser
import Diffusion
import Foundation
import ShapeWorld
import Torch
import TorchNN

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Train the embedded miniature Stable Diffusion on ShapeWorld (VAE, then text encoder + UNet).",
        discussion: """
            Each stage writes into its run folder: checkpoint.safetensors (atomic, every --save-every \
            steps), loss.csv, loss.png and, when done, the model in diffusers layout. Running the same \
            command again resumes from the checkpoint with the same batches and noise.
            """,
        subcommands: [PretrainVAE.self, PretrainT2I.self])
}

/// The miniature's VAE: 64×64×3 ↔ 16×16×4 (two downsamplings), SD's block types.
func miniatureVAEConfig() -> AutoencoderKLConfig {
    var c = AutoencoderKLConfig()
    c.blockOutChannels = [32, 64, 64]
    c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 3)
    c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 3)
    c.layersPerBlock = 1
    c.latentChannels = 4
    c.normNumGroups = 16
    c.sampleSize = 64
    return c
}

/// Training images and captions for `step`: a pure function of (seed, step), so a resumed run sees
/// the batches it would have seen. Scenes avoid the held-out combinations (ShapeWorld `HoldOut.v1`).
func trainingBatch(seed: UInt64, step: Int, size: Int) -> (images: Tensor, captions: [String]) {
    var rng = SplitMix64(seed: seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
    let sampler = TrainingPairSampler()
    let renderer = Renderer()
    var values: [Float] = []
    var captions: [String] = []
    var side = 64
    for _ in 0..<size {
        let pair = sampler.sample(rng: &rng)
        let image = renderer.render(pair.scene)
        side = image.width
        values += image.planar(range: -1...1)
        captions.append(pair.caption)
    }
    return (Tensor(values, shape: [size, 3, side, side]), captions)
}

struct RunOptions: ParsableArguments {
    @Option(help: "Total optimisation steps.")
    var steps: Int

    @Option(help: "Images per step.")
    var batch: Int

    @Option(help: "Peak learning rate.")
    var lr: Double

    @Option(help: "Linear warm-up steps.")
    var warmup = 100

    @Option(help: "Seed of the data stream and initialisation.")
    var seed: UInt64 = 0

    @Option(help: "Write a checkpoint every N steps.")
    var saveEvery = 50

    @Option(help: "libtorch threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard steps > 0, batch > 0, saveEvery > 0, warmup >= 0 else {
            throw ValidationError("--steps, --batch and --save-every must be positive")
        }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive") }
    }
}

struct PretrainVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae", abstract: "Train the AutoencoderKL on ShapeWorld renders (64×64 → 16×16×4).")

    @Option(name: .customLong("run"), help: "Run folder (checkpoint, logs, and the exported vae/ at the end).")
    var folder = "runs/vae"

    @OptionGroup var options: RunOptions

    @Option(help: "Also write the finished VAE as DIR/vae with float16 weights (the shipped model's folder).")
    var export: String?

    func run() throws {
        if let t = options.threads { Threads.count = t }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = miniatureVAEConfig()
        let schedule = LRSchedule.warmupCosine(peak: options.lr, warmup: options.warmup, total: options.steps,
                                               minimum: options.lr * 0.1)
        let trainer = try VAETrainer(config: config, seed: options.seed, schedule: schedule)
        let checkpoint = folder + "/checkpoint.safetensors"
        let log = LossLog(path: folder + "/loss.csv", columns: ["loss", "reconstruction", "kl", "lr", "seconds"])
        let signature = "vae steps=\(options.steps) batch=\(options.batch) lr=\(options.lr) seed=\(options.seed)"
        try resumeRun(checkpoint: checkpoint, signature: signature, log: log) {
            try trainer.resume(from: $0)
            return trainer.step
        }
        let start = Date()
        let startStep = trainer.step
        while trainer.step < options.steps {
            let stepStart = Date()
            let images = trainingBatch(seed: options.seed, step: trainer.step, size: options.batch).images
            let r = trainer.trainStep(images)
            guard r.loss.isFinite else {
                throw CLIError("loss became \(r.loss) at step \(trainer.step); last good checkpoint: \(checkpoint)")
            }
            try log.append([r.loss, r.reconstruction, r.kl, schedule.rate(at: trainer.step - 1),
                            Date().timeIntervalSince(stepStart)], step: trainer.step)
            if trainer.step % options.saveEvery == 0 || trainer.step == options.steps {
                try trainer.save(to: checkpoint, metadata: ["run": signature])
                try writeLossPlot(log: log, to: folder + "/loss.png")
            }
            reportProgress(step: trainer.step, total: options.steps, since: start, fromStep: startStep,
                           text: String(format: "loss %.5f (recon %.5f, kl %.3f)", r.loss, r.reconstruction, r.kl))
        }
        try writeLossPlot(log: log, to: folder + "/loss.png")
        // scaling_factor = 1 / std of the latents, as SD chose 0.18215; measured on a fixed batch.
        let probe = trainingBatch(seed: 0xC0FFEE, step: 0, size: 64).images
        var exported = config
        exported.scalingFactor = (1 / trainer.latentStd(probe) * 1e5).rounded() / 1e5
        try DiffusersExport.writeVAE(trainer.store, config: exported, to: folder)
        print("exported \(folder)/vae (scaling_factor \(exported.scalingFactor))")
        if let export {
            try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true)
            try DiffusersExport.copyComponent(from: folder + "/vae", name: "vae", to: export, dtype: .float16)
            print("exported \(export)/vae (float16)")
        }
    }
}

/// Resumes a run from its checkpoint when there is one (and drops log rows past it); refuses a
/// checkpoint written with other options.
func resumeRun(checkpoint: String, signature: String, log: LossLog, resume: (String) throws -> Int) throws {
    guard FileManager.default.fileExists(atPath: checkpoint) else { return }
    if let saved = try SafeTensorsFile(path: checkpoint).metadata["run"], saved != signature {
        throw CLIError("\(checkpoint) was written by `\(saved)`, not `\(signature)`: use the same options to "
            + "resume, or another --run folder")
    }
    let step = try resume(checkpoint)
    try log.truncate(after: step)
    print("resumed \(checkpoint) at step \(step)")
}

/// `step 120/3000  loss …  1.23 s/step  ETA 1h02m` on one line of standard error.
func reportProgress(step: Int, total: Int, since start: Date, fromStep: Int, text: String) {
    let done = step - fromStep
    let perStep = done > 0 ? Date().timeIntervalSince(start) / Double(done) : 0
    let eta = perStep * Double(total - step)
    let etaText = eta >= 3600 ? String(format: "%dh%02dm", Int(eta) / 3600, Int(eta) % 3600 / 60)
        : String(format: "%dm%02ds", Int(eta) / 60, Int(eta) % 60)
    let line = String(format: "\rstep %d/%d  %@  %.2f s/step  ETA %@   ", step, total, text, perStep, etaText)
    FileHandle.standardError.write(Data(line.utf8))
    if step == total { FileHandle.standardError.write(Data("\n".utf8)) }
}

/// Draws the first loss column of `log` (log scale) as a PNG line plot.
func writeLossPlot(log: LossLog, to path: String) throws {
    let rows = log.rows().filter { ($0.values.first ?? .nan).isFinite && $0.values[0] > 0 }
    guard rows.count >= 2 else { return }
    let (w, h, margin) = (480, 240, 20)
    var image = RGBImage(width: w, height: h, fill: RGB(1, 1, 1))
    let ys = rows.map { Foundation.log10($0.values[0]) }
    let (lo, hi) = (ys.min()!, Swift.max(ys.max()!, ys.min()! + 1e-6))
    let (s0, s1) = (Double(rows.first!.step), Double(Swift.max(rows.last!.step, rows.first!.step + 1)))
    func put(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
        guard x >= 0, x < w, y >= 0, y < h else { return }
        let i = 3 * (y * w + x)
        (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]) = c
    }
    for x in margin..<(w - margin) { put(x, h - margin, (0, 0, 0)) }
    for y in margin..<(h - margin) { put(margin, y, (0, 0, 0)) }
    // Average into pixel columns so long runs stay readable.
    var columns: [Int: (sum: Double, n: Int)] = [:]
    for (row, y) in zip(rows, ys) {
        let x = margin + Int((Double(row.step) - s0) / (s1 - s0) * Double(w - 2 * margin - 1))
        columns[x, default: (0, 0)].sum += y
        columns[x, default: (0, 0)].n += 1
    }
    for (x, c) in columns {
        let v = c.sum / Double(c.n)
        let y = h - margin - Int((v - lo) / (hi - lo) * Double(h - 2 * margin - 1))
        put(x, y, (0.1, 0.3, 0.9))
        put(x, y + 1, (0.1, 0.3, 0.9))
    }
    let ink = RGB(0.2, 0.2, 0.2)
    BitmapFont.draw(String(format: "loss (log scale) %.3g", Foundation.pow(10, hi)), into: &image, x: margin + 4,
                    y: 4, color: ink)
    BitmapFont.draw(String(format: "%.3g", Foundation.pow(10, lo)), into: &image, x: margin + 4, y: h - margin - 10,
                    color: ink)
    BitmapFont.draw("step \(rows.first!.step)", into: &image, x: margin, y: h - margin + 6, color: ink)
    let last = "step \(rows.last!.step)"
    BitmapFont.draw(last, into: &image, x: w - margin - last.count * 6, y: h - margin + 6, color: ink)
    try PNG.write(image, to: path)
}
