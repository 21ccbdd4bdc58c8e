import Foundation
import XCTest

@testable import DigitNormalizer

/// docs/thickening_vectors.json: every (longer side, area, boundary) case near the thickening rule's
/// thresholds where a Float computation decides otherwise than Python's float64. The port must give
/// Python's answer on each: whether to thicken, and by how much.
final class ThickeningTests: XCTestCase {
    struct Tie: Decodable {
        let longer: Int
        let area: Int
        let boundary: Int
        let grow: Double
    }

    func testEveryTieDecidesAsPython() throws {
        let ties = try Repository.decode([Tie].self, from: "docs/thickening_vectors.json")
        XCTAssertGreaterThan(ties.count, 1000)
        var wrong = 0
        for tie in ties {
            let grow = DigitNormalizer.thickening(longer: tie.longer, area: tie.area, boundary: tie.boundary)
            if (grow > 0) != (tie.grow > 0) || grow.rounded(.up) != tie.grow.rounded(.up) || abs(grow - tie.grow) > 1e-12 {
                wrong += 1
            }
        }
        XCTAssertEqual(wrong, 0, "\(wrong) of \(ties.count) ties decided otherwise than Python")
    }

    func testThickStrokesAreLeftAlone() {
        XCTAssertEqual(DigitNormalizer.thickening(longer: 100, area: 1200, boundary: 200), 0)  // 12 px wide: enough
        XCTAssertGreaterThan(DigitNormalizer.thickening(longer: 100, area: 200, boundary: 200), 4)  // 2 px: grow
    }
}
