import XCTest

@testable import DigitNormalizer

/// The app's words for an answer match the page's and the CLI's (src/digitkit/classifier.py).
final class VerdictTests: XCTestCase {
    func testThresholds() {
        XCTAssertEqual(Verdict(confidence: 0.99), .sure)
        XCTAssertEqual(Verdict(confidence: 0.9), .sure)
        XCTAssertEqual(Verdict(confidence: 0.85), .notSure)
        XCTAssertEqual(Verdict(confidence: 0.79), .notSure)
        XCTAssertEqual(Verdict(confidence: 0.5), .notSure)
        XCTAssertEqual(Verdict(confidence: 0.2), .notAClass)
        XCTAssertEqual(Verdict.notAClass.rawValue, "not a class")
    }

    func testMessageNamesDigitsOnlyForDigitModels() {
        let digits = (0...9).map(String.init)
        XCTAssertEqual(Verdict.notAClassMessage(labels: digits), "That doesn't look like a digit")
        XCTAssertEqual(Verdict.notAClassMessage(labels: ["cat", "dog"]), "That doesn't look like any of the classes")
    }

    func testRankingPicksTheTopTwo() throws {
        let ranking = try XCTUnwrap(Ranking(labels: ["0", "1", "2"], probabilities: ["0": 0.1, "1": 0.3, "2": 0.6]))
        XCTAssertEqual(ranking.label, "2")
        XCTAssertEqual(ranking.runnerUp, "1")
        XCTAssertEqual(ranking.verdict, .notSure)
        XCTAssertNil(Ranking(labels: [], probabilities: [:]))
    }
}
