import CoreGraphics
import CoreML
import SwiftUI
import Vision

/// Renders the strokes, normalises them as MNIST (DigitNormalizer) and classifies the 28×28 image
/// with the Core ML model the app bundle holds (`MNISTClassifier` as shipped) through Vision. The
/// work runs off the main thread; only the published result is set on it. The words for an answer (sure, not sure, not a
/// digit) come from the DigitNormalizer package's `Verdict`, as the web page's do.
@MainActor
final class DigitReader: ObservableObject {
    /// What crosses from the engine actor to the main actor: values only, and an immutable CGImage.
    struct Result: @unchecked Sendable {
        let ranking: Ranking
        let probabilities: [Float]  // in the order of `labels`
        let modelInput: CGImage

        var label: String { ranking.label }
        var confidence: Float { ranking.confidence }
        var runnerUp: (label: String, confidence: Float)? {
            guard let label = ranking.runnerUp, let confidence = ranking.runnerUpConfidence else { return nil }
            return (label, confidence)
        }
        var verdict: Verdict { ranking.verdict }
        var sure: Bool { verdict == .sure }
    }

    @Published private(set) var result: Result?
    /// Why the newest drawing has no answer (no ink, a failed prediction); nil when it has one.
    @Published private(set) var problem: String?
    /// The model's state and the drawing waiting for it (the Foundation-only `ReadingState`).
    @Published private(set) var state = ReadingState<[[CGPoint]]>()
    /// The model's class labels, in its output order (read from the model, not assumed to be 0…9).
    @Published private(set) var labels: [String] = []

    /// What to show in place of an answer: a load error stays until the app restarts.
    var message: String { problem ?? state.message }

    private static let debounce: UInt64 = 120_000_000  // nanoseconds
    private var pending: Task<Void, Never>?
    let engine = Engine()

    init() {
        Task {
            do {
                labels = try await engine.load()
                if let waiting = state.modelLoaded() { read(waiting, after: 0) }
            } catch {
                state.modelFailed(error.localizedDescription)
            }
        }
    }

    func clear() {
        pending?.cancel()
        result = nil
        problem = nil
        _ = state.padChanged(nil)
    }

    func schedule(_ strokes: [[CGPoint]]) {
        pending?.cancel()
        let drawing = strokes.contains(where: { !$0.isEmpty }) ? strokes : nil
        guard let toRead = state.padChanged(drawing) else {
            // An empty pad is a prompt, not "no digit found"; a drawing made while the model loads
            // waits in `state` and is read by `init` once the model is ready.
            result = nil
            problem = nil
            return
        }
        read(toRead, after: Self.debounce)
    }

    private func read(_ strokes: [[CGPoint]], after delay: UInt64) {
        pending?.cancel()
        pending = Task {
            if delay > 0 { try? await Task.sleep(nanoseconds: delay) }
            guard !Task.isCancelled else { return }
            let outcome = await engine.read(strokes)
            guard !Task.isCancelled else { return }
            switch outcome {
            case .success(let read):
                result = read
                problem = nil
            case .failure(let failure):
                result = nil
                problem = failure.message
            }
        }
    }

    struct Problem: LocalizedError, Sendable {
        let message: String
        var errorDescription: String? { message }
    }

    /// The model and the CPU work, isolated from the main actor.
    actor Engine {
        private var request: VNCoreMLRequest?
        private(set) var model: MLModel?  // number mode sends its digits to it in batches (NumberMode.swift)
        private(set) var labels: [String] = []

        func load() throws -> [String] {
            let configuration = MLModelConfiguration()
            #if targetEnvironment(simulator)
            // The Simulator has no Neural Engine or Metal for Core ML: Vision with the default compute
            // units fails there ("Could not create inference context").
            configuration.computeUnits = .cpuOnly
            #endif
            let model = try MLModel(contentsOf: try Self.compiledModel(), configuration: configuration)
            labels = (model.modelDescription.classLabels ?? []).map { "\($0)" }
            self.model = model
            let request = VNCoreMLRequest(model: try VNCoreMLModel(for: model))
            request.imageCropAndScaleOption = .scaleFill  // the image is already 28×28
            #if targetEnvironment(simulator)
            Self.runOnCPU(request)
            #endif
            self.request = request
            return labels
        }

        /// The compiled Core ML model in the app bundle, whatever its name: Xcode compiles every
        /// .mlpackage of the target into a .mlmodelc, so a model of your own classes works too.
        private static func compiledModel() throws -> URL {
            let models = (Bundle.main.urls(forResourcesWithExtension: "mlmodelc", subdirectory: nil) ?? [])
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
            guard let first = models.first else { throw Problem(message: "the app holds no Core ML model; see apps/ios/README.md") }
            guard models.count == 1 else {
                let names = models.map { $0.deletingPathExtension().lastPathComponent }.joined(separator: ", ")
                throw Problem(message: "the app holds \(models.count) models (\(names)); keep one in the MNISTDraw target")
            }
            return first
        }

        /// On iOS 17+ Simulators the model-level setting is not enough: Vision picks its own compute
        /// device per request, so the request is pinned to the CPU as well.
        private static func runOnCPU(_ request: VNCoreMLRequest) {
            if #available(iOS 17.0, *) {
                let devices = (try? request.supportedComputeStageDevices[.main]) ?? []
                if let cpu = devices.first(where: { if case .cpu = $0 { return true } else { return false } }) {
                    request.setComputeDevice(cpu, for: .main)
                }
            } else {
                request.usesCPUOnly = true
            }
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
            guard !observations.isEmpty, let ranking = Ranking(labels: labels, probabilities: byLabel) else {
                return .failure(Problem(message: "The model gave no answer."))
            }
            return .success(Result(ranking: ranking, probabilities: labels.map { byLabel[$0] ?? 0 }, modelInput: image))
        }
    }

    /// The strokes as 8-bit grey pixels: black ink on white, as the user sees them.
    nonisolated static func render(_ strokes: [[CGPoint]], side: Int) -> [UInt8] {
        render(strokes, width: side, height: side, lineWidth: Pen.lineWidth)
    }

    nonisolated static func render(_ strokes: [[CGPoint]], width: Int, height: Int, lineWidth: CGFloat) -> [UInt8] {
        var pixels = [UInt8](repeating: 255, count: width * height)
        pixels.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                          bytesPerRow: width, space: CGColorSpaceCreateDeviceGray(),
                                          bitmapInfo: CGImageAlphaInfo.none.rawValue) else { return }
            // UIKit-style coordinates: origin top left.
            context.translateBy(x: 0, y: CGFloat(height))
            context.scaleBy(x: 1, y: -1)
            context.setStrokeColor(gray: 0, alpha: 1)
            context.setLineWidth(lineWidth)
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
