import CoreGraphics
import CoreML
import SwiftUI
import Vision

/// Renders the strokes, normalises them as MNIST (DigitNormalizer) and classifies the 28×28 image
/// with the exported `MNISTClassifier` Core ML model through Vision.
@MainActor
final class DigitReader: ObservableObject {
    struct Result {
        let label: String
        let confidence: Float
        let probabilities: [Float]  // index = digit
        let modelInput: CGImage
    }

    @Published private(set) var result: Result?
    @Published private(set) var message = "Draw a digit in the box."

    private static let debounce: UInt64 = 120_000_000  // nanoseconds
    private var pending: Task<Void, Never>?
    private lazy var request: VNCoreMLRequest? = {
        do {
            let model = try VNCoreMLModel(for: MNISTClassifier(configuration: MLModelConfiguration()).model)
            let request = VNCoreMLRequest(model: model)
            request.imageCropAndScaleOption = .scaleFill  // the image is already 28×28
            return request
        } catch {
            self.message = "Could not load MNISTClassifier: \(error.localizedDescription)"
            return nil
        }
    }()

    func clear() {
        pending?.cancel()
        result = nil
        message = "Draw a digit in the box."
    }

    func schedule(_ strokes: [[CGPoint]]) {
        pending?.cancel()
        pending = Task {
            try? await Task.sleep(nanoseconds: Self.debounce)
            guard !Task.isCancelled else { return }
            read(strokes)
        }
    }

    private func read(_ strokes: [[CGPoint]]) {
        let side = Int(DrawingPad.side)
        let grey = Self.render(strokes, side: side)
        guard let field = DigitNormalizer.normalize(grey: grey, width: side, height: side) else {
            result = nil
            message = "No digit found: draw a digit in the box."
            return
        }
        guard let image = Self.greyImage(field, side: DigitNormalizer.field), let request else { return }
        do {
            try VNImageRequestHandler(cgImage: image, orientation: .up).perform([request])
        } catch {
            message = "Prediction failed: \(error.localizedDescription)"
            return
        }
        let observations = (request.results as? [VNClassificationObservation]) ?? []
        var probabilities = [Float](repeating: 0, count: 10)
        for observation in observations {
            if let digit = Int(observation.identifier), (0..<10).contains(digit) {
                probabilities[digit] = observation.confidence
            }
        }
        guard let top = observations.max(by: { $0.confidence < $1.confidence }) else { return }
        result = Result(label: top.identifier, confidence: top.confidence, probabilities: probabilities,
                        modelInput: image)
    }

    /// The strokes as 8-bit grey pixels: black ink on white, as the user sees them.
    static func render(_ strokes: [[CGPoint]], side: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 255, count: side * side)
        pixels.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(data: buffer.baseAddress, width: side, height: side, bitsPerComponent: 8,
                                          bytesPerRow: side, space: CGColorSpaceCreateDeviceGray(),
                                          bitmapInfo: CGImageAlphaInfo.none.rawValue) else { return }
            // UIKit-style coordinates: origin top left.
            context.translateBy(x: 0, y: CGFloat(side))
            context.scaleBy(x: 1, y: -1)
            context.setStrokeColor(gray: 0, alpha: 1)
            context.setLineWidth(DrawingPad.lineWidth)
            context.setLineCap(.round)
            context.setLineJoin(.round)
            for stroke in strokes where !stroke.isEmpty {
                context.addPath(DrawingPad.path(for: stroke).cgPath)
                context.strokePath()
            }
        }
        return pixels
    }

    /// A 28×28 8-bit grey CGImage (white digit on black, as the model expects).
    static func greyImage(_ pixels: [UInt8], side: Int) -> CGImage? {
        guard let provider = CGDataProvider(data: Data(pixels) as CFData) else { return nil }
        return CGImage(width: side, height: side, bitsPerComponent: 8, bitsPerPixel: 8, bytesPerRow: side,
                       space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGBitmapInfo(rawValue: 0),
                       provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)
    }
}
