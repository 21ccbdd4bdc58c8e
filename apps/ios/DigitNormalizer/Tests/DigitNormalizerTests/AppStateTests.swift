import Foundation
import XCTest

@testable import DigitNormalizer

/// The app's pad and its reading state, which SwiftUI and Core ML drive on the phone.
final class AppStateTests: XCTestCase {
    func testALoadErrorStaysOnScreen() {
        var state = ReadingState<String>()
        state.modelFailed("no model in the app")
        XCTAssertEqual(state.message, "Could not load the model: no model in the app")
        XCTAssertNil(state.padChanged("a 7"))  // nothing to read with
        XCTAssertEqual(state.message, "Could not load the model: no model in the app")
        XCTAssertNil(state.padChanged(nil))  // Clear
        XCTAssertEqual(state.message, "Could not load the model: no model in the app")
    }

    func testADrawingMadeWhileLoadingIsReadOnceReady() {
        var state = ReadingState<String>()
        XCTAssertEqual(state.message, ReadingState<String>.prompt)
        XCTAssertNil(state.padChanged("a 1"))
        XCTAssertNil(state.padChanged("a 7"))
        XCTAssertEqual(state.message, "Loading the model…")
        XCTAssertEqual(state.modelLoaded(), "a 7")  // the newest drawing, once
        XCTAssertEqual(state.padChanged("a 7 and more"), "a 7 and more")
    }

    func testNothingToReadAfterAClearWhileLoading() {
        var state = ReadingState<String>()
        _ = state.padChanged("a 1")
        _ = state.padChanged(nil)
        XCTAssertNil(state.modelLoaded())
        XCTAssertEqual(state.message, ReadingState<String>.prompt)
    }

    func testACancelledGestureDoesNotContinueTheOldStroke() {
        var pad = StrokeRecorder()
        pad.touch(at: CGPoint(x: 10, y: 10))
        pad.touch(at: CGPoint(x: 20, y: 20))
        pad.lift()  // cancelled by the system: no onEnded, but the gesture state resets
        pad.touch(at: CGPoint(x: 200, y: 200))
        pad.touch(at: CGPoint(x: 210, y: 200))
        XCTAssertEqual(pad.strokes, [[CGPoint(x: 10, y: 10), CGPoint(x: 20, y: 20)],
                                     [CGPoint(x: 200, y: 200), CGPoint(x: 210, y: 200)]])
        pad.clear()
        XCTAssertEqual(pad.strokes, [])
        pad.touch(at: CGPoint(x: 1, y: 1))
        XCTAssertEqual(pad.strokes.count, 1)
    }
}
