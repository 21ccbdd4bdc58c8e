import Foundation
import XCTest

@testable import DigitNormalizer

/// Every case of docs/preprocessing_vectors.json, the vectors digitkit's Python normalisation
/// produces: the Swift port must give the same 28×28 image within ±2 grey levels (resampling
/// libraries round differently) and the same centre of mass to the pixel.
final class VectorTests: XCTestCase {
    struct Case: Decodable {
        let name: String
        let mode: String
        let width: Int
        let height: Int
        let rgba: [Int]
        let expected: [[Int]]
    }

    func loadCases() throws -> [Case] {
        try Repository.decode([Case].self, from: "docs/preprocessing_vectors.json")
    }

    static func centreOfMass(_ image: [Int]) -> (Double, Double) {
        var mass = 0.0, sumY = 0.0, sumX = 0.0
        for (i, v) in image.enumerated() {
            mass += Double(v)
            sumY += Double(i / 28) * Double(v)
            sumX += Double(i % 28) * Double(v)
        }
        return (sumY / mass, sumX / mass)
    }

    func testVectorsFileHasTheCasesItDocuments() throws {
        let cases = try loadCases()
        XCTAssertGreaterThanOrEqual(cases.count, 9)
        for needed in ["speck removal", "thickening", "no thickening", "RGBA transparent"] {
            XCTAssertTrue(cases.contains { $0.name.contains(needed) }, needed)
        }
    }

    func testEveryVector() throws {
        for testCase in try loadCases() {
            let pixels = testCase.width * testCase.height
            XCTAssertEqual(testCase.rgba.count, pixels * 4, testCase.name)
            var grey = [UInt8](repeating: 0, count: pixels)
            var alpha = [UInt8](repeating: 255, count: pixels)
            for i in 0..<pixels {
                let r = testCase.rgba[4 * i], g = testCase.rgba[4 * i + 1], b = testCase.rgba[4 * i + 2]
                grey[i] = DigitNormalizer.luma(r, g, b)
                alpha[i] = UInt8(testCase.rgba[4 * i + 3])
            }
            let hasAlpha = testCase.mode == "RGBA" || testCase.mode == "LA"
            guard let out = DigitNormalizer.normalize(grey: grey, width: testCase.width, height: testCase.height,
                                                      alpha: hasAlpha ? alpha : nil) else {
                XCTFail("\(testCase.name): no digit found")
                continue
            }
            let expected = testCase.expected.flatMap { $0 }
            let got = out.map { Int($0) }
            let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 2, "\(testCase.name): a pixel differs by \(worst) grey levels")
            let (ey, ex) = Self.centreOfMass(expected), (gy, gx) = Self.centreOfMass(got)
            XCTAssertEqual(ey.rounded(), gy.rounded(), "\(testCase.name): centre of mass row")
            XCTAssertEqual(ex.rounded(), gx.rounded(), "\(testCase.name): centre of mass column")
        }
    }

    func testBlankImageHasNoDigit() {
        XCTAssertNil(DigitNormalizer.normalize(grey: [UInt8](repeating: 255, count: 64 * 64), width: 64, height: 64))
    }
}
