import Foundation

/// What an answer's top probability means to a person, as digitkit's page and CLI say it
/// (src/digitkit/classifier.py): sure, not sure (show the runner-up), or not a digit at all. digitkit's
/// digit models learn drawings that are not digits as equal probabilities, so their top class is low.
public enum Verdict: String, Sendable {
    case sure
    case notSure = "not sure"
    case notAClass = "not a class"

    /// At or above this the answer is sure.
    public static let sureAbove: Float = 0.9
    /// Below this the drawing is no digit (no class) at all.
    public static let notAClassBelow: Float = 0.5

    public init(confidence: Float) {
        if confidence >= Self.sureAbove {
            self = .sure
        } else {
            self = confidence >= Self.notAClassBelow ? .notSure : .notAClass
        }
    }

    /// What the app shows for a drawing of no class.
    public static func notAClassMessage(labels: [String]) -> String {
        labels == (0...9).map(String.init) ? "That doesn't look like a digit" : "That doesn't look like any of the classes"
    }
}

/// The classes ranked by probability: the answer, its verdict and the runner-up.
public struct Ranking: Sendable, Equatable {
    public let label: String
    public let confidence: Float
    public let runnerUp: String?
    public let runnerUpConfidence: Float?
    public var verdict: Verdict { Verdict(confidence: confidence) }

    /// `probabilities[label]` for each of `labels`; nil when there are none.
    public init?(labels: [String], probabilities: [String: Float]) {
        let ranked = labels.map { ($0, probabilities[$0] ?? 0) }.enumerated()
            .sorted { $0.element.1 != $1.element.1 ? $0.element.1 > $1.element.1 : $0.offset < $1.offset }
            .map(\.element)
        guard let top = ranked.first else { return nil }
        label = top.0
        confidence = top.1
        runnerUp = ranked.count > 1 ? ranked[1].0 : nil
        runnerUpConfidence = ranked.count > 1 ? ranked[1].1 : nil
    }
}
