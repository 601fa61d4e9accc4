// Reads GGUF v3 as specified in ggml's docs/gguf.md and as gguf-py 0.19.0 (`GGUFReader`) reads it.
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One tensor's entry in the GGUF tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// Name as in the file (`blk.0.attn_q.weight`).
    public let name: String
    /// Dimensions in ggml order: `dimensions[0]` varies fastest (gguf-py's `ReaderTensor.shape`).
    public let dimensions: [Int]
    /// Storage type of the data (`F32`, `Q4_1`, …).
    public let type: GGMLType
    /// Offset of the data relative to the start of the data section, as stored.
    public let relativeOffset: Int
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    /// Bytes the data occupies.
    public let byteCount: Int

    /// Number of elements, the product of ``dimensions``.
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Dimensions in PyTorch/NumPy order (slowest first), the reverse of ``dimensions``.
    public var shape: [Int] { dimensions.reversed() }
}

/// A memory-mapped GGUF file: header, metadata, tensor table, and tensor data on demand.
///
/// ```swift
/// let file = try GGUFFile(url: URL(fileURLWithPath: "SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let embed = try file.dequantize(named: "token_embd.weight")   // [Float], ggml order
/// let tok = try GGUFTokenizer(file).tokenizerJSON()             // Hugging Face tokenizer.json bytes
/// ```
///
/// The mapping is read-only and lives as long as the object; dequantised arrays are copies.
public final class GGUFFile: @unchecked Sendable {
    /// Path the file was opened from, used in every error.
    public let path: String
    /// GGUF version from the header (2 or 3).
    public let version: UInt32
    /// Metadata by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor table in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// Offset of the data section from the start of the file.
    public let dataOffset: Int
    /// File size in bytes.
    public let fileSize: Int

    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let indexByName: [String: Int]

    /// Maps and parses the file at `url`. Tensor data is not read until asked for.
    public init(url: URL) throws(GGUFError) {
        let path = url.path
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(st.st_size)
        fileSize = size
        var mapped: UnsafeRawPointer? = nil
        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else {
                throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
            }
            mapped = UnsafeRawPointer(p)
        }
        base = mapped
        mappedLength = size
        do {
            let header = try Self.parse(UnsafeRawBufferPointer(start: mapped, count: size), path: path)
            version = header.version
            metadata = header.metadata
            metadataKeys = header.keys
            tensors = header.tensors
            alignment = header.alignment
            dataOffset = header.dataOffset
            indexByName = header.index
        } catch {
            if let mapped { munmap(UnsafeMutableRawPointer(mutating: mapped), size) }
            throw error
        }
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    /// The tensor named `name`, or nil.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// Calls `body` with the tensor's raw (still quantised) bytes, valid only inside `body`.
    public func withRawBytes<R>(
        of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base! + tensor.fileOffset, count: tensor.byteCount))
    }

    /// Dequantises the tensor named `name` to `Float` in ggml order (see ``dequantize(_:)``).
    public func dequantize(named name: String) throws(GGUFError) -> [Float] {
        guard let info = tensor(named: name) else { throw .tensorNotFound(path: path, tensor: name) }
        return try dequantize(info)
    }

    /// Dequantises a tensor to `Float`, elements in ggml order (`dimensions[0]` fastest), which is
    /// row-major for ``GGUFTensorInfo/shape``. Values equal gguf-py 0.19.0's `dequantize` bit for bit.
    /// - Throws: ``GGUFError/unsupportedTensorType(path:tensor:type:)`` for types outside
    ///   ``GGMLType/dequantisable``.
    public func dequantize(_ tensor: GGUFTensorInfo) throws(GGUFError) -> [Float] {
        guard GGMLType.dequantisable.contains(tensor.type) else {
            throw .unsupportedTensorType(path: path, tensor: tensor.name, type: tensor.type)
        }
        let n = tensor.elementCount
        return withRawBytes(of: tensor) { raw in
            [Float](unsafeUninitializedCapacity: n) { out, count in
                Dequantize.run(tensor.type, from: raw, into: out.baseAddress!, count: n)
                count = n
            }
        }
    }
}

// MARK: - Parsing

extension GGUFFile {
    struct Header {
        var version: UInt32
        var metadata: [String: GGUFValue]
        var keys: [String]
        var tensors: [GGUFTensorInfo]
        var alignment: Int
        var dataOffset: Int
        var index: [String: Int]
    }

    /// Bounds-checked little-endian reader over the mapping.
    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let path: String
        var offset = 0

        mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
            guard n >= 0, n <= bytes.count - offset else {
                throw .truncated(path: path, what: what(), offset: offset, needed: n, fileSize: bytes.count)
            }
        }

        mutating func scalar<T: FixedWidthInteger>(
            _: T.Type, _ what: @autoclosure () -> String
        ) throws(GGUFError) -> T {
            try need(MemoryLayout<T>.size, what())
            let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
            return T(littleEndian: v)
        }

        mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
            let length = try scalar(UInt64.self, what())
            guard let n = Int(exactly: length) else {
                throw .truncated(
                    path: path, what: what(), offset: offset, needed: Int.max, fileSize: bytes.count)
            }
            try need(n, what())
            let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
            let s = String(decoding: slice, as: UTF8.self)
            offset += n
            return s
        }

        mutating func value(_ type: GGUFValueType, key: String) throws(GGUFError) -> GGUFValue {
            let what = "metadata `\(key)`"
            switch type {
            case .uint8: return .uint8(try scalar(UInt8.self, what))
            case .int8: return .int8(try scalar(Int8.self, what))
            case .uint16: return .uint16(try scalar(UInt16.self, what))
            case .int16: return .int16(try scalar(Int16.self, what))
            case .uint32: return .uint32(try scalar(UInt32.self, what))
            case .int32: return .int32(try scalar(Int32.self, what))
            case .float32: return .float32(Float(bitPattern: try scalar(UInt32.self, what)))
            case .bool:
                let b = try scalar(UInt8.self, what)
                guard b <= 1 else {
                    throw .invalidMetadata(path: path, key: key, reason: "bool byte is \(b), not 0 or 1")
                }
                return .bool(b == 1)
            case .string: return .string(try string(what))
            case .uint64: return .uint64(try scalar(UInt64.self, what))
            case .int64: return .int64(try scalar(Int64.self, what))
            case .float64: return .float64(Double(bitPattern: try scalar(UInt64.self, what)))
            case .array:
                let code = try scalar(UInt32.self, what)
                guard let elementType = GGUFValueType(rawValue: code) else {
                    throw .unknownValueType(path: path, key: key, code: code)
                }
                let count = try scalar(UInt64.self, what)
                // Every element takes at least one byte, so a count beyond the bytes left is a lie;
                // checking first keeps a corrupt count from reserving terabytes.
                guard count <= UInt64(bytes.count - offset) else {
                    throw .truncated(
                        path: path, what: what + " (\(count) elements)", offset: offset,
                        needed: Int(clamping: count), fileSize: bytes.count)
                }
                var elements: [GGUFValue] = []
                elements.reserveCapacity(Int(count))
                for _ in 0..<Int(count) { elements.append(try value(elementType, key: key)) }
                return .array(elementType: elementType, elements)
            }
        }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(GGUFError) -> Header {
        var c = Cursor(bytes: bytes, path: path)
        guard bytes.count >= 4 else {
            throw .truncated(path: path, what: "magic", offset: 0, needed: 4, fileSize: bytes.count)
        }
        let magic = Array(bytes[0..<4])
        guard magic == Array("GGUF".utf8) else { throw .badMagic(path: path, found: magic) }
        c.offset = 4
        let version = try c.scalar(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(path: path, version: version) }
        let tensorCount = try c.scalar(UInt64.self, "tensor count")
        let kvCount = try c.scalar(UInt64.self, "metadata count")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        // Each key/value takes at least 12 bytes, each tensor entry at least 24.
        guard kvCount <= UInt64(bytes.count / 12), tensorCount <= UInt64(bytes.count / 24) else {
            throw .truncated(
                path: path, what: "\(kvCount) metadata entries and \(tensorCount) tensor entries",
                offset: c.offset, needed: Int(clamping: kvCount &* 12 &+ tensorCount &* 24),
                fileSize: bytes.count)
        }
        for i in 0..<Int(kvCount) {
            let key = try c.string("metadata key \(i)")
            let code = try c.scalar(UInt32.self, "type of metadata `\(key)`")
            guard let type = GGUFValueType(rawValue: code) else {
                throw .unknownValueType(path: path, key: key, code: code)
            }
            let value = try c.value(type, key: key)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw .invalidMetadata(path: path, key: key, reason: "key appears more than once")
            }
            keys.append(key)
        }

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard case .uint32(let v) = a, v > 0, v.nonzeroBitCount == 1 else {
                throw .invalidMetadata(
                    path: path, key: "general.alignment", reason: "must be a uint32 power of two, is \(a)")
            }
            alignment = Int(v)
        }

        struct RawInfo {
            var name: String
            var dims: [Int]
            var type: GGMLType
            var offset: UInt64
        }
        var raw: [RawInfo] = []
        raw.reserveCapacity(Int(tensorCount))
        var index: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try c.string("name of tensor \(i)")
            let nDims = try c.scalar(UInt32.self, "dimension count of tensor `\(name)`")
            guard (1...8).contains(nDims) else {
                throw .invalidTensorShape(path: path, tensor: name, reason: "\(nDims) dimensions")
            }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try c.scalar(UInt64.self, "dimensions of tensor `\(name)`")
                guard let di = Int(exactly: d), di > 0 else {
                    throw .invalidTensorShape(path: path, tensor: name, reason: "dimension \(d)")
                }
                dims.append(di)
            }
            let type = GGMLType(rawValue: try c.scalar(UInt32.self, "type of tensor `\(name)`"))
            let offset = try c.scalar(UInt64.self, "offset of tensor `\(name)`")
            guard index.updateValue(i, forKey: name) == nil else {
                throw .duplicateTensor(path: path, tensor: name)
            }
            raw.append(RawInfo(name: name, dims: dims, type: type, offset: offset))
        }
        let dataOffset = (c.offset + alignment - 1) / alignment * alignment

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(raw.count)
        for r in raw {
            var elements = 1
            for d in r.dims {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, p <= bytes.count * 8 else {
                    throw .invalidTensorShape(
                        path: path, tensor: r.name, reason: "\(r.dims) has more elements than the file holds")
                }
                elements = p
            }
            // Unknown types have no known size: their data cannot be located, let alone read.
            guard let layout = r.type.blockLayout else {
                throw .unsupportedTensorType(path: path, tensor: r.name, type: r.type)
            }
            guard r.dims[0] % layout.elements == 0 else {
                throw .invalidTensorShape(
                    path: path, tensor: r.name,
                    reason: "rows of \(r.dims[0]) are not whole \(r.type) blocks of \(layout.elements)")
            }
            let byteCount = elements / layout.elements * layout.bytes
            let fileOffset = Int(exactly: r.offset).map { dataOffset.addingReportingOverflow($0) }
            guard let fileOffset, !fileOffset.overflow, r.offset % UInt64(alignment) == 0,
                fileOffset.partialValue <= bytes.count, byteCount <= bytes.count - fileOffset.partialValue
            else {
                throw .offsetOutOfRange(
                    path: path, tensor: r.name, offset: Int(clamping: r.offset), byteCount: byteCount,
                    fileSize: bytes.count)
            }
            tensors.append(
                GGUFTensorInfo(
                    name: r.name, dimensions: r.dims, type: r.type, relativeOffset: Int(r.offset),
                    fileOffset: fileOffset.partialValue, byteCount: byteCount))
        }
        return Header(
            version: version, metadata: metadata, keys: keys, tensors: tensors, alignment: alignment,
            dataOffset: dataOffset, index: index)
    }
}
