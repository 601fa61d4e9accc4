import Foundation
import Testing
import Torch

// Every trainer, as a user runs it, killed and faulted: SIGKILL at random moments, SIGKILL inside a
// checkpoint write (the `kill-in-checkpoint` fault hook), a torn newest checkpoint, non-finite
// losses and gradients, a full disk, a folder in use. The number of kills per trainer is
// PROMPTLOOP_KILLS (2 in CI; `scripts/reliability` runs 20).

/// A training command on a tiny configuration, parameterised by its run folder.
struct Trainer: CustomTestStringConvertible, Sendable {
    let name: String
    /// Arguments for run folder `folder` with `steps` steps (iterations).
    let arguments: @Sendable (_ folder: String, _ steps: Int) -> [String]
    /// The log that grows by a line per step.
    let log: String

    var testDescription: String { name }

    static let all: [Trainer] = [
        Trainer(name: "pretrain vae", arguments: { folder, steps in
            ["pretrain", "vae", "--run", folder, "--steps", "\(steps)", "--batch", "1", "--lr", "1e-3", "--warmup", "1",
             "--save-every", "1", "--threads", "1"]
        }, log: "loss.csv"),
        Trainer(name: "pretrain t2i", arguments: { folder, steps in
            ["pretrain", "t2i", "--run", folder, "--vae", repository + "/Models/shapeworld-sd/vae", "--steps", "\(steps)",
             "--batch", "1", "--lr", "1e-3", "--warmup", "1", "--save-every", "1", "--threads", "1"]
        }, log: "loss.csv"),
        Trainer(name: "pretrain policy", arguments: { folder, steps in
            ["pretrain", "policy", "--run", folder, "--steps", "\(steps)", "--batch", "1", "--lr", "1e-3", "--warmup", "1",
             "--save-every", "1", "--threads", "1"]
        }, log: "loss.csv"),
        Trainer(name: "pretrain proxy", arguments: { folder, steps in
            ["pretrain", "proxy", "--run", folder, "--steps", "\(steps)", "--batch", "2", "--lr", "1e-3", "--warmup", "1",
             "--save-every", "1", "--pool-chunks", "1", "--chunk-size", "2", "--threads", "1"]
        }, log: "loss.csv"),
        Trainer(name: "train (GRPO)", arguments: { folder, steps in
            ["train", "--config", tinyGRPOConfig, "--run", folder, "--iterations", "\(steps)", "--threads", "1"]
        }, log: "metrics.jsonl"),
        Trainer(name: "train-weights ddpo", arguments: { folder, steps in
            ["train-weights", "ddpo", "--config", tinyDDPOConfig, "--run", folder, "--iterations", "\(steps)",
             "--threads", "1"]
        }, log: "metrics.jsonl"),
        Trainer(name: "train-weights dpo", arguments: { folder, steps in
            ["train-weights", "dpo", "--config", tinyDPOConfig, "--run", folder, "--iterations", "\(steps)",
             "--threads", "1"]
        }, log: "metrics.jsonl"),
        Trainer(name: "train-weights refl", arguments: { folder, steps in
            ["train-weights", "refl", "--config", tinyReFLConfig, "--run", folder, "--iterations", "\(steps)",
             "--threads", "1"]
        }, log: "metrics.jsonl"),
    ]
}

/// A ReFL run of one image, three diffusion steps, the gradient step at 1 or 2 (the shipped proxy).
let tinyReFLConfig: String = {
    let path = NSTemporaryDirectory() + "promptloop-tiny-refl-\(getpid()).json"
    let config = """
        {"steps": 3, "stop_range": [1, 2], "queries_per_iteration": 1, "save_every": 1, "eval_every": 0,
         "eval_queries": 6}
        """
    try? config.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}()

/// A Diffusion-DPO run of one query × three images, two diffusion steps, one pair per optimiser step.
let tinyDPOConfig: String = {
    let path = NSTemporaryDirectory() + "promptloop-tiny-dpo-\(getpid()).json"
    let config = """
        {"steps": 2, "queries_per_iteration": 1, "images_per_query": 3, "train_batch_size": 1, "micro_batch": 1,
         "save_every": 1, "eval_every": 0, "eval_queries": 6}
        """
    try? config.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}()

/// A DDPO run of one query × two images, two diffusion steps, two optimiser steps per iteration.
let tinyDDPOConfig: String = {
    let path = NSTemporaryDirectory() + "promptloop-tiny-ddpo-\(getpid()).json"
    let config = """
        {"steps": 2, "queries_per_iteration": 1, "images_per_query": 2, "train_batch_size": 1, "micro_batch": 1,
         "stat_buffer": 4, "stat_min_count": 2, "save_every": 1, "eval_every": 0, "eval_queries": 6}
        """
    try? config.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}()

/// A GRPO run of two groups of two, four diffusion steps, short replies.
let tinyGRPOConfig: String = {
    let path = NSTemporaryDirectory() + "promptloop-tiny-grpo-\(getpid()).json"
    let config = """
        {"steps": 4, "group_size": 2, "queries_per_iteration": 2, "n_r_range": [1, 2], "save_every": 1,
         "eval_every": 0, "eval_queries": 6, "micro_batch": 3, "warmup": 0, "max_new_tokens": 12}
        """
    try? config.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}()

let kills = Int(ProcessInfo.processInfo.environment["PROMPTLOOP_KILLS"] ?? "") ?? 2

func lineCount(_ path: String) -> Int {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").count
}

/// Starts `promptloop ARGS` with extra environment, output discarded.
func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try binary())
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: repository)
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Every floating-point tensor of a safetensors file is finite.
func allFinite(_ path: String) throws -> Bool {
    let file = try SafeTensorsFile(path: path)
    for name in file.names where [.float32, .float16, .bfloat16].contains(file.info(name)!.dtype) {
        if try file.tensor(name).to(.float32).isfinite().logicalNot().any().item() != 0 { return false }
    }
    return true
}

@Suite(.serialized) struct ReliabilityTests {
    /// Killed `kills` times — at random moments and, alternately, inside a checkpoint write — then
    /// run to the end: the final checkpoint equals an uninterrupted run's byte for byte, and every
    /// resume found a complete checkpoint. Last, the newest checkpoint is torn on purpose: the run
    /// resumes from the one before and still ends identical.
    @Test(arguments: Trainer.all)
    func killedRunsResumeBitForBit(_ trainer: Trainer) throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let steps = Swift.max(6, 2 * kills + 2)
        let straight = try promptloop(trainer.arguments(dir + "/a", steps))
        #expect(straight.status == 0, "\(straight.stderr)")
        var rng = SystemRandomNumberGenerator()
        var done = 0, insideWrites = 0, starts = 0
        while done < kills {
            starts += 1
            #expect(starts <= 4 * kills + 4, "\(trainer.name) never got far enough to be killed \(kills) times")
            if starts > 4 * kills + 4 { break }
            let folder = dir + "/b"
            let before = lineCount(folder + "/" + trainer.log)
            // Inside a write first, so that the last kill (at a random moment) usually leaves both a
            // newest and a previous checkpoint for the tear below.
            let inside = done % 2 == 0
            let process = try start(trainer.arguments(folder, steps),
                                    environment: inside ? ["PROMPTLOOP_FAULTS": "kill-in-checkpoint@\(Int.random(in: 1...2, using: &rng))"] : [:])
            if !inside {
                // A random moment once this start has made progress.
                while process.isRunning && lineCount(folder + "/" + trainer.log) <= before {
                    Thread.sleep(forTimeInterval: 0.005)
                }
                Thread.sleep(forTimeInterval: Double.random(in: 0...0.4, using: &rng))
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            process.waitUntilExit()
            guard process.terminationReason == .uncaughtSignal else {
                // It finished before the kill: start the killed run again from scratch.
                #expect(process.terminationStatus == 0)
                try? FileManager.default.removeItem(atPath: folder)
                continue
            }
            done += 1
            if inside { insideWrites += 1 }
            // What a resume will find: the newest checkpoint complete, or — killed inside a write,
            // while the new one was a temporary file — the one before it, complete.
            let checkpoint = folder + "/checkpoint.safetensors"
            for candidate in [checkpoint, checkpoint + ".prev"] where FileManager.default.fileExists(atPath: candidate) {
                try SafeTensorsFile(path: candidate).verifyChecksum()
                break
            }
        }
        // Tear the newest checkpoint: the resume must fall back to the previous one.
        let checkpoint = dir + "/b/checkpoint.safetensors"
        let tear = FileManager.default.fileExists(atPath: checkpoint + ".prev") && FileManager.default.fileExists(atPath: checkpoint)
        if tear {
            var data = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
            data[data.count - 3] ^= 0x55
            try data.write(to: URL(fileURLWithPath: checkpoint))
        }
        let last = try promptloop(trainer.arguments(dir + "/b", steps))
        #expect(last.status == 0, "\(last.stderr)")
        let a = FileManager.default.contents(atPath: dir + "/a/checkpoint.safetensors")
        let b = FileManager.default.contents(atPath: dir + "/b/checkpoint.safetensors")
        #expect(a != nil && a == b, Comment(rawValue: "\(trainer.name): the checkpoint after \(done) kills "
            + "(\(insideWrites) inside a write) differs from the uninterrupted run's"))
        #expect(lineCount(dir + "/a/" + trainer.log) == lineCount(dir + "/b/" + trainer.log))
        if a != nil && a == b {
            print("reliability: \(trainer.name) survived \(done) kills (\(insideWrites) inside a checkpoint write)"
                + "\(tear ? " and a torn newest checkpoint" : ""), bit for bit")
        }
    }

    /// NaN and infinite losses and gradients never reach the saved weights: the step is skipped
    /// and the run goes on; `max_nonfinite` in a row stop it with the cause.
    @Test(arguments: Trainer.all)
    func nonFiniteValuesNeverReachTheWeights(_ trainer: Trainer) throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let isGRPO = trainer.name.hasPrefix("train")  // GRPO and the weight-level trainers: iterations, rewards
        // Isolated faults, each followed by a good step.
        let faults = "nan-loss@2,inf-grad@4,nan-grad@6" + (isGRPO ? ",nan-reward@8,inf-reward@10" : "")
        let steps = isGRPO ? 10 : 7
        let process = try start(trainer.arguments(dir + "/a", steps), environment: ["PROMPTLOOP_FAULTS": faults])
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(trainer.name) stopped on isolated faults")
        #expect(try allFinite(dir + "/a/checkpoint.safetensors"))
        // In a row: stopped, naming the cause; the checkpoint on disk is still finite.
        let streak = (2...5).map { "nan-loss@\($0)" }.joined(separator: ",")
        let run = try promptloopWith(["PROMPTLOOP_FAULTS": streak],
                                     trainer.arguments(dir + "/b", 8) + (isGRPO ? [] : ["--max-nonfinite", "3"]))
        let limit = isGRPO ? "max_nonfinite" : "max_nonfinite 3"
        #expect(run.status == 1 && run.stderr.contains(limit) && run.stderr.lowercased().contains("loss"), "\(run.stderr)")
        #expect(try allFinite(dir + "/b/checkpoint.safetensors"))
    }

    /// A full disk (RLIMIT_FSIZE), an unwritable run folder, an output path that is a folder and a
    /// folder in use: each a clear error, the previous checkpoint intact.
    @Test func fullDiskUnwritableFolderAndLocks() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vae = Trainer.all[0]
        let first = try promptloop(vae.arguments(dir + "/run", 6) + ["--until", "2"])
        #expect(first.status == 0, "\(first.stderr)")
        let checkpoint = dir + "/run/checkpoint.safetensors"
        let saved = FileManager.default.contents(atPath: checkpoint)
        // 1 MB of file size: the next checkpoint write fails with EFBIG.
        let quoted = try ([binary()] + vae.arguments(dir + "/run", 6)).map { "'\($0)'" }.joined(separator: " ")
        let full = try shell("ulimit -f 2048; exec \(quoted)")
        #expect(full.status == 1 && full.stderr.contains(checkpoint) && full.stderr.contains("File too large"),
                "\(full.stderr)")
        #expect(FileManager.default.contents(atPath: checkpoint) == saved, "the previous checkpoint changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/run").filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        // Unwritable: the run folder would be inside a file.
        _ = FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8))
        let unwritable = try promptloop(vae.arguments(dir + "/file/run", 2))
        #expect(unwritable.status == 1 && unwritable.stderr.contains(dir + "/file/run"), "\(unwritable.stderr)")
        // An output path that is a folder.
        try FileManager.default.createDirectory(atPath: dir + "/out.png", withIntermediateDirectories: true)
        let out = try promptloop(["generate", "a red circle", "--steps", "2", "--quiet", "--out", dir + "/out.png"])
        #expect(out.status != 0 && out.stderr.contains(dir + "/out.png"), "\(out.stderr)")
        // Two runs on one folder: the second refuses while the first lives; a killed run's lock is stale.
        let holder = try start(vae.arguments(dir + "/busy", 100_000))
        while holder.isRunning && lineCount(dir + "/busy/loss.csv") < 1 { Thread.sleep(forTimeInterval: 0.01) }
        let second = try promptloop(vae.arguments(dir + "/busy", 100_000))
        #expect(second.status == 1 && second.stderr.contains("in use by another run")
            && second.stderr.contains("\(holder.processIdentifier)"), "\(second.stderr)")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        let third = try promptloop(vae.arguments(dir + "/busy", 100_000) + ["--until", "1"])
        #expect(third.status == 0, "a stale lock was not taken over: \(third.stderr)")
    }
}

/// `promptloop ARGS` with extra environment variables.
func promptloopWith(_ environment: [String: String], _ arguments: [String]) throws -> Run {
    let assignments = environment.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
    let quoted = try ([binary()] + arguments).map { "'\($0)'" }.joined(separator: " ")
    return try shell("\(assignments) exec \(quoted)")
}

/// Runs `/bin/sh -c SCRIPT` in the repository.
func shell(_ script: String) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    process.currentDirectoryURL = URL(fileURLWithPath: repository)
    let errPath = NSTemporaryDirectory() + "promptloop-stderr-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    process.waitUntilExit()
    let err = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
    return Run(status: process.terminationStatus, stdout: "", stderr: err)
}
