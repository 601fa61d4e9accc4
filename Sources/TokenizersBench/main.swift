// Encode-speed benchmark for the Tokenizers target (not a test; prints timings).
//
//     swift run -c release tokenizers-bench
import Foundation
import Tokenizers

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../Tests/TokenizersTests/Fixtures").standardizedFileURL

let prompts = [
    "a photo of a cat",
    "A photo of an astronaut riding a horse on Mars",
    "a red cube to the left of a blue sphere",
    "three green triangles above two yellow circles, highly detailed, 4k",
    "portrait of a woman, oil painting by greg rutkowski, trending on artstation",
    "a watercolor sketch of a neon cyberpunk city at night",
    "two dogs and a cat sitting on a sofa",
    "a minimalist landscape with a sunset over the ocean",
]

func measure(_ name: String, _ tokenizer: any Tokenizer, options: EncodingOptions, unique: Bool) {
    var sink = 0
    // Warm-up (fills the BPE cache for the repeated-prompt case).
    for p in prompts { sink &+= tokenizer.encode(p, options: options).ids.count }
    let rounds = 20_000
    let start = DispatchTime.now().uptimeNanoseconds
    for r in 0..<rounds {
        for p in prompts {
            let text = unique ? p + " \(r)" : p
            sink &+= tokenizer.encode(text, options: options).ids.count
        }
    }
    let ns = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(rounds * prompts.count)
    let label = name.padding(toLength: 36, withPad: " ", startingAt: 0)
    print(label + String(format: "%7.2f µs/prompt (checksum %d)", ns / 1000, sink))
}

let loadStart = DispatchTime.now().uptimeNanoseconds
let clip = try CLIPTokenizer(
    vocab: fixtures.appendingPathComponent("clip/vocab.json.gz"),
    merges: fixtures.appendingPathComponent("clip/merges.txt.gz"))
let loadMs = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e6
print(String(format: "CLIP load (vocab.json.gz + merges.txt.gz): %.1f ms", loadMs))
let jsonStart = DispatchTime.now().uptimeNanoseconds
_ = try CLIPTokenizer(tokenizerJSON: fixtures.appendingPathComponent("clip/tokenizer.json.gz"))
let jsonMs = Double(DispatchTime.now().uptimeNanoseconds - jsonStart) / 1e6
print(String(format: "CLIP load (tokenizer.json.gz): %.1f ms", jsonMs))
let qwen = try PreTrainedTokenizer(tokenizerJSON: fixtures.appendingPathComponent("qwen2/tokenizer.json"))
let gpt2 = try PreTrainedTokenizer(tokenizerJSON: fixtures.appendingPathComponent("gpt2/tokenizer.json"))

measure("CLIP, 77 padded", clip, options: clip.defaultOptions, unique: false)
measure("CLIP, 77 padded, + unique number", clip, options: clip.defaultOptions, unique: true)
measure("GPT-2 regex BPE", gpt2, options: EncodingOptions(), unique: false)
measure("Qwen2 regex BPE", qwen, options: EncodingOptions(), unique: false)
