// swift-tools-version:5.9
// The Foundation-only part of the iOS app as a package of its own, so `swift test` on a Mac or on
// Linux checks it: the normalisation the app runs before the model (against digitkit's test
// vectors), the number reader, and what the app says about an answer (sure, not sure, not a digit).
// `normalize-digits` and `read-numbers` run the normalisation and the number reader on raw images for
// digitkit's differential tests (tests/test_swift.py).
import PackageDescription

let package = Package(
    name: "DigitNormalizer",
    products: [
        .library(name: "DigitNormalizer", targets: ["DigitNormalizer"]),
        .executable(name: "normalize-digits", targets: ["normalize-digits"]),
        .executable(name: "read-numbers", targets: ["read-numbers"]),
    ],
    targets: [
        .target(name: "DigitNormalizer"),
        .target(name: "RawImages"),  // the tools' input stream, not part of the app
        .executableTarget(name: "normalize-digits", dependencies: ["DigitNormalizer", "RawImages"]),
        .executableTarget(name: "read-numbers", dependencies: ["DigitNormalizer", "RawImages"]),
        .testTarget(name: "DigitNormalizerTests", dependencies: ["DigitNormalizer"]),
    ]
)
