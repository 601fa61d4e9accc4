// The formats the fuzzer mutates: where a case file lives, the seed files it starts from, the
// loader the tool uses for it, and the structured lies specific to the format.
import Diffusion
import Foundation
import GGUF
import Imaging
import PromptLoop
import ShapeWorld
import Tokenizers
import Torch
import TorchNN
import Training
import VisionLanguage

/// One input format: seeds, where a case goes, how the tool reads it.
struct Format {
    enum Kind { case binary, json, jsonLines }

    let name: String
    /// A folder copied (JSON files copied, the rest linked) into the work folder once per child;
    /// nil for a lone file.
    let folder: String?
    /// The case file, relative to the copied folder (or the lone file's name).
    let file: String
    /// The unmutated inputs the cases start from.
    let seeds: () throws -> [[UInt8]]
    /// Format-specific structured lies (besides the generic byte-level and JSON ones).
    let lies: ((inout [UInt8], inout SplitMix) -> String)?
    let kind: Kind
    /// Reads the case as the tool does; `root` is the copied folder or the lone file's folder.
    let load: (_ root: String, _ path: String) throws -> Void
}

let repository: String = {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    for _ in 0..<6 {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
        dir = dir.deletingLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath
}()

func bytes(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: repository + "/" + path) else {
        throw FuzzError("cannot read the seed \(path)")
    }
    return [UInt8](data)
}

struct FuzzError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

let tinySD = "Tests/DiffusionTests/Fixtures/tiny-sd"
let policyFolder = "Models/shapeworld-policy"

/// A small safetensors file of every common dtype, with metadata and a checksum.
func safetensorsSeed() throws -> [UInt8] {
    let path = NSTemporaryDirectory() + "fuzz-seed-\(getpid()).safetensors"
    defer { unlink(path) }
    let base = Tensor.arange(0, 24).reshape([2, 3, 4])
    try SafeTensors.write(["a.f32": base.to(.float32), "b.f16": base.to(.float16), "c.bf16": base.to(.bfloat16),
                           "d.i64": base.to(.int64), "e.u8": base.to(.uint8), "f.scalar": Tensor(scalar: Float(3))],
                          metadata: ["format": "pt", "note": "fuzz seed"], to: path, checksum: true)
    return [UInt8](FileManager.default.contents(atPath: path)!)
}

/// A training checkpoint of a two-layer model with AdamW moments and a generator state.
func checkpointSeed() throws -> [UInt8] {
    let folder = NSTemporaryDirectory() + "fuzz-ckpt-\(getpid())"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let (store, optimizer, generator) = try tinyTrainingState()
    let x = Tensor.randn([4, 8], generator: generator)
    let loss = tinyForward(store, x).square().mean()
    loss.backward()
    optimizer.step()
    try TrainingCheckpoint.save(to: folder + "/checkpoint.safetensors", stores: ["m": store], optimizer: optimizer,
                                generators: ["g": generator], step: 3, metadata: ["run": "fuzz"])
    return [UInt8](FileManager.default.contents(atPath: folder + "/checkpoint.safetensors")!)
}

func tinyTrainingState() throws -> (ParameterStore, AdamW, Generator) {
    let store = try ParameterStore(seed: 1)
    _ = Linear(store.root / "l1", 8, 16)
    _ = Linear(store.root / "l2", 16, 2)
    return (store, AdamW(store.trainableTensors, learningRate: 1e-3), try Generator(seed: 2))
}

func tinyForward(_ store: ParameterStore, _ x: Tensor) -> Tensor {
    let h = (x.matmul(store["l1.weight"]!.tensor.transpose(0, 1)) + store["l1.bias"]!.tensor).relu()
    return h.matmul(store["l2.weight"]!.tensor.transpose(0, 1)) + store["l2.bias"]!.tensor
}

/// A 24×16 gradient as PNG.
func pngSeed() throws -> [UInt8] {
    var pixels: [UInt8] = []
    for y in 0..<16 { for x in 0..<24 { pixels += [UInt8(x * 10), UInt8(y * 15), UInt8((x + y) * 5)] } }
    return try PNG.encode(RGBImage(width: 24, height: 16, bytes: pixels))
}

nonisolated(unsafe) let allFormats: [Format] = [
    Format(name: "safetensors", folder: nil, file: "case.safetensors", seeds: { [try safetensorsSeed()] },
           lies: safetensorsLie, kind: .binary) { _, path in
        let file = try SafeTensorsFile(path: path)
        try file.verifyChecksum()
        for name in file.names { _ = try file.tensor(name) }
    },
    Format(name: "unet-lora", folder: "Tests/DiffusionTests/Fixtures/unet-lora", file: "pytorch_lora_weights.safetensors",
           seeds: { [try bytes("Tests/DiffusionTests/Fixtures/unet-lora/pytorch_lora_weights.safetensors")] },
           lies: safetensorsLie, kind: .binary) { root, _ in
        _ = try UNet2DConditionModel.load(folder: repository + "/Models/shapeworld-sd/unet", options: LoadOptions(unetLoRA: root))
    },
    Format(name: "gguf", folder: nil, file: "case.gguf", seeds: { [try bytes("Tests/GGUFTests/Fixtures/tiny.gguf")] },
           lies: ggufLie, kind: .binary) { _, path in
        // What the tool reads of any GGUF file: metadata, tensors (dequantised), the tokenizer; the
        // model itself where the architecture is one PromptLoop builds.
        let file = try GGUFFile(url: URL(fileURLWithPath: path))
        for tensor in file.tensors { _ = try file.dequantize(tensor) }
        if file.metadata["tokenizer.ggml.model"] != nil {
            _ = try GGUFTokenizer(file).makeTokenizer().encode("a red circle")
        }
        if ["llama", "qwen2"].contains(file.metadata["general.architecture"]?.stringValue ?? "") {
            _ = try CausalLM.load(gguf: path)
        }
    },
    Format(name: "png", folder: nil, file: "case.png", seeds: { [try pngSeed()] }, lies: pngLie, kind: .binary) { _, path in
        _ = try PNG.read(from: path)
    },
    Format(name: "tokenizer.json", folder: nil, file: "tokenizer.json",
           seeds: { [try bytes("Models/shapeworld-sd/tokenizer/tokenizer.json"), try bytes(policyFolder + "/tokenizer.json")] },
           lies: nil, kind: .json) { _, path in
        let t = try PreTrainedTokenizer(tokenizerJSON: URL(fileURLWithPath: path))
        let ids = t.encode("two red circles left of a blue square <|im_end|>").ids
        _ = t.decode(ids)
    },
    Format(name: "unet-config.json", folder: tinySD, file: "unet/config.json",
           seeds: { [try bytes(tinySD + "/unet/config.json")] }, lies: nil, kind: .json) { root, _ in
        _ = try UNet2DConditionModel.load(folder: root + "/unet")
    },
    Format(name: "vae-config.json", folder: tinySD, file: "vae/config.json",
           seeds: { [try bytes(tinySD + "/vae/config.json")] }, lies: nil, kind: .json) { root, _ in
        _ = try AutoencoderKL.load(folder: root + "/vae")
    },
    Format(name: "text-encoder-config.json", folder: tinySD, file: "text_encoder/config.json",
           seeds: { [try bytes(tinySD + "/text_encoder/config.json")] }, lies: nil, kind: .json) { root, _ in
        _ = try CLIPTextModel.load(folder: root + "/text_encoder")
    },
    Format(name: "policy-config.json", folder: policyFolder, file: "config.json",
           seeds: { [try bytes(policyFolder + "/config.json")] }, lies: nil, kind: .json) { root, _ in
        _ = try LlavaModel.load(folder: root)
    },
    Format(name: "preprocessor_config.json", folder: policyFolder, file: "preprocessor_config.json",
           seeds: { [try bytes(policyFolder + "/preprocessor_config.json")] }, lies: nil, kind: .json) { root, _ in
        let processor = try ImageProcessor.load(folder: root)
        _ = try processor(Tensor.rand([1, 3, 64, 64], generator: try Generator(seed: 0)))
    },
    Format(name: "model_index.json", folder: tinySD, file: "model_index.json",
           seeds: { [try bytes(tinySD + "/model_index.json")] }, lies: nil, kind: .json) { root, _ in
        _ = try StableDiffusionPipeline.load(folder: root)
    },
    Format(name: "scheduler_config.json", folder: tinySD, file: "scheduler/scheduler_config.json",
           seeds: { [try bytes(tinySD + "/scheduler/scheduler_config.json")] }, lies: nil, kind: .json) { root, _ in
        // Loaded, then sampled for a few steps: the schedule's tables and every step's coefficients.
        let pipe = try StableDiffusionPipeline.load(folder: root)
        _ = try pipe.sample(prompts: [""], options: SamplingOptions(steps: 3, guidance: 1, height: 16, width: 16))
    },
    Format(name: "training-config", folder: nil, file: "run.json",
           seeds: { [try bytes("configs/grpo-closed.json")] }, lies: nil, kind: .json) { _, path in
        _ = try GRPOConfig.loadValidated(path: path)
    },
    Format(name: "checkpoint", folder: nil, file: "checkpoint.safetensors", seeds: { [try checkpointSeed()] },
           lies: safetensorsLie, kind: .binary) { root, path in
        guard let found = try TrainingCheckpoint.latestComplete(path: path) else { return }
        let (store, optimizer, generator) = try tinyTrainingState()
        _ = try TrainingCheckpoint.load(from: found, stores: ["m": store], optimizer: optimizer,
                                        generators: ["g": generator])
    },
    Format(name: "prompt-set", folder: nil, file: "prompts.jsonl", seeds: {
        let lines = String(decoding: try bytes("Data/shapeworld/v1/eval.jsonl"), as: UTF8.self).split(separator: "\n")
        return [Array((lines.prefix(40).joined(separator: "\n") + "\n").utf8)]
    }, lies: nil, kind: .jsonLines) { _, path in
        _ = try PromptSets.readJSONLines(path: path)
    },
]
