import DigitNormalizer
import Foundation
import RawImages

// Reads numbers from raw RGBA images on standard input with a stand-in linear model, for digitkit's
// differential test of the Swift number reader against Python's (tests/test_swift.py).
// Argument: the stand-in's weights: 10 × 784 then 10 Float32 (little-endian); probabilities are the
// softmax of weights · (pixels / 255) + biases, labels "0"..."9".
// In: raw RGBA images (RawImages).
// Out: per image, one line of JSON: the reading with "zoom", where a closer look would go were the
// image a reduced photo of its own size (NumberReader.zoomRegion), or {"error": ...}.

guard CommandLine.arguments.count == 2, let weights = FileManager.default.contents(atPath: CommandLine.arguments[1]),
      weights.count == 4 * (10 * 784 + 10) else { RawImages.fail("usage: read-numbers WEIGHTS (10x784 + 10 float32)") }
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

/// A reading and its zoom region, in one JSON object.
struct Line: Encodable {
    enum Keys: String, CodingKey { case zoom }
    let reading: NumberReader.Reading
    let zoom: NumberReader.Box?

    func encode(to encoder: Encoder) throws {
        try reading.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(zoom, forKey: .zoom)
    }
}

let encoder = JSONEncoder()
for image in RawImages.fromStandardInput() {
    var line: Data
    do {
        let reading = try NumberReader.read(rgba: image.rgba, width: image.width, height: image.height,
                                             labels: labels, classify: standIn)
        let zoom = NumberReader.zoomRegion(reading, full: (image.width, image.height), width: image.width)
        line = try encoder.encode(Line(reading: reading, zoom: zoom))
    } catch {
        line = try! encoder.encode(["error": error.localizedDescription])
    }
    FileHandle.standardOutput.write(line + "\n".data(using: .utf8)!)
}
