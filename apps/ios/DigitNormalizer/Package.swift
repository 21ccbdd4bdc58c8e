// swift-tools-version:5.7
// The normalisation the iOS app runs before the model, as a package of its own (Foundation only),
// so `swift test` on a Mac or on Linux checks it against digitkit's test vectors.
import PackageDescription

let package = Package(
    name: "DigitNormalizer",
    products: [.library(name: "DigitNormalizer", targets: ["DigitNormalizer"])],
    targets: [
        .target(name: "DigitNormalizer"),
        .testTarget(name: "DigitNormalizerTests", dependencies: ["DigitNormalizer"]),
    ]
)
