// Policies that act in the refinement MDP: a LLaVA model (sees x̂₀ in the closed loop), a text-only
// chat model (feed-forward and open loop), and scripted ones for tests and baselines.
import Foundation
import Imaging
import Tokenizers
import Torch
import VisionLanguage

/// A LLaVA-architecture policy: the state is one user turn (`<image>` first when the state has an
/// image), the action the assistant reply up to its stop token. The rows of a call are one
/// generation batch.
public final class LlavaPolicy: RefinementPolicy {
    public let chat: LlavaChat
    public var sampling: SamplingConfig
    /// A system turn before the state, if the policy was trained with one.
    public var systemPrompt: String?

    public init(chat: LlavaChat, sampling: SamplingConfig, systemPrompt: String? = nil) {
        self.chat = chat
        self.sampling = sampling
        self.systemPrompt = systemPrompt
    }

    public func act(_ states: [RefinementState]) throws -> [RefinementAction] {
        guard !states.isEmpty else { return [] }
        let (out, texts) = try chat.replies(users: states.map(\.text), images: states.map(\.image), system: systemPrompt,
                                           sampling: sampling)
        return states.indices.map { r in
            RefinementAction.parse(reply: texts[r], tokens: out.tokens[r], logProbs: out.logProbs[r],
                                   stopped: out.stopped[r], state: states[r])
        }
    }
}

/// A text-only chat model as a policy (no image: feed-forward and open loop), e.g. SmolLM2 with the
/// rewriter's system prompt — an instruction-tuned rewriter the reward never touched.
public final class ChatPolicy: RefinementPolicy {
    public let model: ChatModel
    public var sampling: SamplingConfig
    public var systemPrompt: String?
    /// Turns a state into the user message (default: the state's text).
    public var userMessage: (RefinementState) -> String

    public init(model: ChatModel, sampling: SamplingConfig, systemPrompt: String? = PromptRewriter.systemPrompt,
                userMessage: @escaping (RefinementState) -> String = { $0.prompt }) {
        self.model = model
        self.sampling = sampling
        self.systemPrompt = systemPrompt
        self.userMessage = userMessage
    }

    public func act(_ states: [RefinementState]) throws -> [RefinementAction] {
        guard !states.isEmpty else { return [] }
        var prompts: [[Int]] = []
        var stop = Set<Int>()
        for state in states {
            var messages: [ChatMessage] = []
            if let systemPrompt { messages.append(.system(systemPrompt)) }
            messages.append(.user(userMessage(state)))
            let input = chatInput(messages, template: model.template, tokenizer: model.tokenizer,
                                  eos: model.tokenizer.eosTokenId ?? model.model.config.eosTokenId?.all.first)
            prompts.append(input.ids)
            stop.formUnion(input.stop)
        }
        var config = sampling
        config.stopTokens.formUnion(stop)
        let out = try model.model.generate(prompts: prompts, config: config, padId: model.tokenizer.padTokenId ?? 0)
        return states.indices.map { r in
            let reply = model.tokenizer.decode(out.tokens[r], skipSpecialTokens: true)
            return RefinementAction.parse(reply: PromptRewriter.answer(from: reply), tokens: out.tokens[r],
                                          logProbs: out.logProbs[r], stopped: out.stopped[r], state: states[r])
        }
    }
}

/// A policy that replies by a rule (tests, hand-written baselines): `reply(state)` is the reply text,
/// nil for no reply (an invalid action). Records every state it saw.
public final class ScriptedPolicy: RefinementPolicy {
    public let reply: (RefinementState) -> String?
    public private(set) var seen: [RefinementState] = []
    /// Called at each `act` (a test can note when the policy runs).
    public var onAct: (() -> Void)?

    public init(_ reply: @escaping (RefinementState) -> String?) { self.reply = reply }

    /// Repeats the current prompt.
    public static func repeating() -> ScriptedPolicy { ScriptedPolicy { $0.prompt } }

    public func act(_ states: [RefinementState]) throws -> [RefinementAction] {
        onAct?()
        seen += states
        return states.map { state in
            let text = reply(state)
            return RefinementAction.parse(reply: text ?? "", tokens: [], logProbs: [], stopped: text != nil, state: state)
        }
    }
}
