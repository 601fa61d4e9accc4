// promptloop-fuzz: mutated files for every format the tool reads, each handed to the loader the
// tool uses. Every case must end in success or in a typed error naming the file, in bounded
// memory, without a signal. Cases run in child processes, in batches: a child that dies takes only
// the case it was on with it, which is recorded, and the run goes on from the next.
//
//   promptloop-fuzz                         the long run: 1,000 cases per format, seed 0
//   promptloop-fuzz --smoke                 CI's subset: 60 cases per format
//   promptloop-fuzz --cases N --seed S --formats png,gguf --report docs/reliability-fuzz.json
import Foundation
import Torch

// MARK: Arguments

struct Options {
    var cases = 1000
    var seed: UInt64 = 0
    var formats: [String] = allFormats.map(\.name)
    var report: String?
    var batch = 250
    var child: (format: String, from: Int, to: Int, work: String)?
    var verbose = false
}

func usage() -> Never {
    print("""
        usage: promptloop-fuzz [--smoke] [--cases N] [--seed S] [--formats a,b] [--batch N] [--report FILE] [--verbose]

        Mutates seed files of every format PromptLoop reads (byte flips, truncations, insertions and
        structured lies) and hands each to the tool's loader. A case passes when it loads or ends in
        a typed error that names the file, with peak memory at most the file's size + 256 MB; it
        fails on a signal (crash), a hang, an error that does not name the file, or more memory.
        Exit status 1 when any case failed. Formats: \(allFormats.map(\.name).joined(separator: ", ")).
        """)
    exit(64)
}

func parse() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    func value() -> String {
        guard !args.isEmpty else { usage() }
        return args.removeFirst()
    }
    while !args.isEmpty {
        switch args.removeFirst() {
        case "--smoke": o.cases = 60
        case "--cases": o.cases = Int(value()) ?? { usage() }()
        case "--seed": o.seed = UInt64(value()) ?? { usage() }()
        case "--batch": o.batch = Int(value()) ?? { usage() }()
        case "--formats": o.formats = value().split(separator: ",").map(String.init)
        case "--report": o.report = value()
        case "--verbose": o.verbose = true
        case "--child":
            let f = value(), from = Int(value()) ?? 0, to = Int(value()) ?? 0, work = value()
            o.child = (f, from, to, work)
        case "-h", "--help": usage()
        default: usage()
        }
    }
    for f in o.formats where !allFormats.contains(where: { $0.name == f }) {
        FileHandle.standardError.write(Data("unknown format \(f)\n".utf8))
        usage()
    }
    guard o.cases > 0, o.batch > 0 else { usage() }
    return o
}

// MARK: Memory

func statusKB(_ field: String) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0
    }
    return 0
}

/// Resets the peak resident size (VmHWM) to the current one (Linux ≥ 4.0).
func resetPeak() {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    if fd >= 0 {
        _ = write(fd, "5", 1)
        close(fd)
    }
}

// MARK: Child: run cases in process

/// The mutated bytes of case `index` of `format` and the mutation's label.
func makeCase(_ format: Format, seeds: [[UInt8]], seed: UInt64, index: Int) -> ([UInt8], String) {
    var rng = SplitMix(seed: seed &* 0x100_0000_01B3 ^ UInt64(index) &* 0x9E37_79B9 ^ UInt64(format.name.hashValueStable))
    var data = seeds[rng.below(seeds.count)]
    let label: String
    switch (rng.below(3), format.kind) {
    case (0, _): label = Mutation.bytes(&data, &rng)
    case (_, .json): label = Mutation.json(&data, &rng)
    case (_, .jsonLines): label = Mutation.jsonLines(&data, &rng)
    case (_, .binary): label = format.lies.map { $0(&data, &rng) } ?? Mutation.bytes(&data, &rng)
    }
    return (data, label)
}

extension String {
    /// FNV-1a: `hashValue` is randomised per process, and cases must be the same in every run.
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}

func copyFolder(_ source: String, to target: String) throws {
    let fm = FileManager.default
    try? fm.removeItem(atPath: target)
    try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
    for entry in try fm.contentsOfDirectory(atPath: source) {
        let from = source + "/" + entry, to = target + "/" + entry
        var isDirectory: ObjCBool = false
        _ = fm.fileExists(atPath: from, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            try copyFolder(from, to: to)
        } else if entry.hasSuffix(".json") {
            try fm.copyItem(atPath: from, toPath: to)
        } else {
            try fm.createSymbolicLink(atPath: to, withDestinationPath: from)
        }
    }
}

func runChild(_ name: String, from: Int, to: Int, work: String, seed: UInt64) throws {
    let format = allFormats.first { $0.name == name }!
    let seeds = try format.seeds()
    let root = work + "/root"
    if let folder = format.folder { try copyFolder(repository + "/" + folder, to: root) } else {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    let path = root + "/" + format.file
    let out = FileHandle.standardOutput
    for index in from..<to {
        let (data, label) = makeCase(format, seeds: seeds, seed: seed, index: index)
        // The case's number goes out before it runs: a child that dies is known to have died on it.
        out.write(Data("start\t\(index)\t\(label.replacingOccurrences(of: "\t", with: " "))\n".utf8))
        unlink(path)
        unlink(path + ".prev")
        _ = FileManager.default.createFile(atPath: path, contents: Data(data))
        let before = statusKB("VmRSS")
        resetPeak()
        var outcome = "ok"
        var message = ""
        do {
            try withNoGrad { try format.load(root, path) }
        } catch {
            message = "\(error)"
            // The file, or (for a folder format) some file of the case's folder, must be named.
            outcome = message.contains(path) || message.contains(format.file) || (format.folder != nil && message.contains(root))
                ? "error" : "unnamed"
        }
        let grew = Swift.max(0, statusKB("VmHWM") - before)
        let line = "done\t\(index)\t\(outcome)\t\(grew)\t\(data.count)\t\(message.prefix(300).replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " "))\n"
        out.write(Data(line.utf8))
    }
}

// MARK: Parent: batches in children, outcomes tallied

struct Tally: Codable {
    var cases = 0, ok = 0, errors = 0, crashes = 0, hangs = 0, unnamed = 0, memory = 0
    var maxGrowthMB = 0.0
    var failures: [String] = []
    var seconds = 0.0
}

func runFormat(_ format: Format, options: Options, work: String) throws -> Tally {
    var tally = Tally()
    let start = Date()
    var next = 0
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while next < options.cases {
        let end = Swift.min(options.cases, next + options.batch)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--child", format.name, String(next), String(end), work, "--seed", String(options.seed)]
        let outPath = work + "/child.out"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = FileHandle.nullDevice
        try process.run()
        // A child that reports nothing for a minute is hung: killed, and its case recorded.
        var lastSize = 0
        var lastChange = Date()
        var hung = false
        while process.isRunning {
            usleep(50_000)
            let size = (try? FileManager.default.attributesOfItem(atPath: outPath)[.size] as? Int) ?? 0
            if size != lastSize {
                lastSize = size
                lastChange = Date()
            } else if Date().timeIntervalSince(lastChange) > 60 {
                hung = true
                kill(process.processIdentifier, SIGKILL)
            }
        }
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        var started: (Int, String)?
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if f.first == "start", f.count >= 3 {
                started = (Int(f[1]) ?? -1, f[2])
            } else if f.first == "done", f.count >= 6, let index = Int(f[1]) {
                started = nil
                tally.cases += 1
                next = index + 1
                let grewMB = Double(Int(f[3]) ?? 0) / 1024, size = Double(Int(f[4]) ?? 0) / 1_048_576
                tally.maxGrowthMB = Swift.max(tally.maxGrowthMB, grewMB)
                let label = "case \(index) (\(caseLabel(text, index)))"
                if grewMB > size + 256 {
                    tally.memory += 1
                    tally.failures.append("\(label): peak memory grew \(Int(grewMB)) MB for a \(Int(size)) MB file")
                }
                switch f[2] {
                case "ok": tally.ok += 1
                case "error": tally.errors += 1
                default:
                    tally.unnamed += 1
                    tally.failures.append("\(label): error without the file's name: \(f[5])")
                }
                if options.verbose { print("  \(format.name) \(label): \(f[2]) \(f[5].prefix(160))") }
            }
        }
        if let (index, label) = started {
            // The child died on this case.
            tally.cases += 1
            next = index + 1
            let how = hung ? "hang (killed after 60 s)"
                : process.terminationReason == .uncaughtSignal ? "signal \(process.terminationStatus)"
                : "exit \(process.terminationStatus)"
            if hung { tally.hangs += 1 } else { tally.crashes += 1 }
            tally.failures.append("case \(index) (\(label)): \(how)")
        } else if process.terminationStatus != 0 || next < end {
            throw FuzzError("the \(format.name) child failed before its first case (status \(process.terminationStatus)): "
                + text.suffix(300))
        }
    }
    tally.seconds = Date().timeIntervalSince(start)
    return tally
}

func caseLabel(_ text: Substring, _ index: Int) -> String { caseLabel(String(text), index) }
func caseLabel(_ text: String, _ index: Int) -> String {
    for line in text.split(separator: "\n") where line.hasPrefix("start\t\(index)\t") {
        return String(line.split(separator: "\t").dropFirst(2).first ?? "")
    }
    return "?"
}

// MARK: Main

let options = parse()
signal(SIGXFSZ, SIG_IGN)
if let child = options.child {
    do {
        try runChild(child.format, from: child.from, to: child.to, work: child.work, seed: options.seed)
        exit(0)
    } catch {
        print("child error: \(error)")
        exit(2)
    }
}

let workRoot = NSTemporaryDirectory() + "promptloop-fuzz-\(getpid())"
var results: [String: Tally] = [:]
var failed = false
print("promptloop-fuzz: \(options.cases) cases per format, seed \(options.seed)")
for name in options.formats {
    let format = allFormats.first { $0.name == name }!
    let work = workRoot + "/" + name
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    let t: Tally
    do { t = try runFormat(format, options: options, work: work) } catch {
        print("\(name): \(error)")
        exit(2)
    }
    results[name] = t
    let bad = t.crashes + t.hangs + t.unnamed + t.memory
    failed = failed || bad > 0
    print(name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: "%5d cases: %5d loaded, %5d errors, %d crashes, %d hangs, %d unnamed, %d over memory; "
        + "peak growth %.0f MB; %.0f s", t.cases, t.ok, t.errors, t.crashes, t.hangs, t.unnamed,
        t.memory, t.maxGrowthMB, t.seconds))
    for f in t.failures.prefix(10) { print("    \(f)") }
}
try? FileManager.default.removeItem(atPath: workRoot)
if let report = options.report {
    let object: [String: Any] = ["seed": options.seed, "cases_per_format": options.cases,
                                 "formats": try JSONSerialization.jsonObject(with: JSONEncoder().encode(results))]
    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        .write(to: URL(fileURLWithPath: report))
}
print(failed ? "FAILED: some cases crashed, hung, ran over memory or gave an error without the file's name"
             : "passed: every case loaded or ended in an error naming the file")
exit(failed ? 1 : 0)
