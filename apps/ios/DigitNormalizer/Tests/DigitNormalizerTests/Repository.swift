import Foundation

/// Files of the digitkit repository this package lives in (apps/ios/DigitNormalizer).
enum Repository {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)  // …/apps/ios/DigitNormalizer/Tests/DigitNormalizerTests/Repository.swift
        for _ in 0..<6 { url.deleteLastPathComponent() }  // the file, DigitNormalizerTests, Tests, DigitNormalizer, ios, apps
        return url
    }()

    static func file(_ path: String) -> URL { root.appendingPathComponent(path) }
}
