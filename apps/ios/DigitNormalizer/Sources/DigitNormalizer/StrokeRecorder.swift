import Foundation

/// The strokes of a drawing pad. A touch extends the stroke in progress or starts a new one; a lift
/// ends it, whether the gesture ended or the system cancelled it (an alert, a scroll view taking the
/// touch), so the next touch never continues the old stroke with a stray line.
public struct StrokeRecorder: Sendable, Equatable {
    public private(set) var strokes: [[CGPoint]] = []
    private var inStroke = false

    public init() {}

    public mutating func touch(at point: CGPoint) {
        if inStroke, !strokes.isEmpty {
            strokes[strokes.count - 1].append(point)
        } else {
            inStroke = true
            strokes.append([point])
        }
    }

    /// The gesture ended or was cancelled.
    public mutating func lift() {
        inStroke = false
    }

    public mutating func clear() {
        strokes = []
        inStroke = false
    }
}
