import CZlib
import Foundation

/// Reads a file, transparently inflating it when it is gzip-compressed (magic bytes `1f 8b`).
///
/// `name.json` is also found as `name.json.gz` when only the compressed copy exists.
func readTokenizerFile(_ url: URL) throws(TokenizersError) -> Data {
    var url = url
    let fm = FileManager.default
    if !fm.fileExists(atPath: url.path) {
        let gz = URL(fileURLWithPath: url.path + ".gz")
        guard fm.fileExists(atPath: gz.path) else { throw .missingFile(path: url.path) }
        url = gz
    }
    let data: Data
    do {
        data = try Data(contentsOf: url)
    } catch {
        throw .unreadableFile(path: url.path, reason: "\(error)")
    }
    if data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b {
        return try gunzip(data, path: url.path)
    }
    return data
}

/// Whether `url` or its `.gz` sibling exists.
func tokenizerFileExists(_ url: URL) -> Bool {
    FileManager.default.fileExists(atPath: url.path)
        || FileManager.default.fileExists(atPath: url.path + ".gz")
}

/// Inflates a gzip stream with zlib.
func gunzip(_ data: Data, path: String) throws(TokenizersError) -> Data {
    var stream = z_stream()
    // 16 + MAX_WBITS: expect a gzip header.
    guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
    else {
        throw .unreadableFile(path: path, reason: "zlib inflateInit2 failed")
    }
    defer { inflateEnd(&stream) }
    var output = Data()
    let chunk = 1 << 18
    var buffer = [UInt8](repeating: 0, count: chunk)
    let input = [UInt8](data)
    var status: Int32 = Z_OK
    input.withUnsafeBufferPointer { inBuf in
        stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
        stream.avail_in = uInt(inBuf.count)
        repeat {
            buffer.withUnsafeMutableBufferPointer { outBuf in
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(chunk)
                status = inflate(&stream, Z_NO_FLUSH)
                let produced = chunk - Int(stream.avail_out)
                output.append(outBuf.baseAddress!, count: produced)
            }
        } while status == Z_OK
    }
    guard status == Z_STREAM_END else {
        throw .unreadableFile(path: path, reason: "corrupt gzip stream (zlib status \(status))")
    }
    return output
}

/// Parses a JSON file into Foundation objects.
func readJSONObject(_ url: URL) throws(TokenizersError) -> Any {
    let data = try readTokenizerFile(url)
    do {
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    } catch {
        throw .corruptFile(path: url.path, field: "(root)", reason: "invalid JSON: \(error)")
    }
}
