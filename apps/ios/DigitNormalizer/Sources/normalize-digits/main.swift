import DigitNormalizer
import Foundation
import RawImages

// Reads raw RGBA images from standard input (RawImages) and writes their 28×28 normalisation to
// standard output, for digitkit's differential test against its Python normalisation.
// Out: per image, one byte (1: a digit was found, 0: none), then 784 grey levels (zeros if none).

var output = Data()
for image in RawImages.fromStandardInput() {
    if let field = DigitNormalizer.normalize(rgba: image.rgba, width: image.width, height: image.height) {
        output.append(1)
        output.append(contentsOf: field)
    } else {
        output.append(0)
        output.append(contentsOf: [UInt8](repeating: 0, count: DigitNormalizer.field * DigitNormalizer.field))
    }
}
FileHandle.standardOutput.write(output)
