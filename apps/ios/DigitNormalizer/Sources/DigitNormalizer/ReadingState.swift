import Foundation

/// What the app shows in place of an answer while its model loads, after it failed to load, or with
/// nothing drawn, and which drawing to read when. Apart from SwiftUI and Core ML so that `swift test`
/// checks it: a load error stays on screen (Clear and new drawings do not hide it), and a drawing
/// made while the model loads is read as soon as the model is ready.
public struct ReadingState<Drawing: Sendable>: Sendable {
    public enum Model: Sendable, Equatable {
        case loading
        case ready
        case failed(String)
    }

    public static var prompt: String { "Draw a digit in the box." }
    public static var loadingMessage: String { "Loading the model…" }

    public private(set) var model: Model = .loading
    /// The newest drawing on the pad; nil when the pad is empty.
    public private(set) var drawing: Drawing?

    public init() {}

    /// The pad changed (nil: it is empty now). Returns the drawing to read now, or nil when there is
    /// nothing to read yet (an empty pad, a model still loading or one that failed).
    public mutating func padChanged(_ drawing: Drawing?) -> Drawing? {
        self.drawing = drawing
        return model == .ready ? drawing : nil
    }

    /// The model is ready. Returns the drawing made while it loaded, to read now.
    public mutating func modelLoaded() -> Drawing? {
        model = .ready
        return drawing
    }

    public mutating func modelFailed(_ reason: String) {
        model = .failed(reason)
    }

    /// What to show when there is no answer to show.
    public var message: String {
        switch model {
        case .failed(let reason):
            return "Could not load the model: \(reason)"
        case .loading where drawing != nil:
            return Self.loadingMessage
        default:
            return Self.prompt
        }
    }
}
