import Foundation
import Testing

@testable import GGUF

/// Damaged copies of `tiny.gguf` must give typed errors that name the file, never a crash.
@Suite struct CorruptFileTests {
    let bytes: [UInt8]

    init() throws { bytes = Array(try Data(contentsOf: Fixtures.tiny)) }

    /// Writes `bytes` to a fresh temporary file, opens it, and returns the error.
    func openError(_ bytes: [UInt8], _ tag: String = #function) -> (GGUFError?, String) {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("gguf-\(tag.filter(\.isLetter))-\(UUID().uuidString).gguf")
        try! Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try GGUFFile(url: url)
            return (nil, url.path)
        } catch {
            #expect(error.description.contains(url.path), "\(error)")
            return (error, url.path)
        }
    }

    /// Byte offset of a tensor's table entry (its name's length prefix).
    func tensorEntry(_ name: String) -> Int {
        let pattern = [UInt8(name.utf8.count), 0, 0, 0, 0, 0, 0, 0] + Array(name.utf8)
        let dataOffset = try! GGUFFile(url: Fixtures.tiny).dataOffset
        for i in stride(from: dataOffset - pattern.count, through: 0, by: -1)
        where Array(bytes[i..<i + pattern.count]) == pattern {
            return i
        }
        fatalError("no entry for \(name)")
    }

    func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in b: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { for (i, x) in $0.enumerated() { b[offset + i] = x } }
    }

    @Test func badMagic() {
        var b = bytes
        b[3] = UInt8(ascii: "X")
        let (error, path) = openError(b)
        #expect(error == .badMagic(path: path, found: Array("GGUX".utf8)))
    }

    @Test(arguments: [UInt32(1), 4, 0xFFFF_FFFF])
    func unsupportedVersion(_ version: UInt32) {
        var b = bytes
        put(version, at: 4, in: &b)
        let (error, path) = openError(b)
        #expect(error == .unsupportedVersion(path: path, version: version))
    }

    /// Every prefix of the file that cuts into the header or the tensor data fails cleanly: inside the
    /// header as truncation, past it as tensor data out of range. (The alignment padding after the
    /// last tensor is not needed, so prefixes that keep all data open.)
    @Test func everyTruncationIsAnError() throws {
        let file = try GGUFFile(url: Fixtures.tiny)
        let dataEnd = file.tensors.map { $0.fileOffset + $0.byteCount }.max()!
        // Every byte of the header, then every 8th through the tensor data.
        let cuts = Array(0..<file.dataOffset) + Array(stride(from: file.dataOffset, to: dataEnd, by: 8))
        for n in cuts {
            let (error, _) = openError(Array(bytes[0..<n]))
            switch error {
            case .truncated?:
                #expect(n < file.dataOffset, "prefix \(n)")
            case .offsetOutOfRange?:
                break
            default:
                Issue.record("prefix of \(n) bytes: \(String(describing: error))")
            }
        }
        #expect(openError(Array(bytes[0..<dataEnd])).0 == nil)
    }

    @Test func hugeStringLength() {
        var b = bytes
        put(UInt64(1) << 62, at: 24, in: &b)  // the first key's length
        guard case .truncated? = openError(b).0 else {
            Issue.record("expected truncation")
            return
        }
    }

    @Test func hugeCounts() {
        var b = bytes
        put(UInt64.max, at: 8, in: &b)  // tensor count
        guard case .truncated? = openError(b).0 else {
            Issue.record("expected truncation")
            return
        }
    }

    @Test func unknownValueType() {
        var b = bytes
        let keyLength = Int(b[24])
        put(UInt32(13), at: 32 + keyLength, in: &b)
        let (error, path) = openError(b)
        #expect(error == .unknownValueType(path: path, key: "general.architecture", code: 13))
    }

    @Test func tensorOffsetOutOfRange() {
        var b = bytes
        let entry = tensorEntry("q4_1")
        let offsetField = entry + 8 + 4 + 4 + 2 * 8 + 4
        put(UInt64(1 << 20), at: offsetField, in: &b)
        let (error, path) = openError(b)
        #expect(
            error
                == .offsetOutOfRange(
                    path: path, tensor: "q4_1", offset: 1 << 20, byteCount: 80,
                    fileSize: bytes.count))
    }

    @Test func misalignedTensorOffset() {
        var b = bytes
        let entry = tensorEntry("q4_1")
        let offsetField = entry + 8 + 4 + 4 + 2 * 8 + 4
        let relative = try! GGUFFile(url: Fixtures.tiny).tensor(named: "q4_1")!.relativeOffset
        put(UInt64(relative + 2), at: offsetField, in: &b)
        guard case .offsetOutOfRange(_, "q4_1", _, _, _)? = openError(b).0 else {
            Issue.record("expected a misalignment error")
            return
        }
    }

    @Test func unknownTensorTypeNamesTensorAndType() {
        var b = bytes
        let typeField = tensorEntry("f16") + 8 + 3 + 4 + 2 * 8
        put(UInt32(99), at: typeField, in: &b)
        let (error, path) = openError(b)
        #expect(error == .unsupportedTensorType(path: path, tensor: "f16", type: GGMLType(rawValue: 99)))
        #expect(error?.description.contains("`f16`") == true)
        #expect(error?.description.contains("type 99") == true)
    }

    /// A known type without a dequantiser (here Q3_K, in place of Q4_K) opens; dequantising it names
    /// tensor and type.
    @Test func knownButUnsupportedTypeFailsAtDequantisation() throws {
        var b = bytes
        let typeField = tensorEntry("q4_K") + 8 + 4 + 4 + 2 * 8
        put(GGMLType.q3_K.rawValue, at: typeField, in: &b)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-q50-\(UUID()).gguf")
        try Data(b).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try GGUFFile(url: url)
        #expect(throws: GGUFError.unsupportedTensorType(path: url.path, tensor: "q4_K", type: .q3_K)) {
            try file.dequantize(named: "q4_K")
        }
        #expect(try file.dequantize(named: "q4_1").count == 128)
    }

    @Test func badAlignment() {
        var b = bytes
        // general.alignment follows general.architecture: key, type, value.
        let key = Array("general.alignment".utf8)
        let at = (0..<bytes.count - key.count).first { Array(b[$0..<$0 + key.count]) == key }!
        put(UInt32(48), at: at + key.count + 4, in: &b)
        guard case .invalidMetadata(_, "general.alignment", _)? = openError(b).0 else {
            Issue.record("expected invalid alignment")
            return
        }
    }

    @Test func missingFile() {
        let url = URL(fileURLWithPath: "/nonexistent/dir/model.gguf")
        #expect {
            try GGUFFile(url: url)
        } throws: { error in
            guard case .cannotOpen(let path, _) = error as? GGUFError else { return false }
            return path == url.path && "\(error)".contains(url.path)
        }
    }
}
