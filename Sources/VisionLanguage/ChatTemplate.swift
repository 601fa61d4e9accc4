import Foundation
import TorchNN

/// One chat turn.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: "system", content: text) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: "user", content: text) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: "assistant", content: text) }
}

/// The chat formats of the supported model families, recognised from a model's Jinja template
/// (`chat_template` in `tokenizer_config.json` or GGUF metadata) rather than interpreted: ChatML
/// (Qwen2, SmolLM2; with the template's default system prompt) and Llama 3. Any other template is
/// an error, never a silently wrong prompt.
public enum ChatTemplate: Sendable, Equatable {
    case chatML(defaultSystem: String?)
    case llama3

    public init(template: String, source: String) throws {
        if template.contains("<|im_start|>") {
            self = .chatML(defaultSystem: ChatTemplate.defaultSystem(in: template))
        } else if template.contains("<|start_header_id|>") && template.contains("<|eot_id|>") {
            guard !template.contains("Cutting Knowledge Date") else {
                throw ModelError.unsupported(file: source, field: "chat_template",
                                                      value: "Llama 3.1+ template with a dated system prompt")
            }
            self = .llama3
        } else {
            throw ModelError.unsupported(file: source, field: "chat_template",
                                                  value: "a template that is neither ChatML nor Llama 3 (\(template.prefix(60))…)")
        }
    }

    /// The system text a ChatML template inserts when the conversation has none.
    static func defaultSystem(in template: String) -> String? {
        guard let start = template.range(of: "<|im_start|>system"),
              let end = template.range(of: "<|im_end|>", range: start.upperBound..<template.endIndex)
        else { return nil }
        var text = String(template[start.upperBound..<end.lowerBound])
        // The text sits inside a Jinja string literal: a real newline or an escaped "\n" follows "system".
        text = text.replacingOccurrences(of: "\\n", with: "\n")
        guard text.hasPrefix("\n") else { return nil }
        text.removeFirst()
        // A template that builds the system message from variables has no literal default.
        return text.contains("{{") || text.contains("'") || text.isEmpty ? nil : text
    }

    /// The prompt text for `messages`, ending with the assistant header when `addGenerationPrompt`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) -> String {
        switch self {
        case .chatML(let defaultSystem):
            var out = ""
            if let defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
            return out
        case .llama3:
            var out = "<|begin_of_text|>"
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content.trimmingCharacters(in: .whitespacesAndNewlines))<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
            return out
        }
    }

    /// Tokens that end an assistant turn.
    public var stopTokens: [String] {
        switch self {
        case .chatML: return ["<|im_end|>"]
        case .llama3: return ["<|eot_id|>"]
        }
    }
}
