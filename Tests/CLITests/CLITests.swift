import Foundation
import Testing

// End to end: the built `promptloop` binary run as a user runs it, on tiny fixtures — arguments
// parsed, files written, exit status and error text on bad input. ArgumentParser exits 64 on a
// usage error and 1 on a run-time error.

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")
    .standardized.path

/// The `promptloop` binary built next to this test bundle (or `PROMPTLOOP_BIN`).
func binary() throws -> String {
    var candidates: [String] = []
    if let env = ProcessInfo.processInfo.environment["PROMPTLOOP_BIN"] { candidates.append(env) }
    let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
    var dir = runner.deletingLastPathComponent()
    for _ in 0..<4 {
        candidates.append(dir.appendingPathComponent("promptloop").path)
        dir = dir.deletingLastPathComponent()
    }
    candidates.append(repository + "/.build/debug/promptloop")
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw CLIFailure("no promptloop binary next to the test runner (\(runner.path)); build it (swift build) "
            + "or set PROMPTLOOP_BIN")
    }
    return found
}

struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `promptloop ARGS` in `directory` (the repository by default) and collects its output.
func promptloop(_ arguments: [String], in directory: String = repository) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try binary())
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    // Standard error goes to a file, so that a chatty progress bar cannot fill a pipe and block.
    let errPath = NSTemporaryDirectory() + "promptloop-stderr-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let out = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try err.close()
    let errData = FileManager.default.contents(atPath: errPath) ?? Data()
    return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
               stderr: String(decoding: errData, as: UTF8.self))
}

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "promptloop-cli-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

let tinySD = repository + "/Tests/DiffusionTests/Fixtures/tiny-sd"

@Suite(.serialized) struct CLITests {
    @Test func helpListsTheCommands() throws {
        let r = try promptloop(["--help"])
        #expect(r.status == 0)
        for command in ["generate", "rewrite", "lm", "eval", "pretrain", "shapeworld", "bench"] {
            #expect(r.stdout.contains(command), "--help does not mention \(command)")
        }
    }

    @Test func generateWritesImagesAndScoresShapeWorldPrompts() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A diffusers folder, a batch of two: NAME-0.png and NAME-1.png.
        let r = try promptloop(["generate", "w1 w2", "--model", tinySD, "--steps", "2", "--height", "16", "--width", "16",
                                "--batch", "2", "--quiet", "--out", dir + "/x.png"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/x-0.png") && FileManager.default.fileExists(atPath: dir + "/x-1.png"))
        // The embedded model, a ShapeWorld prompt: the verdict is printed after the path.
        let e = try promptloop(["generate", "a red circle", "--steps", "2", "--quiet", "--out", dir + "/e.png"])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(e.stdout.contains(dir + "/e.png  ShapeEval: strict"))
        // An empty prompt is unconditional, not an error.
        let empty = try promptloop(["generate", "", "--model", tinySD, "--steps", "1", "--height", "16", "--width", "16",
                                    "--quiet", "--out", dir + "/u.png"])
        #expect(empty.status == 0, "\(empty.stderr)")
    }

    @Test func generateRefusesBadInputWithAMessage() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let usage = try promptloop(["generate", "a", "--steps", "0"])
        #expect(usage.status == 64 && usage.stderr.contains("--steps must be positive"))
        let out = try promptloop(["generate", "a", "--out", "x.jpg"])
        #expect(out.status == 64 && out.stderr.contains("--out must name a .png file"))
        let missing = try promptloop(["generate", "a", "--model", dir + "/nothing", "--out", dir + "/a.png"])
        #expect(missing.status == 1 && missing.stderr.contains(dir + "/nothing"))
        // A folder whose model_index.json names SD over an SDXL UNet: an error naming the folder.
        let mixed = dir + "/mixed"
        try FileManager.default.copyItem(atPath: tinySD, toPath: mixed)
        try FileManager.default.removeItem(atPath: mixed + "/unet")
        try FileManager.default.copyItem(atPath: repository + "/Tests/DiffusionTests/Fixtures/tiny-sdxl/unet",
                                         toPath: mixed + "/unet")
        let m = try promptloop(["generate", "a", "--model", mixed, "--out", dir + "/m.png", "--quiet"])
        #expect(m.status == 1 && m.stderr.contains("text_time") && !m.stderr.contains("Fatal"))
        let schedule = try promptloop(["generate", "a", "--steps", "4", "--prompt-at", "9:b"])
        #expect(schedule.status == 64 && schedule.stderr.contains("past the last step"))
    }

    @Test func generateRefinesWithTheShippedPolicy() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try promptloop(["generate", "two red circles", "--refine", "2", "--steps", "6", "--quiet",
                                "--out", dir + "/r.png", "--trajectory", dir + "/traj"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  after step 0: ") && r.stdout.contains("  after step 3: "))
        #expect(r.stdout.contains(dir + "/r.png  ShapeEval: strict"))
        let page = try String(contentsOfFile: dir + "/traj/index.html", encoding: .utf8)
        #expect(page.contains("row0-step00.png") && page.contains("row0-step03.png"))
        let open = try promptloop(["generate", "a blue square", "--refine", "2", "--mode", "open", "--steps", "6",
                                   "--quiet", "--out", dir + "/o.png"])
        #expect(open.status == 0 && open.stdout.contains("  after step 3: "), "\(open.stderr)")
        let ff = try promptloop(["generate", "a blue square", "--mode", "feed-forward", "--steps", "4", "--quiet",
                                 "--out", dir + "/f.png"])
        #expect(ff.status == 0 && ff.stdout.contains("  before sampling: "), "\(ff.stderr)")
        for (args, message) in [(["--refine=-1"], "--refine must not be negative"),
                                (["--refine", "2", "--mode", "loop"], "unknown --mode loop"),
                                (["--trajectory", dir + "/t"], "--trajectory needs"),
                                (["--refine", "2", "--prompt-at", "3:b"], "use one")] {
            let bad = try promptloop(["generate", "a red circle", "--out", dir + "/b.png"] + args)
            #expect(bad.status == 64 && bad.stderr.contains(message), "\(args): \(bad.stderr)")
        }
        let noPolicy = try promptloop(["generate", "a red circle", "--refine", "1", "--policy", dir + "/none",
                                       "--out", dir + "/n.png"])
        #expect(noPolicy.status == 1 && noPolicy.stderr.contains(dir + "/none"))
    }

    @Test func evalShapeWorldPrintsTheTableAndWritesResults() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try promptloop(["eval", "shapeworld", "--limit", "2", "--seeds", "1", "--steps", "2",
                                "--results", dir + "/r.json", "--sheet", dir + "/s.png"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("| category | images | strict | soft |") && r.stdout.contains("overall"))
        let items = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/r.json")))
        #expect((items as? [[String: Any]])?.count == 2)
        #expect(FileManager.default.fileExists(atPath: dir + "/s.png"))
        let bad = try promptloop(["eval", "shapeworld", "--set", dir + "/none.jsonl"])
        #expect(bad.status == 1 && bad.stderr.contains(dir + "/none.jsonl"))
        try "{\"id\": 1}\n".write(toFile: dir + "/broken.jsonl", atomically: true, encoding: .utf8)
        let broken = try promptloop(["eval", "shapeworld", "--set", dir + "/broken.jsonl"])
        #expect(broken.status == 1 && broken.stderr.contains("broken.jsonl") && broken.stderr.contains("line 1"))
    }

    @Test func rewriteAndLMRunAndRefuseAnImageForATextModel() throws {
        let r = try promptloop(["rewrite", "a red circle", "--greedy", "--max-new-tokens", "6"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        let llava = repository + "/Tests/VisionLanguageTests/Fixtures/tiny-llava"
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try promptloop(["shapeworld", "render", "a red circle", "--out", dir + "/c.png"])
        let l = try promptloop(["lm", "generate", "--model", llava, "--prompt", "what", "--image", dir + "/c.png",
                                "--greedy", "--max-new-tokens", "3"])
        #expect(l.status == 0, "\(l.stderr)")
        let wrong = try promptloop(["lm", "generate", "--prompt", "hi", "--image", dir + "/c.png", "--max-new-tokens", "2"])
        #expect(wrong.status == 1 && wrong.stderr.contains("--image needs a LLaVA model"))
        let policy = try promptloop(["rewrite", "a red circle", "--policy", repository + "/Models/shapeworld-policy",
                                     "--greedy", "--max-new-tokens", "24"])
        #expect(policy.status == 0 && !policy.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(policy.stderr)")
        let both = try promptloop(["rewrite", "x", "--policy", "p", "--model", "m"])
        #expect(both.status == 64 && both.stderr.contains("not both"))
        let tokens = try promptloop(["rewrite", "x", "--max-new-tokens", "0"])
        #expect(tokens.status == 64 && tokens.stderr.contains("--max-new-tokens must be positive"))
    }

    @Test func pretrainWritesACheckpointAndResumesOnlyTheSameRun() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = ["pretrain", "vae", "--run", dir + "/vae", "--steps", "2", "--batch", "1", "--lr", "1e-3",
                   "--warmup", "1", "--save-every", "1"]
        let first = try promptloop(run + ["--until", "1"])
        #expect(first.status == 0, "\(first.stderr)")
        for file in ["checkpoint.safetensors", "loss.csv"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/vae/" + file), "\(file) missing")
        }
        let second = try promptloop(run)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("resumed") && second.stdout.contains("at step 1"))
        #expect(second.stdout.contains("exported \(dir)/vae/vae"))
        let other = try promptloop(["pretrain", "vae", "--run", dir + "/vae", "--steps", "3", "--batch", "1",
                                    "--lr", "1e-3"])
        #expect(other.status == 1 && other.stderr.contains("was written by"))
        let bad = try promptloop(["pretrain", "vae", "--steps", "1", "--batch", "0", "--lr", "1"])
        #expect(bad.status == 64 && bad.stderr.contains("batch must be in 1…4096"))
        let t2i = try promptloop(["pretrain", "t2i", "--run", dir + "/t2i", "--vae", dir + "/none", "--steps", "1",
                                  "--batch", "1", "--lr", "1e-3"])
        #expect(t2i.status == 1 && t2i.stderr.contains(dir + "/none"))
    }

    /// `promptloop train` refuses bad settings naming the key (killed runs: ReliabilityTests).
    @Test func trainNamesBadSettings() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Bad settings name the key.
        try #"{"group_sise": 4}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let bad = try promptloop(["train", "--config", dir + "/bad.json", "--run", dir + "/c"])
        #expect(bad.status != 0 && bad.stderr.contains("group_sise"), "\(bad.stderr)")
        let range = try promptloop(["train", "--n-r-range", "5-2", "--run", dir + "/c"])
        #expect(range.status == 64 && range.stderr.contains("n_r_range"), "\(range.stderr)")
    }
}
