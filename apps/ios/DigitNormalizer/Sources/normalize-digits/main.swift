import DigitNormalizer
import Foundation

// Reads raw RGBA images from standard input and writes their 28×28 normalisation to standard
// output, for digitkit's differential test against its Python normalisation.
// In: per image, width and height (UInt32, little-endian), then width × height × 4 bytes RGBA.
// Out: per image, one byte (1: a digit was found, 0: none), then 784 grey levels (zeros if none).

let input = FileHandle.standardInput.readDataToEndOfFile()
var output = Data()
var offset = 0

func readUInt32(_ data: Data, _ at: Int) -> Int {
    data[data.startIndex + at..<data.startIndex + at + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
}

while offset + 8 <= input.count {
    let width = readUInt32(input, offset), height = readUInt32(input, offset + 4)
    offset += 8
    let size = width * height * 4
    guard width > 0, height > 0, offset + size <= input.count else {
        FileHandle.standardError.write("truncated input at byte \(offset)\n".data(using: .utf8)!)
        exit(1)
    }
    let rgba = [UInt8](input[input.startIndex + offset..<input.startIndex + offset + size])
    offset += size
    if let field = DigitNormalizer.normalize(rgba: rgba, width: width, height: height) {
        output.append(1)
        output.append(contentsOf: field)
    } else {
        output.append(0)
        output.append(contentsOf: [UInt8](repeating: 0, count: DigitNormalizer.field * DigitNormalizer.field))
    }
}
FileHandle.standardOutput.write(output)
