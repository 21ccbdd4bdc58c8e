import Foundation

/// The stream digitkit's differential tests send the package's tools (tests/test_swift.py): per
/// image, width and height (UInt32, little-endian), then width × height × 4 bytes RGBA. Apart from
/// the library: the app never reads it.
public enum RawImages {
    public struct Image {
        public let width: Int
        public let height: Int
        public let rgba: [UInt8]
    }

    /// Every image of standard input; exits with a message on a truncated stream.
    public static func fromStandardInput() -> [Image] {
        let input = FileHandle.standardInput.readDataToEndOfFile()
        var images: [Image] = []
        var offset = 0
        while offset + 8 <= input.count {
            let width = uint32(input, offset), height = uint32(input, offset + 4)
            offset += 8
            let size = width * height * 4
            guard width > 0, height > 0, offset + size <= input.count else { fail("truncated input at byte \(offset)") }
            images.append(Image(width: width, height: height,
                                rgba: [UInt8](input[input.startIndex + offset..<input.startIndex + offset + size])))
            offset += size
        }
        return images
    }

    public static func fail(_ message: String) -> Never {
        FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
        exit(1)
    }

    static func uint32(_ data: Data, _ at: Int) -> Int {
        data[data.startIndex + at..<data.startIndex + at + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    }
}
