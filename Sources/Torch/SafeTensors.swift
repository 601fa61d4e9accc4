import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Shape and dtype of one stored tensor.
public struct TensorInfo: Equatable, Sendable {
    public var dtype: DType
    public var shape: [Int]
    /// Byte range inside the data section.
    public var range: Range<Int>

    public init(dtype: DType, shape: [Int], range: Range<Int>) {
        self.dtype = dtype
        self.shape = shape
        self.range = range
    }
}

/// Anything that serves named tensors: one safetensors file, a sharded checkpoint, a dictionary.
public protocol TensorSource {
    /// Every tensor name, sorted.
    var names: [String] { get }
    /// Shape and dtype of `name`, or nil if absent.
    func info(_ name: String) -> TensorInfo?
    /// Reads one tensor (a fresh CPU tensor with its own storage).
    func tensor(_ name: String) throws -> Tensor
    /// The file that holds `name`, for error messages.
    func location(of name: String) -> String
}

/// A memory-mapped, validated `.safetensors` file.
///
/// The header is parsed and checked when the file opens: a truncated file, bad header JSON,
/// data offsets outside the file or overlapping, a size that does not match the shape, or an
/// unknown dtype each throw a ``TorchError`` naming the file. Tensors are copied out of the
/// mapping on demand, so opening a large checkpoint costs no memory until tensors are read.
///
/// ```swift
/// let file = try SafeTensorsFile(path: "unet/diffusion_pytorch_model.safetensors")
/// let w = try file.tensor("conv_in.weight")
/// ```
public final class SafeTensorsFile: TensorSource, @unchecked Sendable {
    public let path: String
    /// The `__metadata__` table (string to string).
    public let metadata: [String: String]
    public let entries: [String: TensorInfo]
    public let names: [String]
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { throw TorchError.fileNotFound(path: path) }
            throw TorchError.io(path: path, message: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw TorchError.io(path: path, message: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw TorchError.io(path: path, message: "is a directory, not a safetensors file")
        }
        let length = Int(st.st_size)
        guard length >= 8 else {
            throw TorchError.truncated(path: path, message: "\(length) bytes, shorter than the 8-byte header length")
        }
        guard let map = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw TorchError.io(path: path, message: "mmap failed: \(String(cString: strerror(errno)))")
        }
        let bytes = UnsafeRawPointer(map)
        var ok = false
        defer { if !ok { munmap(map, length) } }

        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(length - 8) else {
            throw TorchError.truncated(
                path: path, message: "header claims \(headerLength) bytes but the file has \(length - 8) after it")
        }
        let header = Data(bytes: bytes + 8, count: Int(headerLength))
        let parsed = try SafeTensorsFile.parseHeader(header, path: path, dataLength: length - 8 - Int(headerLength))
        self.metadata = parsed.metadata
        self.entries = parsed.entries
        self.names = parsed.entries.keys.sorted()
        self.base = bytes
        self.mappedLength = length
        self.dataStart = 8 + Int(headerLength)
        ok = true
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    public func info(_ name: String) -> TensorInfo? { entries[name] }

    public func location(of name: String) -> String { path }

    public func tensor(_ name: String) throws -> Tensor {
        guard let info = entries[name], let base else { throw TorchError.missingTensor(path: path, tensor: name) }
        let raw = UnsafeRawBufferPointer(start: base + dataStart + info.range.lowerBound, count: info.range.count)
        return Tensor(bytes: raw, dtype: info.dtype, shape: info.shape)
    }

    /// The metadata key of the data section's CRC-32 (``SafeTensors/write(_:metadata:to:checksum:)``).
    public static let checksumKey = "crc32"

    /// Whether the file carries a checksum.
    public var hasChecksum: Bool { metadata[SafeTensorsFile.checksumKey] != nil }

    /// Checks the data section against the `crc32` metadata; throws naming the file when it
    /// differs (a torn or corrupted file). A file without a checksum passes.
    public func verifyChecksum() throws {
        guard let text = metadata[SafeTensorsFile.checksumKey] else { return }
        guard let expected = UInt32(text) else {
            throw TorchError.badHeader(path: path, message: "checksum `\(text)` is not a CRC-32")
        }
        let end = entries.values.map(\.range.upperBound).max() ?? 0
        let actual = base.map { checksumCRC32(UnsafeRawBufferPointer(start: $0 + dataStart, count: end)) } ?? 0
        guard actual == expected else {
            throw TorchError.truncated(path: path, message: "data checksum \(actual) differs from the recorded "
                + "\(expected): the file is torn or corrupted")
        }
    }

    /// Reads every tensor.
    public func all() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try tensor(name) }
        return out
    }

    static func parseHeader(_ data: Data, path: String, dataLength: Int) throws
        -> (metadata: [String: String], entries: [String: TensorInfo])
    {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TorchError.badHeader(path: path, message: "not valid JSON (\(error.localizedDescription))")
        }
        guard let table = object as? [String: Any] else {
            throw TorchError.badHeader(path: path, message: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [String: TensorInfo] = [:]
        for (name, value) in table {
            if name == "__metadata__" {
                guard let dict = value as? [String: Any] else {
                    throw TorchError.badHeader(path: path, message: "__metadata__ is not an object")
                }
                for (k, v) in dict {
                    guard let s = v as? String else {
                        throw TorchError.badHeader(path: path, message: "__metadata__ value for `\(k)` is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let fields = value as? [String: Any] else {
                throw TorchError.badHeader(path: path, message: "entry `\(name)` is not an object")
            }
            guard let dtypeName = fields["dtype"] as? String else {
                throw TorchError.badHeader(path: path, message: "entry `\(name)` has no dtype")
            }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                throw TorchError.unknownDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard let shapeValues = fields["shape"] as? [Any],
                  let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 })
            else {
                throw TorchError.badHeader(path: path, message: "entry `\(name)` has no valid shape")
            }
            guard let offsetValues = fields["data_offsets"] as? [Any], let offsets = integers(offsetValues),
                  offsets.count == 2
            else {
                throw TorchError.badHeader(path: path, message: "entry `\(name)` has no valid data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw TorchError.offsetsOutOfRange(
                    path: path, tensor: name,
                    message: "[\(begin), \(end)) but the data section holds \(dataLength) bytes")
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw TorchError.sizeMismatch(path: path, tensor: name, message: "shape \(shape) overflows")
                }
                elements = product
            }
            let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.elementSize)
            guard !overflow else {
                throw TorchError.sizeMismatch(path: path, tensor: name, message: "shape \(shape) of \(dtypeName) overflows")
            }
            guard expected == end - begin else {
                throw TorchError.sizeMismatch(
                    path: path, tensor: name,
                    message: "shape \(shape) of \(dtypeName) needs \(expected) bytes but offsets give \(end - begin)")
            }
            entries[name] = TensorInfo(dtype: dtype, shape: shape, range: begin..<end)
        }
        let ordered = entries.sorted { ($0.value.range.lowerBound, $0.key) < ($1.value.range.lowerBound, $1.key) }
        for (a, b) in zip(ordered, ordered.dropFirst())
        where b.value.range.lowerBound < a.value.range.upperBound && !b.value.range.isEmpty {
            throw TorchError.overlappingTensors(path: path, first: a.key, second: b.key)
        }
        return (metadata, entries)
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber, n.doubleValue == Double(n.int64Value) else { return nil }
            out.append(Int(n.int64Value))
        }
        return out
    }
}

/// A checkpoint split over several safetensors files by a `*.safetensors.index.json`
/// (`{"metadata": {...}, "weight_map": {"name": "file"}}`), as transformers and diffusers write.
public final class ShardedSafeTensors: TensorSource, @unchecked Sendable {
    public let indexPath: String
    public let metadata: [String: Any]
    public let weightMap: [String: String]
    public let names: [String]
    private var shards: [String: SafeTensorsFile] = [:]

    public init(indexPath: String) throws {
        self.indexPath = indexPath
        guard FileManager.default.fileExists(atPath: indexPath) else { throw TorchError.fileNotFound(path: indexPath) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: indexPath)) } catch {
            throw TorchError.io(path: indexPath, message: error.localizedDescription)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = object["weight_map"] as? [String: String]
        else {
            throw TorchError.badHeader(path: indexPath, message: "index JSON has no `weight_map` of strings")
        }
        self.metadata = object["metadata"] as? [String: Any] ?? [:]
        self.weightMap = map
        self.names = map.keys.sorted()
        let directory = (indexPath as NSString).deletingLastPathComponent
        for file in Set(map.values).sorted() {
            let shard = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(file))
            shards[file] = shard
        }
        for (name, file) in map where shards[file]?.info(name) == nil {
            throw TorchError.missingTensor(path: shards[file]?.path ?? file, tensor: name)
        }
    }

    public func info(_ name: String) -> TensorInfo? { weightMap[name].flatMap { shards[$0]?.info(name) } }

    public func location(of name: String) -> String { weightMap[name].flatMap { shards[$0]?.path } ?? indexPath }

    public func tensor(_ name: String) throws -> Tensor {
        guard let file = weightMap[name], let shard = shards[file] else {
            throw TorchError.missingTensor(path: indexPath, tensor: name)
        }
        return try shard.tensor(name)
    }
}

/// A tensor source with some keys hidden (entries a checkpoint carries that the model does not have:
/// old buffers such as CLIP's `position_ids`, a tied `lm_head`).
public struct HidingSource: TensorSource {
    public let base: TensorSource
    public let hidden: Set<String>

    public init(_ base: TensorSource, hiding hidden: Set<String>) {
        self.base = base
        self.hidden = hidden
    }

    public var names: [String] { base.names.filter { !hidden.contains($0) } }
    public func info(_ name: String) -> TensorInfo? { hidden.contains(name) ? nil : base.info(name) }
    public func tensor(_ name: String) throws -> Tensor { try base.tensor(name) }
    public func location(of name: String) -> String { base.location(of: name) }
}

/// A tensor source whose keys pass through a renaming function: `rename(key)` is the name a key is
/// presented under, or nil to leave the tensor out. Serves per-model key layouts (a model's
/// `sanitize` hook), added or stripped prefixes, and sub-stores of a checkpoint.
///
/// ```swift
/// let withPrefix = RenamedSource(file) { "text_model." + $0 }
/// let unet = RenamedSource(checkpoint) { $0.hasPrefix("unet.") ? String($0.dropFirst(5)) : nil }
/// ```
public struct RenamedSource: TensorSource {
    public let base: TensorSource
    /// Presented name → the base's name.
    let map: [String: String]

    public init(_ base: TensorSource, rename: (String) -> String?) {
        self.base = base
        var map: [String: String] = [:]
        for name in base.names { if let new = rename(name) { map[new] = name } }
        self.map = map
    }

    public var names: [String] { map.keys.sorted() }
    public func info(_ name: String) -> TensorInfo? { map[name].flatMap(base.info) }
    public func tensor(_ name: String) throws -> Tensor {
        guard let original = map[name] else { throw TorchError.missingTensor(path: base.location(of: name), tensor: name) }
        return try base.tensor(original)
    }
    public func location(of name: String) -> String { base.location(of: map[name] ?? name) }
}

/// Opens a safetensors checkpoint: a `.safetensors` file or a `.safetensors.index.json` index.
public func openSafeTensors(path: String) throws -> TensorSource {
    if path.hasSuffix(".index.json") { return try ShardedSafeTensors(indexPath: path) }
    return try SafeTensorsFile(path: path)
}

public enum SafeTensors {
    /// Writes `tensors` to `path` atomically: a temporary file in the same folder, flushed, then
    /// renamed over `path`, so a crash leaves either the old file or the new one, never a partial one.
    ///
    /// With `checksum`, the metadata gains `crc32`: the CRC-32 of the data section, which
    /// ``SafeTensorsFile/verifyChecksum()`` checks (training checkpoints carry it, so that a torn or
    /// bit-rotted one is recognised before it is resumed).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String,
                             checksum: Bool = false) throws {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        var offset = 0
        var payloads: [[UInt8]] = []
        var crc: UInt32 = 0
        for name in names {
            let t = tensors[name]!
            let bytes = t.bytes()
            header[name] = [
                "dtype": t.dtype.safetensorsName, "shape": t.shape, "data_offsets": [offset, offset + bytes.count],
            ] as [String: Any]
            offset += bytes.count
            if checksum { crc = bytes.withUnsafeBytes { checksumCRC32($0, continuing: crc) } }
            payloads.append(bytes)
        }
        var meta = metadata
        if checksum { meta[SafeTensorsFile.checksumKey] = String(crc) }
        if !meta.isEmpty { header["__metadata__"] = meta }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data section starts 8-byte aligned (as the reference does).
        while (json.count % 8) != 0 { json.append(0x20) }
        var file = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { file.append(contentsOf: $0) }
        file.append(json)
        for p in payloads { file.append(contentsOf: p) }
        try writeAtomically(file, to: path)
    }
}

/// Writes `data` to `path` through a temporary file in the same folder, `fsync`, and `rename`.
public func writeAtomically(_ data: Data, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let folder = directory.isEmpty ? "." : directory
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw TorchError.io(path: path, message: "folder \(folder) does not exist")
    }
    let temporary = (folder as NSString).appendingPathComponent(
        ".\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else { throw TorchError.io(path: path, message: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
    var failed: String?
    let isCheckpoint = (path as NSString).lastPathComponent.hasPrefix("checkpoint")
    data.withUnsafeBytes { buffer in
        var written = 0
        var halfway = !isCheckpoint
        while written < buffer.count {
            // A checkpoint is written in two halves so that the fault hook can stop the process
            // between them (a torn temporary file, as a crash would leave).
            let limit = halfway ? buffer.count : Swift.max(buffer.count / 2, 1)
            if !halfway && written >= limit {
                halfway = true
                Faults.checkpointWriteHalfway(path)
                continue
            }
            let n = Glibc.write(fd, buffer.baseAddress! + written, limit - written)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                failed = String(cString: strerror(errno))
                return
            }
            written += n
        }
    }
    if failed == nil && fsync(fd) != 0 { failed = String(cString: strerror(errno)) }
    close(fd)
    if let failed {
        unlink(temporary)
        throw TorchError.io(path: path, message: "write failed: \(failed)")
    }
    if rename(temporary, path) != 0 {
        let message = errno == EISDIR ? "it is a directory" : String(cString: strerror(errno))
        unlink(temporary)
        throw TorchError.io(path: path, message: "cannot replace it: \(message)")
    }
    // The rename itself is durable only once the folder is synced.
    let folderFD = open(folder, O_RDONLY)
    if folderFD >= 0 {
        _ = fsync(folderFD)
        close(folderFD)
    }
}
