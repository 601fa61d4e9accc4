// Measuring the detector on freshly rendered scenes: recovery rate and confusion matrices.

import Foundation
import Imaging

/// The image conditions the detector is measured under.
public enum ImageCondition: String, CaseIterable, Codable, Sendable {
    /// As rendered.
    case clean
    /// Gaussian blur σ = 1 px.
    case blur
    /// Gaussian noise σ = 0.05.
    case noise
    /// Per-object and background colour jitter ±8% per channel.
    case jitter
    /// 2× down-sampling then up-sampling.
    case downUp = "down-up"
    /// All four at once: jitter, blur, down-up, noise.
    case combined
    /// A stress test beyond the bar, for information: jitter ±15%, blur σ = 1.5 px, down-up,
    /// noise σ = 0.1.
    case harsh

    /// Renders `scene` under this condition; all randomness comes from `rng`.
    public func image(of scene: Scene, rng: inout SplitMix64) -> RGBImage {
        let jitterSeed = rng.next()
        let jitter: Double
        switch self {
        case .jitter, .combined: jitter = 0.08
        case .harsh: jitter = 0.15
        default: jitter = 0
        }
        var image = Renderer(options: RenderOptions(colorJitter: jitter, jitterSeed: jitterSeed))
            .render(scene)
        if self == .blur || self == .combined { image = Degradations.gaussianBlur(image, sigma: 1) }
        if self == .harsh { image = Degradations.gaussianBlur(image, sigma: 1.5) }
        if self == .downUp || self == .combined || self == .harsh {
            image = Degradations.downUpSample(image, factor: 2)
        }
        if self == .noise || self == .combined {
            image = Degradations.gaussianNoise(image, sigma: 0.05, rng: &rng)
        }
        if self == .harsh { image = Degradations.gaussianNoise(image, sigma: 0.1, rng: &rng) }
        return image
    }
}

/// How well the detector recovered the objects of a batch of rendered scenes.
public struct AccuracyReport: Codable, Sendable {
    public var condition: ImageCondition
    public var seed: UInt64
    public var scenes: Int
    /// Objects rendered.
    public var objects: Int
    /// Objects found with the right shape and colour, centroid within `tolerance` pixels.
    public var recovered: Int
    /// Recovered objects whose size class was also right.
    public var recoveredWithSize: Int
    /// Detections that matched no rendered object.
    public var spurious: Int
    /// Scenes in which every object was recovered and nothing spurious was found.
    public var perfectScenes: Int
    /// Centroid tolerance in pixels.
    public var tolerance: Double
    /// Rows: true shape (`Shape.allCases`); columns: detected shape, then "missed".
    public var shapeConfusion: [[Int]]
    /// Rows: true colour (`ShapeColor.allCases`); columns: detected colour, then "missed".
    public var colorConfusion: [[Int]]
    /// Rows: true size; columns: detected size, then "missed".
    public var sizeConfusion: [[Int]]

    enum CodingKeys: String, CodingKey {
        case condition, seed, scenes, objects, recovered
        case recoveredWithSize = "recovered_with_size"
        case spurious
        case perfectScenes = "perfect_scenes"
        case tolerance
        case shapeConfusion = "shape_confusion"
        case colorConfusion = "color_confusion"
        case sizeConfusion = "size_confusion"
    }

    /// Fraction of objects recovered (shape, colour, position).
    public var recall: Double { objects == 0 ? 0 : Double(recovered) / Double(objects) }

    /// Measures the detector on `scenes` random scenes drawn from `seed` (scene `i` uses stream `i`).
    public static func measure(
        scenes: Int, seed: UInt64, condition: ImageCondition,
        detector: ShapeDetector = ShapeDetector(), tolerance: Double = 3
    ) -> AccuracyReport {
        let sampler = SceneSampler()
        var report = AccuracyReport(
            condition: condition, seed: seed, scenes: scenes, objects: 0, recovered: 0,
            recoveredWithSize: 0, spurious: 0, perfectScenes: 0, tolerance: tolerance,
            shapeConfusion: Array(
                repeating: Array(repeating: 0, count: Shape.allCases.count + 1),
                count: Shape.allCases.count),
            colorConfusion: Array(
                repeating: Array(repeating: 0, count: ShapeColor.allCases.count + 1),
                count: ShapeColor.allCases.count),
            sizeConfusion: Array(
                repeating: Array(repeating: 0, count: ObjectSize.allCases.count + 1),
                count: ObjectSize.allCases.count))
        for i in 0..<scenes {
            var rng = SplitMix64(seed: seed, stream: UInt64(i))
            let scene = sampler.randomScene(rng: &rng)
            let image = condition.image(of: scene, rng: &rng)
            report.add(scene: scene, detections: detector.detect(image))
        }
        return report
    }

    mutating func add(scene: Scene, detections: [Detection]) {
        var used = [Bool](repeating: false, count: detections.count)
        var sceneOK = true
        objects += scene.objects.count
        for object in scene.objects {
            // Nearest unused detection within tolerance.
            var best = -1
            var bestDistance = Double.infinity
            for (k, d) in detections.enumerated() where !used[k] {
                let dist = ((d.x - object.x) * (d.x - object.x) + (d.y - object.y) * (d.y - object.y))
                    .squareRoot()
                if dist <= tolerance && dist < bestDistance {
                    best = k
                    bestDistance = dist
                }
            }
            let si = Shape.allCases.firstIndex(of: object.shape)!
            let ci = ShapeColor.allCases.firstIndex(of: object.color)!
            let zi = ObjectSize.allCases.firstIndex(of: object.size)!
            guard best >= 0 else {
                shapeConfusion[si][Shape.allCases.count] += 1
                colorConfusion[ci][ShapeColor.allCases.count] += 1
                sizeConfusion[zi][ObjectSize.allCases.count] += 1
                sceneOK = false
                continue
            }
            used[best] = true
            let d = detections[best]
            shapeConfusion[si][Shape.allCases.firstIndex(of: d.shape)!] += 1
            colorConfusion[ci][ShapeColor.allCases.firstIndex(of: d.color)!] += 1
            sizeConfusion[zi][ObjectSize.allCases.firstIndex(of: d.size)!] += 1
            if d.shape == object.shape && d.color == object.color {
                recovered += 1
                if d.size == object.size { recoveredWithSize += 1 } else { sceneOK = false }
            } else {
                sceneOK = false
            }
        }
        let extra = used.filter { !$0 }.count
        spurious += extra
        if extra > 0 { sceneOK = false }
        if sceneOK { perfectScenes += 1 }
    }

    /// The report as a Markdown section: rates and the three confusion matrices.
    public func markdown() -> String {
        func pct(_ a: Int, _ b: Int) -> String {
            b == 0 ? "n/a" : String(format: "%.2f%%", 100 * Double(a) / Double(b))
        }
        func table(_ title: String, _ names: [String], _ m: [[Int]]) -> String {
            var s = "| true \\ detected | " + names.joined(separator: " | ") + " | missed |\n"
            s += "|" + String(repeating: "---|", count: names.count + 2) + "\n"
            for (i, row) in m.enumerated() {
                s += "| \(names[i]) | " + row.map(String.init).joined(separator: " | ") + " |\n"
            }
            return "\(title)\n\n" + s
        }
        var s = "### Condition: \(condition.rawValue) (seed \(seed), \(scenes) scenes)\n\n"
        s += "- objects: \(objects)\n"
        s += "- recovered (shape + colour + centroid within \(tolerance) px): \(recovered) "
        s += "= \(pct(recovered, objects))\n"
        s += "- recovered with size too: \(recoveredWithSize) = \(pct(recoveredWithSize, objects))\n"
        s += "- spurious detections: \(spurious)\n"
        s += "- perfect scenes: \(perfectScenes) = \(pct(perfectScenes, scenes))\n\n"
        s += table("Shape confusion", Shape.allCases.map(\.rawValue), shapeConfusion) + "\n"
        s += table("Colour confusion", ShapeColor.allCases.map(\.rawValue), colorConfusion) + "\n"
        s += table("Size confusion", ObjectSize.allCases.map(\.rawValue), sizeConfusion)
        return s
    }
}
