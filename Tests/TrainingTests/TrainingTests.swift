import Foundation
import Imaging
import Testing
import Torch
import TorchNN
@testable import Training

func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "promptloop-training-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct CheckpointTests {
    /// A store with one weight, an AdamW that has taken two steps on it, and a generator that drew.
    func state(seed: UInt64) throws -> (ParameterStore, AdamW, Generator) {
        let store = try ParameterStore(seed: seed)
        let w = store.root.parameter("w", [3, 2], .normal(mean: 0, std: 1))
        let optimizer = AdamW(store.trainableTensors, learningRate: 0.1)
        for _ in 0..<2 {
            optimizer.zeroGrad()
            (w * w).sum().backward()
            optimizer.step()
        }
        let g = try Generator(seed: seed)
        _ = Tensor.randn([5], generator: g)
        return (store, optimizer, g)
    }

    @Test func aCheckpointRestoresParametersOptimizerAndGenerators() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/checkpoint.safetensors"
        let (store, optimizer, g) = try state(seed: 1)
        try TrainingCheckpoint.save(to: path, stores: ["m": store], optimizer: optimizer, generators: ["noise": g],
                                    step: 2, metadata: ["run": "test a=1"])
        let (store2, optimizer2, g2) = try state(seed: 2)
        let (step, metadata) = try TrainingCheckpoint.load(from: path, stores: ["m": store2], optimizer: optimizer2,
                                                           generators: ["noise": g2])
        #expect(step == 2 && metadata["run"] == "test a=1")
        #expect(store2.parameters[0].tensor.equal(store.parameters[0].tensor))
        #expect(Tensor.rand([4], generator: g2).equal(Tensor.rand([4], generator: g)))
        // The same run resumes; another is refused with both signatures in the message.
        #expect(try TrainingCheckpoint.resumeCheck(path: path, signature: "test a=1"))
        #expect(try !TrainingCheckpoint.resumeCheck(path: folder + "/none.safetensors", signature: "x"))
        do {
            _ = try TrainingCheckpoint.resumeCheck(path: path, signature: "test a=2")
            Issue.record("resumed a checkpoint of other settings")
        } catch let error as TrainingError {
            #expect(error.description.contains("test a=1") && error.description.contains("test a=2"))
        }
    }

    /// A checkpoint carries a CRC-32 of its data: a torn newest one is recognised and the one
    /// before it is resumed; a generator state of the wrong dtype (found by the fuzzer) is an error
    /// naming the file.
    @Test func aTornCheckpointFallsBackToThePreviousOne() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/checkpoint.safetensors"
        let (store, optimizer, g) = try state(seed: 1)
        try TrainingCheckpoint.save(to: path, stores: ["m": store], optimizer: optimizer, generators: ["noise": g], step: 1)
        try TrainingCheckpoint.save(to: path, stores: ["m": store], optimizer: optimizer, generators: ["noise": g], step: 2)
        #expect(try TrainingCheckpoint.latestComplete(path: path) == path)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count - 1] ^= 1
        try data.write(to: URL(fileURLWithPath: path))
        #expect(throws: TorchError.self) { try SafeTensorsFile(path: path).verifyChecksum() }
        let found = try TrainingCheckpoint.latestComplete(path: path)
        #expect(found == TrainingCheckpoint.previousPath(of: path))
        #expect(try TrainingCheckpoint.load(from: found!, stores: ["m": store], optimizer: optimizer,
                                            generators: ["noise": g]).step == 1)
        try FileManager.default.removeItem(atPath: found!)
        do {
            _ = try TrainingCheckpoint.latestComplete(path: path)
            Issue.record("a torn checkpoint without a previous one was accepted")
        } catch {
            #expect("\(error)".contains(path))
        }
        // A generator state saved as the wrong dtype.
        let lie = folder + "/lie.safetensors"
        try SafeTensors.write(["rng.noise": Tensor.zeros([4]), "param.m.w": store.parameters[0].tensor],
                              metadata: ["step": "1"], to: lie)
        do {
            _ = try TrainingCheckpoint.load(from: lie, stores: ["m": store], optimizer: optimizer, generators: ["noise": g])
            Issue.record("a float generator state loaded")
        } catch {
            #expect("\(error)".contains(lie), "\(error)")
        }
    }

    /// A run folder's lock: a second holder is refused naming the first; released, it is free again.
    @Test func aRunFolderIsLockedWhileInUse() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var first: RunLock? = try RunLock(folder: folder)
        #expect(first != nil)
        #expect(throws: TrainingError.locked(folder: folder, holder: "\(getpid())")) { _ = try RunLock(folder: folder) }
        first = nil
        _ = try RunLock(folder: folder)
        #expect(throws: TrainingError.self) { _ = try RunLock(folder: folder + "/.lock/x") }
    }

    @Test func aFileWithoutAStepIsNotACheckpoint() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/weights.safetensors"
        try SafeTensors.write(["w": Tensor.zeros([3, 2])], to: path)
        let (store, optimizer, g) = try state(seed: 1)
        #expect(throws: TrainingError.notACheckpoint(path: path, reason: "no step in the metadata")) {
            try TrainingCheckpoint.load(from: path, stores: ["m": store], optimizer: optimizer, generators: ["noise": g])
        }
    }
}

@Suite struct LossLogTests {
    @Test func rowsAppendTruncateAndPlot() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = LossLog(path: folder + "/loss.csv", columns: ["loss", "lr"])
        for step in 1...5 { try log.append([1 / Double(step), 0.1], step: step) }
        #expect(log.rows().map(\.step) == [1, 2, 3, 4, 5])
        #expect(try String(contentsOfFile: log.path, encoding: .utf8).hasPrefix("step,loss,lr\n"))
        // Resuming from step 3 drops the rows a killed run wrote after its checkpoint.
        try log.truncate(after: 3)
        #expect(log.rows().map(\.step) == [1, 2, 3])
        #expect(log.rows()[1].values == [0.5, 0.1])
        try log.writePlot(to: folder + "/loss.png")
        let png = try PNG.read(from: folder + "/loss.png")
        #expect(png.width == 480 && png.height == 240)
        try log.writePlot(to: folder + "/loss.svg")
        #expect(try String(contentsOfFile: folder + "/loss.svg", encoding: .utf8).contains("<polyline"))
    }

    @Test func aLogThatCannotBeWrittenNamesItsPath() {
        let log = LossLog(path: "/nonexistent/folder/loss.csv", columns: ["loss"])
        do {
            try log.append([1], step: 1)
            Issue.record("wrote into a missing folder")
        } catch let error as TrainingError {
            #expect(error.description.contains("/nonexistent/folder/loss.csv"))
        } catch {
            Issue.record("untyped error \(error)")
        }
    }
}

@Suite struct ProgressMeterTests {
    @Test func rateAndETACountOnlyTheStepsOfThisProcess() {
        let start = Date(timeIntervalSince1970: 1_000)
        // Resumed at step 100 of 300; 10 steps in 20 s.
        let meter = ProgressMeter(total: 300, startingAt: 100, start: start)
        let now = start.addingTimeInterval(20)
        #expect(meter.secondsPerStep(at: 110, now: now) == 2)
        #expect(meter.eta(at: 110, now: now) == 380)
        #expect(meter.line(step: 110, text: "loss 0.5", now: now) == "step 110/300  loss 0.5  2.00 s/step  ETA 6m20s")
        #expect(ProgressMeter.duration(3725) == "1h02m")
        #expect(meter.secondsPerStep(at: 100, now: now) == 0)
        #expect(!meter.isDone(299) && meter.isDone(300))
    }
}
