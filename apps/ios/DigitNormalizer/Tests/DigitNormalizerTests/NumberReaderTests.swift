import XCTest
@testable import DigitNormalizer

/// The number reader's own cases, with a stand-in model that is sure of anything shaped like one
/// digit (as tall as the 28×28 field allows, narrower than tall: "1" if thin, "0" otherwise) and unsure
/// of anything else (two digits side by side, half a digit). tests/test_swift.py compares the whole
/// reader with Python's on a few hundred images.
final class NumberReaderTests: XCTestCase {
    let width = 260, height = 100

    static func standIn(_ batch: [[UInt8]]) -> [[Float]] {
        batch.map { pixels in
            let inked = (0..<784).filter { pixels[$0] > 60 }
            let rows = Set(inked.map { $0 / 28 }), columns = Set(inked.map { $0 % 28 })
            let oneDigit = rows.count >= 18 && columns.count >= 4 && columns.count <= 17
            let label = columns.count < 8 ? 1 : 0
            return (0..<10).map { k in oneDigit ? (k == label ? 0.982 : 0.002) : (k == label ? 0.3 : 0.7 / 9) }
        }
    }

    /// White paper with `ink` painted black.
    func page(_ ink: (Int, Int) -> Bool) -> [UInt8] {
        (0..<(width * height)).map { ink($0 / width, $0 % width) ? 0 : 255 }
    }

    /// An ellipse's outline 5 px thick, centred at (cx, cy).
    func ring(_ y: Int, _ x: Int, cx: Int, cy: Int = 50, rx: Double = 15, ry: Double = 25) -> Bool {
        let r = (pow(Double(x - cx) / rx, 2) + pow(Double(y - cy) / ry, 2)).squareRoot()
        return r <= 1 && r >= 1 - 5 / ry
    }

    func read(_ pixels: [UInt8]) throws -> NumberReader.Reading {
        try NumberReader.read(grey: pixels, width: width, height: height, labels: (0...9).map(String.init),
                              classify: Self.standIn)
    }

    func testAnEmptyImageHasNoDigits() throws {
        let reading = try read(page { _, _ in false })
        XCTAssertEqual(reading.verdict, "no digits found")
        XCTAssertEqual(reading.number, "")
        XCTAssertTrue(reading.digits.isEmpty)
    }

    func testTwoDigitsApartAreReadWithTheirBoxes() throws {
        let reading = try read(page { y, x in ring(y, x, cx: 60) || ring(y, x, cx: 110) })
        XCTAssertEqual(reading.number, "00")
        XCTAssertEqual(reading.verdict, "sure")
        XCTAssertEqual(reading.digits.map(\.box), [NumberReader.Box(x: 45, y: 25, width: 31, height: 51),
                                                   NumberReader.Box(x: 95, y: 25, width: 31, height: 51)])
        XCTAssertEqual(reading.digits.first?.input?.count, 784)
    }

    func testATouchingPairIsCutAndNotSure() throws {
        // Two rings joined by a thin bridge: one piece, cut where the ink is thinnest.
        let reading = try read(page { y, x in ring(y, x, cx: 60) || ring(y, x, cx: 96) || (y >= 49 && y <= 50 && x >= 74 && x <= 82) })
        XCTAssertEqual(reading.number, "00")
        XCTAssertEqual(reading.verdict, "not sure")
        XCTAssertEqual(reading.unsure, [0, 1])
        XCTAssertTrue(reading.digits.allSatisfy { $0.verdict == "not sure" })
    }

    func testABrokenFiveIsOneDigit() throws {
        // A flag above a body, apart: two pieces that stand over one another.
        let reading = try read(page { y, x in
            (y >= 22 && y < 28 && x >= 48 && x < 74) || ring(y, x, cx: 60, cy: 56, ry: 19) || ring(y, x, cx: 120)
        })
        XCTAssertEqual(reading.digits.count, 2)
        XCTAssertEqual(reading.digits[0].box, NumberReader.Box(x: 45, y: 22, width: 31, height: 54))
    }

    func testADecimalPointIsReadAndASpeckIsNot() throws {
        let reading = try read(page { y, x in
            ring(y, x, cx: 60) || ring(y, x, cx: 120) || (y >= 67 && y < 75 && x >= 86 && x < 94)  // on the baseline
                || (y >= 10 && y < 12 && x >= 200 && x < 202)  // a speck
        })
        XCTAssertEqual(reading.number, "0.0")
        XCTAssertEqual(reading.digits[1].verdict, "point")
        XCTAssertEqual(reading.verdict, "sure")
        // Among two or more specks (a scan's noise), the point may be one of them: read, not sure.
        let speckled = try read(page { y, x in
            ring(y, x, cx: 60) || ring(y, x, cx: 120) || (y >= 67 && y < 75 && x >= 86 && x < 94)
                || (y >= 10 && y < 12 && (x >= 200 && x < 202 || x >= 230 && x < 232))
        })
        XCTAssertEqual(speckled.number, "0.0")
        XCTAssertEqual(speckled.digits[1].verdict, "not sure")
        XCTAssertEqual(speckled.unsure, [1])
    }

    func testAShortMarkAwayFromTheDigitsIsNotADigit() throws {
        // A page's edge along the left border, under 0.4 line heights and far from both digits.
        let edge = try read(page { y, x in ring(y, x, cx: 60) || ring(y, x, cx: 120) || (y >= 40 && y < 55 && x < 3) })
        XCTAssertEqual(edge.number, "00")
        // The same mark beside a digit, within joining distance, is weighed with it, not dropped.
        let beside = try read(page { y, x in ring(y, x, cx: 60) || ring(y, x, cx: 120) || (y >= 40 && y < 55 && x >= 40 && x < 43) })
        XCTAssertEqual(beside.digits.count, 2)
        XCTAssertLessThanOrEqual(beside.digits[0].box.x, 40)
    }

    func testAOneFarTallerThanTheOtherDigitsIsNotSure() throws {
        // A form's wall that a scan cut off from its lines reads as a 1, but stands far taller than the writing.
        let reading = try read(page { y, x in ring(y, x, cx: 60) || ring(y, x, cx: 110) || (y >= 5 && y < 95 && x >= 150 && x < 175) })
        XCTAssertEqual(reading.number, "001")
        XCTAssertEqual(reading.digits.map(\.verdict), ["sure", "sure", "not sure"])
    }

    func testAShortMarkThatJoinsNoDigitIsNoDigit() throws {
        // A tick beside a digit is kept to be joined; when the digit reads better without it, it is dropped.
        let reading = try read(page { y, x in ring(y, x, cx: 60, rx: 20) || (y >= 30 && y < 46 && x >= 85 && x < 93) })
        XCTAssertEqual(reading.number, "0")
    }

    func testADigitFarLowerThanTheOthersIsNotSure() throws {
        // Three digits of the line's height and one under 0.6 of it (a 1's flag drawn apart, say).
        let reading = try read(page { y, x in
            ring(y, x, cx: 40) || ring(y, x, cx: 90) || ring(y, x, cx: 140) || ring(y, x, cx: 200, cy: 63, rx: 8, ry: 12)
        })
        XCTAssertEqual(reading.number, "0000")
        XCTAssertEqual(reading.digits.map(\.verdict), ["sure", "sure", "sure", "not sure"])
        XCTAssertEqual(reading.unsure, [3])
    }

    func testTheDeskAroundAPhotographedSheetIsNotInk() throws {
        // The sheet from x 30 to 230 and y 10 to 90, a dark desk around it, two digits on the sheet.
        let reading = try read(page { y, x in
            x < 30 || x >= 230 || y < 10 || y >= 90 || ring(y, x, cx: 90) || ring(y, x, cx: 160)
        })
        XCTAssertEqual(reading.number, "00")
        XCTAssertEqual(reading.digits.map(\.box.x), [75, 145])
        // A wooden desk, half as light as the paper.
        let wooden = page { y, x in ring(y, x, cx: 90) || ring(y, x, cx: 160) }.enumerated().map { i, level in
            let (y, x) = (i / width, i % width)
            return x < 30 || x >= 230 || y < 10 || y >= 90 ? 125 : level
        }
        XCTAssertEqual(try read(wooden).number, "00")
    }

    /// Two zeros in a comb of two boxes 2 px wide (walls at x 55, 125 and 195, lines at y 18 and 82),
    /// or (`ticks`) on the lower line with a comb's short ticks.
    func inComb(_ y: Int, _ x: Int, ticks: Bool = false) -> Bool {
        let line = (y == 82 || y == 83 || (!ticks && (y == 18 || y == 19))) && x >= 55 && x < 197
        let wall = y >= (ticks ? 62 : 18) && y < 84 && [55, 125, 195].contains { x == $0 || x == $0 + 1 }
        return line || wall || ring(y, x, cx: 90) || ring(y, x, cx: 160)
    }

    func testAFormsBoxesAreNotInk() throws {
        // The walls would read as 1s.
        let comb = try read(page { y, x in inComb(y, x) })
        XCTAssertEqual(comb.number, "00")
        XCTAssertEqual(comb.digits.map(\.box.x), [75, 145])
        XCTAssertEqual(try read(page { y, x in inComb(y, x, ticks: true) }).number, "00")
    }

    func testAFormPhotographedTurnedIsReadWithoutItsLines() throws {
        // The comb of testAFormsBoxesAreNotInk turned by 4 degrees about the image's centre: its
        // lines are found on the ink sheared straight.
        let (c, s) = (cos(4 * Double.pi / 180), sin(4 * Double.pi / 180))
        let reading = try read(page { y, x in
            let (dx, dy) = (Double(x) - 130, Double(y) - 50)
            return inComb(Int((-s * dx + c * dy + 50).rounded()), Int((c * dx + s * dy + 130).rounded()))
        })
        XCTAssertEqual(reading.number, "00")
    }

    func testAWavyLineDrawnUnderTheNumberIsNotADigit() throws {
        // A hand-drawn underline 3 px thick, 150 px wide, waving 2 px: not straight enough to be a
        // printed line, flatter than a digit and wider than two.
        let reading = try read(page { y, x in
            let wave = 88 + 2 * sin(Double(x) / 10)
            return (x >= 40 && x < 190 && abs(Double(y) - wave) < 1.5) || ring(y, x, cx: 90) || ring(y, x, cx: 160)
        })
        XCTAssertEqual(reading.number, "00")
    }

    func testASmallNumberInALargePhotoIsLookedAtCloser() throws {
        let small = page { y, x in ring(y, x, cx: 115, rx: 8, ry: 12) || ring(y, x, cx: 145, rx: 8, ry: 12) }
        let big = try read(page { y, x in ring(y, x, cx: 90) || ring(y, x, cx: 160) })
        // Digits 51 px high as read need no closer look.
        XCTAssertNil(NumberReader.zoomRegion(big, full: (width, height), width: width))
        // In a photo 10 times larger, reduced to be read, look again around them, a digit's height
        // of margin on each side, in the photo's own pixels.
        let scaled = try NumberReader.read(grey: small, width: width, height: height, labels: (0...9).map(String.init),
                                           scale: (10, 10), classify: Self.standIn)
        XCTAssertEqual(scaled.number, "00")
        let region = try XCTUnwrap(NumberReader.zoomRegion(scaled, full: (10 * width, 10 * height), width: width))
        let (first, last) = (scaled.digits[0].box, scaled.digits[1].box)
        XCTAssertEqual(region.x, first.x - first.height)
        XCTAssertEqual(region.x + region.width, last.x + last.width + first.height)
        XCTAssertEqual(scaled.shifted(x: region.x, y: 7).digits[1].box.x, last.x + region.x)
        XCTAssertEqual(scaled.shifted(x: region.x, y: 7).digits[1].box.y, last.y + 7)
    }

    func testTooManyPiecesAreRefused() {
        let dots = page { y, x in y % 8 < 5 && x % 6 < 4 && y > 4 && y < 95 }
        XCTAssertThrowsError(try read(dots)) { error in
            XCTAssertTrue((error as? NumberReader.TooManyPieces)?.errorDescription?.contains("more than a number") == true)
        }
    }
}
