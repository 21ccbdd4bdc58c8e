import DigitNormalizer
import Foundation

// Reads numbers from raw RGBA images on standard input with a stand-in linear model, for digitkit's
// differential test of the Swift number reader against Python's (tests/test_swift.py).
// Argument: the stand-in's weights: 10 × 784 then 10 Float32 (little-endian); probabilities are the
// softmax of weights · (pixels / 255) + biases, labels "0"..."9".
// In: per image, width and height (UInt32, little-endian), then width × height × 4 bytes RGBA.
// Out: per image, one line of JSON: the reading, or {"error": ...}.

func readUInt32(_ data: Data, _ at: Int) -> Int {
    data[data.startIndex + at..<data.startIndex + at + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
    exit(1)
}

guard CommandLine.arguments.count == 2, let weights = FileManager.default.contents(atPath: CommandLine.arguments[1]),
      weights.count == 4 * (10 * 784 + 10) else { fail("usage: read-numbers WEIGHTS (10x784 + 10 float32)") }
let values: [Float] = weights.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
let labels = (0...9).map(String.init)

func standIn(_ batch: [[UInt8]]) -> [[Float]] {
    batch.map { pixels in
        let logits = (0..<10).map { k -> Float in
            var sum: Float = values[10 * 784 + k]
            for i in 0..<784 { sum += values[k * 784 + i] * Float(pixels[i]) / 255 }
            return sum
        }
        let top = logits.max()!
        let exps = logits.map { exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }
}

let input = FileHandle.standardInput.readDataToEndOfFile()
let encoder = JSONEncoder()
var offset = 0
while offset + 8 <= input.count {
    let width = readUInt32(input, offset), height = readUInt32(input, offset + 4)
    offset += 8
    let size = width * height * 4
    guard width > 0, height > 0, offset + size <= input.count else { fail("truncated input at byte \(offset)") }
    let rgba = [UInt8](input[input.startIndex + offset..<input.startIndex + offset + size])
    offset += size
    var line: Data
    do {
        line = try encoder.encode(try NumberReader.read(rgba: rgba, width: width, height: height, labels: labels, classify: standIn))
    } catch {
        line = try! encoder.encode(["error": error.localizedDescription])
    }
    FileHandle.standardOutput.write(line + "\n".data(using: .utf8)!)
}
