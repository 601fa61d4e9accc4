// swift-tools-version: 6.1
// PromptLoop: prompt refinement during diffusion sampling, on libtorch.
import Foundation
import PackageDescription

/// libtorch root: `LIBTORCH` if set, else the copy that `scripts/bootstrap` puts in `.deps/torch`.
let libtorch: String = {
    if let path = Context.environment["LIBTORCH"], !path.isEmpty { return path }
    return Context.packageDirectory + "/.deps/torch"
}()

/// `PROMPTLOOP_CUDA=1` links torch_cuda with --no-as-needed so that its kernels register
/// (for the static GPU binary; CI and the default build are CPU-only).
let linkCUDA = Context.environment["PROMPTLOOP_CUDA"] == "1"

var torchLinkerFlags = ["-L\(libtorch)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(libtorch)/lib"]
if linkCUDA {
    torchLinkerFlags += [
        "-Xlinker", "--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Xlinker", "--as-needed",
        "-Xlinker", "--allow-shlib-undefined",
    ]
}

let package = Package(
    name: "PromptLoop",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "promptloop", targets: ["promptloop"]),
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "TorchNN", targets: ["TorchNN"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
        .library(name: "ShapeWorld", targets: ["ShapeWorld"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "GGUF", targets: ["GGUF"]),
        .library(name: "VisionLanguage", targets: ["VisionLanguage"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Miniature", targets: ["Miniature"]),
        .library(name: "PromptLoop", targets: ["PromptLoop"]),
        .library(name: "Rewards", targets: ["Rewards"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "CTorch",
            cxxSettings: [
                .unsafeFlags([
                    "-I\(libtorch)/include", "-I\(libtorch)/include/torch/csrc/api/include",
                    "-D_GLIBCXX_USE_CXX11_ABI=1", "-O2", "-Wno-unused-parameter",
                ]),
            ],
            linkerSettings: [
                .unsafeFlags(torchLinkerFlags),
                .linkedLibrary("torch_cpu"),
                .linkedLibrary("c10"),
            ]
        ),
        .target(name: "Torch", dependencies: ["CTorch", "CZlib"]),
        .target(name: "TorchNN", dependencies: ["Torch"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "Tokenizers", dependencies: ["CZlib"]),
        .executableTarget(name: "promptloop-fuzz",
                          dependencies: ["Diffusion", "GGUF", "Imaging", "PromptLoop", "ShapeWorld", "Tokenizers", "Torch",
                                         "TorchNN", "Training", "VisionLanguage"],
                          path: "Sources/Fuzz"),
        .executableTarget(name: "tokenizers-bench", dependencies: ["Tokenizers"], path: "Sources/TokenizersBench"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        // RGB images, PNG (libpng), the bitmap font, contact sheets and plots; no Torch.
        .target(name: "Imaging", dependencies: ["CPNG"], swiftSettings: [.unsafeFlags(["-O"])]),
        // Checkpoints with optimizer and RNG state, loss logs and plots, progress: shared by every trainer.
        .target(name: "Training", dependencies: ["Torch", "TorchNN", "Imaging"]),
        .target(name: "Diffusion", dependencies: ["Torch", "TorchNN", "Tokenizers", "Training", "Imaging"]),
        // Dequantisation loops are optimised even in debug builds (as ShapeWorld).
        .target(name: "GGUF", swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "VisionLanguage", dependencies: ["Torch", "TorchNN", "Tokenizers", "GGUF", "Imaging"]),
        .target(
            name: "ShapeWorld",
            dependencies: ["Imaging"],
            // Pixel loops (renderer, detector, degradations) are optimised even in debug builds so
            // that the 10,000-scene accuracy tests finish in seconds under `swift test`.
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // The embedded miniature's configs, tokenizer, training data and recipes.
        .target(name: "Miniature", dependencies: ["Diffusion", "ShapeWorld", "Training", "Imaging", "Tokenizers", "Torch",
                                                  "TorchNN", "VisionLanguage", "Rewards"]),
        // Black-box rewards on (image, query): ShapeEval strict / soft / strict-exact, CLIPScore, weighted sums.
        .target(name: "Rewards", dependencies: ["Imaging", "ShapeWorld", "Torch", "TorchNN", "Diffusion", "VisionLanguage"]),
        // The algorithm and its evaluation: protocol, tables, audits, benchmarks.
        .target(name: "PromptLoop", dependencies: ["Diffusion", "ShapeWorld", "VisionLanguage", "Imaging", "Training",
                                                   "Rewards", "Tokenizers", "Torch", "TorchNN"]),
        .executableTarget(
            name: "promptloop",
            dependencies: [
                "Torch", "TorchNN", "Diffusion", "ShapeWorld", "Tokenizers", "VisionLanguage", "GGUF", "Imaging",
                "Training", "Miniature", "PromptLoop",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TorchTests", dependencies: ["Torch"], exclude: ["Fixtures"]),
        .testTarget(name: "TorchNNTests", dependencies: ["TorchNN"], exclude: ["Fixtures"]),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion"], exclude: ["Fixtures"]),
        .testTarget(name: "ShapeWorldTests", dependencies: ["ShapeWorld", "Imaging"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Torch", "TorchNN", "Imaging"]),
        .testTarget(name: "MiniatureTests", dependencies: ["Miniature", "Diffusion", "ShapeWorld", "Tokenizers", "Torch",
                                                           "TorchNN", "VisionLanguage", "Imaging", "Rewards"], exclude: ["Fixtures"]),
        .testTarget(name: "PromptLoopTests", dependencies: ["PromptLoop", "ShapeWorld", "Diffusion", "VisionLanguage",
                                                            "Imaging", "Torch", "TorchNN", "Training", "Rewards", "Miniature"]),
        .testTarget(name: "RewardsTests", dependencies: ["Rewards", "ShapeWorld", "Imaging", "Torch"], exclude: ["Fixtures"]),
        // Runs the built `promptloop` binary end to end on tiny fixtures.
        .testTarget(name: "CLITests", dependencies: ["promptloop", "Torch"]),
        .testTarget(name: "VisionLanguageTests", dependencies: ["VisionLanguage", "GGUF", "Tokenizers"], exclude: ["Fixtures"]),
        .testTarget(
            name: "GGUFTests", dependencies: ["GGUF", "Tokenizers"], exclude: ["Fixtures"],
            // SHA-256 over the 0.5 GB of dequantised SmolLM2 weights needs optimised code even in debug.
            swiftSettings: [.unsafeFlags(["-O"])]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
