import CoreGraphics
import CoreML
import SwiftUI
import Vision

/// Renders the strokes, normalises them as MNIST (DigitNormalizer) and classifies the 28×28 image
/// with the exported `MNISTClassifier` Core ML model through Vision. The work runs off the main
/// thread; only the published result is set on it.
@MainActor
final class DigitReader: ObservableObject {
    struct Result {
        let label: String
        let confidence: Float
        let runnerUp: (label: String, confidence: Float)?
        let probabilities: [Float]  // in the order of `labels`
        let modelInput: CGImage

        /// Below this the answer is shown as "not sure", with the runner-up (as the web page does).
        static let sureAbove: Float = 0.8
        var sure: Bool { confidence >= Self.sureAbove }
    }

    static let prompt = "Draw a digit in the box."

    @Published private(set) var result: Result?
    @Published private(set) var message = DigitReader.prompt
    /// The model's class labels, in its output order (read from the model, not assumed to be 0…9).
    @Published private(set) var labels: [String] = []

    private static let debounce: UInt64 = 120_000_000  // nanoseconds
    private var pending: Task<Void, Never>?
    private let engine = Engine()

    init() {
        Task {
            do {
                labels = try await engine.load()
            } catch {
                message = "Could not load MNISTClassifier: \(error.localizedDescription)"
            }
        }
    }

    func clear() {
        pending?.cancel()
        result = nil
        message = Self.prompt
    }

    func schedule(_ strokes: [[CGPoint]]) {
        pending?.cancel()
        guard strokes.contains(where: { !$0.isEmpty }) else {
            clear()  // a cleared pad is a prompt, not "no digit found"
            return
        }
        pending = Task {
            try? await Task.sleep(nanoseconds: Self.debounce)
            guard !Task.isCancelled else { return }
            let outcome = await engine.read(strokes)
            guard !Task.isCancelled else { return }
            switch outcome {
            case .success(let read):
                result = read
                message = ""
            case .failure(let problem):
                result = nil
                message = problem.message
            }
        }
    }

    struct Problem: Error {
        let message: String
    }

    /// The model and the CPU work, isolated from the main actor.
    actor Engine {
        private var request: VNCoreMLRequest?
        private var labels: [String] = []

        func load() throws -> [String] {
            let configuration = MLModelConfiguration()
            #if targetEnvironment(simulator)
            // The Simulator has no Neural Engine or Metal for Core ML: Vision with the default compute
            // units fails there ("Could not create inference context").
            configuration.computeUnits = .cpuOnly
            #endif
            let model = try MNISTClassifier(configuration: configuration).model
            labels = (model.modelDescription.classLabels ?? []).map { "\($0)" }
            let request = VNCoreMLRequest(model: try VNCoreMLModel(for: model))
            request.imageCropAndScaleOption = .scaleFill  // the image is already 28×28
            self.request = request
            return labels
        }

        func read(_ strokes: [[CGPoint]]) -> Swift.Result<Result, Problem> {
            let side = Int(Pen.side)
            let grey = DigitReader.render(strokes, side: side)
            guard let field = DigitNormalizer.normalize(grey: grey, width: side, height: side) else {
                return .failure(Problem(message: "No digit found: draw a digit in the box."))
            }
            guard let image = DigitReader.greyImage(field, side: DigitNormalizer.field), let request else {
                return .failure(Problem(message: "The model is not loaded."))
            }
            do {
                try VNImageRequestHandler(cgImage: image, orientation: .up).perform([request])
            } catch {
                return .failure(Problem(message: "Prediction failed: \(error.localizedDescription)"))
            }
            let observations = (request.results as? [VNClassificationObservation]) ?? []
            var byLabel: [String: Float] = [:]
            for observation in observations { byLabel[observation.identifier] = observation.confidence }
            let ranked = observations.sorted { $0.confidence > $1.confidence }
            guard let top = ranked.first else { return .failure(Problem(message: "The model gave no answer.")) }
            let second = ranked.dropFirst().first.map { (label: $0.identifier, confidence: $0.confidence) }
            return .success(Result(label: top.identifier, confidence: top.confidence, runnerUp: second,
                                   probabilities: labels.map { byLabel[$0] ?? 0 }, modelInput: image))
        }
    }

    /// The strokes as 8-bit grey pixels: black ink on white, as the user sees them.
    nonisolated static func render(_ strokes: [[CGPoint]], side: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 255, count: side * side)
        pixels.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(data: buffer.baseAddress, width: side, height: side, bitsPerComponent: 8,
                                          bytesPerRow: side, space: CGColorSpaceCreateDeviceGray(),
                                          bitmapInfo: CGImageAlphaInfo.none.rawValue) else { return }
            // UIKit-style coordinates: origin top left.
            context.translateBy(x: 0, y: CGFloat(side))
            context.scaleBy(x: 1, y: -1)
            context.setStrokeColor(gray: 0, alpha: 1)
            context.setLineWidth(Pen.lineWidth)
            context.setLineCap(.round)
            context.setLineJoin(.round)
            for stroke in strokes where !stroke.isEmpty {
                context.addPath(Pen.path(for: stroke).cgPath)
                context.strokePath()
            }
        }
        return pixels
    }

    /// A 28×28 8-bit grey CGImage (white digit on black, as the model expects).
    nonisolated static func greyImage(_ pixels: [UInt8], side: Int) -> CGImage? {
        guard let provider = CGDataProvider(data: Data(pixels) as CFData) else { return nil }
        return CGImage(width: side, height: side, bitsPerComponent: 8, bitsPerPixel: 8, bytesPerRow: side,
                       space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGBitmapInfo(rawValue: 0),
                       provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)
    }
}
