import Foundation
import XCTest

/// Files of the digitkit repository this package lives in (apps/ios/DigitNormalizer).
enum Repository {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)  // …/apps/ios/DigitNormalizer/Tests/DigitNormalizerTests/Repository.swift
        for _ in 0..<6 { url.deleteLastPathComponent() }  // the file, DigitNormalizerTests, Tests, DigitNormalizer, ios, apps
        return url
    }()

    static func file(_ path: String) -> URL { root.appendingPathComponent(path) }

    /// A JSON file of the repository (the test vectors under docs/), decoded; a missing file fails
    /// the test with its path rather than a decoding error.
    static func decode<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let url = file(path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), "no file at \(url.path)")
        return try JSONDecoder().decode(type, from: try Data(contentsOf: url))
    }
}
