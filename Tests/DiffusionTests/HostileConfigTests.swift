import Foundation
import Testing
import Torch
import TorchNN
@testable import Diffusion

/// A copy of the shipped pipeline folder whose `component/file` has `field` set to the raw JSON
/// `value` (weights are linked, not copied).
func mutatedPipeline(_ component: String, _ file: String, field: String, value: String) throws -> String {
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Models/shapeworld-sd").standardized.path
    let fm = FileManager.default
    let folder = fm.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString)").path
    try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for entry in try fm.contentsOfDirectory(atPath: source) {
        let from = source + "/" + entry, to = folder + "/" + entry
        var isDirectory: ObjCBool = false
        _ = fm.fileExists(atPath: from, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
            for inner in try fm.contentsOfDirectory(atPath: from) {
                if inner.hasSuffix(".json") {
                    try fm.copyItem(atPath: from + "/" + inner, toPath: to + "/" + inner)
                } else {
                    try fm.createSymbolicLink(atPath: to + "/" + inner, withDestinationPath: from + "/" + inner)
                }
            }
        } else {
            try fm.copyItem(atPath: from, toPath: to)
        }
    }
    let path = folder + "/" + component + "/" + file
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    json[field] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    return folder
}

/// The configs that crashed `promptloop generate` with a trap or ran out of memory (issue 15): each
/// now ends in an error naming the file and the field.
@Suite struct HostileConfigTests {
    static let cases: [(String, String, String, String)] = [
        ("scheduler", "scheduler_config.json", "num_train_timesteps", "4611686018427387904"),
        ("scheduler", "scheduler_config.json", "steps_offset", "4611686018427387904"),
        ("scheduler", "scheduler_config.json", "beta_start", "1e308"),
        ("scheduler", "scheduler_config.json", "trained_betas", "[0.5, 0.5]"),
        ("unet", "config.json", "sample_size", "4611686018427387904"),
        ("unet", "config.json", "norm_num_groups", "0"),
        ("unet", "config.json", "layers_per_block", "4611686018427387904"),
        ("unet", "config.json", "attention_head_dim", "0"),
        ("unet", "config.json", "block_out_channels", "[64, 128, -8]"),
        ("vae", "config.json", "norm_num_groups", "-1"),
        ("vae", "config.json", "layers_per_block", "0"),
        ("text_encoder", "config.json", "vocab_size", "4611686018427387904"),
        ("text_encoder", "config.json", "num_attention_heads", "0"),
    ]

    @Test(arguments: 0..<cases.count)
    func outOfRangeFieldIsNamed(_ index: Int) throws {
        let (component, file, field, value) = Self.cases[index]
        let folder = try mutatedPipeline(component, file, field: field, value: value)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            _ = try StableDiffusionPipeline.load(folder: folder)
            Issue.record("\(component)/\(file) with \(field) = \(value) loaded")
        } catch let error as ModelError {
            let text = "\(error)"
            #expect(text.contains(component + "/" + file), "\(text)")
            #expect(text.contains(field), "\(text)")
        }
    }

    /// A config that passes every range but describes a far larger model than its weights is
    /// refused before its parameters are allocated.
    @Test func configLargerThanItsWeightsAllocatesNothing() throws {
        let folder = try mutatedPipeline("unet", "config.json", field: "block_out_channels", value: "[4096, 8192, 8192]")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: ModelError.self) { _ = try UNet2DConditionModel.load(folder: folder + "/unet") }
        do {
            _ = try UNet2DConditionModel.load(folder: folder + "/unet")
        } catch {
            #expect("\(error)".contains("more weights than"), "\(error)")
        }
    }

    /// Found by the fuzzer: the schedulers named `scheduler_config.json` without its folder.
    @Test func schedulerErrorsNameTheFilesPath() throws {
        let folder = try mutatedPipeline("scheduler", "scheduler_config.json", field: "prediction_type", value: "\"x\"")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            _ = try StableDiffusionPipeline.load(folder: folder)
            Issue.record("prediction_type x loaded")
        } catch {
            #expect("\(error)".contains(folder + "/scheduler/scheduler_config.json"), "\(error)")
        }
    }

    /// A steps_offset inside its range that pushes a timestep past the table is an argument error.
    @Test func stepsOffsetPastTheTable() throws {
        var c = SchedulerConfig()
        c.stepsOffset = 5
        let s = try DDIMScheduler(c)
        #expect(throws: DiffusionError.self) { try s.setTimesteps(1000) }
        try s.setTimesteps(20)
    }
}
