import CoreML
import CoreVideo
import PhotosUI
import SwiftUI
import UIKit

/// Number mode: write a number on a wide pad, or photograph one on paper, and the app reads every
/// digit (the package's `NumberReader`, the Python reader's port) with all of an image's digits
/// through the Core ML model in one batch. Boxes are drawn over the ink with each digit's answer
/// under it; unsure digits are orange.
struct NumberView: View {
    @ObservedObject var reader: DigitReader
    @State private var pad = StrokeRecorder()
    @State private var reading: NumberReader.Reading?
    @State private var photo: UIImage?
    @State private var problem: String?
    @State private var pickedItem: PhotosPickerItem?
    @State private var showingCamera = false
    @State private var pending: Task<Void, Never>?

    var body: some View {
        VStack(spacing: 16) {
            Text("Write a number").font(.largeTitle.bold())
            if let photo {
                PhotoWithBoxes(photo: photo, reading: reading)
            } else {
                // The digit pad, wider and with a thinner pen, the boxes drawn over the ink.
                DrawingPad(pad: $pad, lineWidth: NumberPen.lineWidth)
                    .frame(width: NumberPen.size.width, height: NumberPen.size.height)
                    .overlay(alignment: .topLeading) { BoxesOverlay(reading: reading, scale: 1) }
                    .onChange(of: pad.strokes) { strokes in readDrawing(strokes) }
            }
            HStack {
                Button("Clear") { clear() }.buttonStyle(.borderedProminent)
                PhotosPicker(selection: $pickedItem, matching: .images) { Label("Photo", systemImage: "photo") }
                    .buttonStyle(.bordered)
                if UIImagePickerController.isSourceTypeAvailable(.camera) {
                    Button { showingCamera = true } label: { Label("Camera", systemImage: "camera") }
                        .buttonStyle(.bordered)
                }
            }
            NumberAnswerView(reading: reading, message: message)
        }
        .onChange(of: reader.state.model) { model in
            if model == .ready { readDrawing(pad.strokes) }  // written while the model loaded
        }
        .onChange(of: pickedItem) { item in
            guard let item else { return }
            Task {
                if let data = try? await item.loadTransferable(type: Data.self), let image = UIImage(data: data) {
                    readPhoto(image)
                } else {
                    problem = "That photo could not be opened."
                }
            }
        }
        .sheet(isPresented: $showingCamera) {
            CameraPicker { image in readPhoto(image) }.ignoresSafeArea()
        }
    }

    private var message: String {
        if let problem { return problem }
        return reader.state.model == .ready ? "Write a number on the pad, or read one from a photo." : reader.message
    }

    private func clear() {
        pending?.cancel()
        pad.clear()
        photo = nil
        reading = nil
        problem = nil
        pickedItem = nil
    }

    private func readDrawing(_ strokes: [[CGPoint]]) {
        guard photo == nil else { return }  // the pad cleared for a photo: the photo's reading goes on
        pending?.cancel()
        guard strokes.contains(where: { !$0.isEmpty }), reader.state.model == .ready else {
            reading = nil
            return
        }
        pending = Task {
            try? await Task.sleep(nanoseconds: 120_000_000)  // debounce, as the digit pad
            guard !Task.isCancelled else { return }
            show(await reader.readNumber(drawing: strokes, size: NumberPen.size))
        }
    }

    private func readPhoto(_ image: UIImage) {
        pending?.cancel()
        pad.clear()
        photo = image
        reading = nil
        guard reader.state.model == .ready else {
            problem = reader.message
            return
        }
        guard let pixels = PhotoPixels(image) else {
            problem = "That photo could not be read."
            return
        }
        pending = Task {
            let outcome = await reader.readNumber(photo: pixels)
            // A number written small in a large photo: read again from a closer look at it.
            if case .success(let first) = outcome, pixels.scale.0 > 1,
               let region = NumberReader.zoomRegion(first, full: pixels.full, width: pixels.width),
               let closer = PhotoPixels(image, region: region),
               case .success(let again) = await reader.readNumber(photo: closer), !again.digits.isEmpty {
                show(.success(again.shifted(x: region.x, y: region.y)))
            } else {
                show(outcome)
            }
        }
    }

    private func show(_ outcome: Result<NumberReader.Reading, DigitReader.Problem>) {
        guard !Task.isCancelled else { return }
        switch outcome {
        case .success(let read): reading = read; problem = nil
        case .failure(let failure): reading = nil; problem = failure.message
        }
    }
}

/// The number in large type, unsure digits in orange, and what the reader says.
struct NumberAnswerView: View {
    let reading: NumberReader.Reading?
    let message: String

    var body: some View {
        if let reading, !reading.digits.isEmpty {
            VStack(spacing: 4) {
                HStack(spacing: 2) {
                    ForEach(Array(reading.digits.enumerated()), id: \.offset) { index, digit in
                        Text(digit.label)
                            .font(.system(size: 64, weight: .bold))
                            .foregroundStyle(reading.unsure.contains(index) ? Color.orange : Color.primary)
                    }
                }
                Text(reading.verdict == "sure" ? "Sure of every digit" : (reading.message ?? "Not sure"))
                    .foregroundStyle(reading.verdict == "sure" ? Color.secondary : Color.orange)
            }
        } else {
            Text(reading?.message ?? message).foregroundStyle(.secondary).frame(minHeight: 96)
        }
    }
}

/// The wide pad's size and pen (a plain enum, not a View: the model's actor renders with them too).
enum NumberPen {
    static let size = CGSize(width: 340, height: 160)
    static let lineWidth: CGFloat = 12
}

/// The photo, fitted to the screen's width, with the boxes scaled from its pixels to the view.
struct PhotoWithBoxes: View {
    let photo: UIImage
    let reading: NumberReader.Reading?

    var body: some View {
        let pixelWidth = photo.size.width * photo.scale
        let width = NumberPen.size.width
        Image(uiImage: photo)
            .resizable()
            .scaledToFit()
            .frame(width: width)
            .overlay(alignment: .topLeading) { BoxesOverlay(reading: reading, scale: width / max(pixelWidth, 1)) }
    }
}

/// Each digit's box, and its answer under it; a decimal point is marked by its box alone.
struct BoxesOverlay: View {
    let reading: NumberReader.Reading?
    let scale: CGFloat

    var body: some View {
        ZStack(alignment: .topLeading) {
            ForEach(Array((reading?.digits ?? []).enumerated()), id: \.offset) { index, digit in
                let unsure = reading?.unsure.contains(index) ?? false
                let colour: Color = unsure ? .orange : .green
                let frame = CGRect(x: CGFloat(digit.box.x) * scale, y: CGFloat(digit.box.y) * scale,
                                   width: CGFloat(digit.box.width) * scale, height: CGFloat(digit.box.height) * scale)
                Rectangle().stroke(colour, lineWidth: 2)
                    .frame(width: frame.width, height: frame.height)
                    .offset(x: frame.minX, y: frame.minY)
                if digit.verdict != "point" {
                    Text(digit.label).font(.headline).foregroundStyle(colour)
                        .offset(x: frame.minX, y: frame.maxY + 2)
                }
            }
        }
        .allowsHitTesting(false)  // the pen draws through the boxes
    }
}

/// A photo as the reader wants it: upright (its orientation applied), at most `longest` pixels on
/// its longer side (as digitkit reduces a photo before reading it), in RGBA bytes; and how much
/// larger the photo itself is, so the boxes come back in its pixels. With `region` (in the photo's
/// pixels), only that part of it: a closer look at a number written small.
struct PhotoPixels: Sendable {
    static let longest: CGFloat = 384
    let rgba: [UInt8]
    let width: Int
    let height: Int
    let scale: (Double, Double)
    let full: (width: Int, height: Int)  // the whole photo, in pixels

    @MainActor init?(_ image: UIImage, region: NumberReader.Box? = nil) {
        let whole = CGSize(width: image.size.width * image.scale, height: image.size.height * image.scale)
        let part = region.map { CGRect(x: $0.x, y: $0.y, width: $0.width, height: $0.height) }
            ?? CGRect(origin: .zero, size: whole)
        let factor = min(1, Self.longest / max(part.width, part.height, 1))
        let width = max(1, Int((part.width * factor).rounded()))
        let height = max(1, Int((part.height * factor).rounded()))
        var pixels = [UInt8](repeating: 255, count: width * height * 4)
        let drawn = pixels.withUnsafeMutableBytes { buffer -> Bool in
            guard let context = CGContext(data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                          bytesPerRow: width * 4, space: CGColorSpaceCreateDeviceRGB(),
                                          bitmapInfo: CGImageAlphaInfo.premultipliedLast.rawValue) else { return false }
            UIGraphicsPushContext(context)
            defer { UIGraphicsPopContext() }
            // UIKit's drawing applies the photo's orientation; its origin is top left. The whole
            // photo is drawn so that the part wanted fills the context.
            context.translateBy(x: 0, y: CGFloat(height))
            context.scaleBy(x: 1, y: -1)
            image.draw(in: CGRect(x: -part.minX * factor, y: -part.minY * factor,
                                  width: whole.width * factor, height: whole.height * factor))
            return true
        }
        guard drawn else { return nil }
        self.width = width
        self.height = height
        rgba = pixels
        scale = (Double(part.width) / Double(width), Double(part.height) / Double(height))
        full = (Int(whole.width.rounded()), Int(whole.height.rounded()))
    }
}

/// The camera, for a photo of a number on paper.
struct CameraPicker: UIViewControllerRepresentable {
    let picked: (UIImage) -> Void
    @Environment(\.dismiss) private var dismiss

    func makeUIViewController(context: Context) -> UIImagePickerController {
        let picker = UIImagePickerController()
        picker.sourceType = .camera
        picker.delegate = context.coordinator
        return picker
    }

    func updateUIViewController(_ controller: UIImagePickerController, context: Context) {}

    func makeCoordinator() -> Coordinator { Coordinator(self) }

    final class Coordinator: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
        let parent: CameraPicker
        init(_ parent: CameraPicker) { self.parent = parent }

        func imagePickerController(_ picker: UIImagePickerController,
                                   didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]) {
            if let image = info[.originalImage] as? UIImage { parent.picked(image) }
            parent.dismiss()
        }

        func imagePickerControllerDidCancel(_ picker: UIImagePickerController) { parent.dismiss() }
    }
}

extension DigitReader {
    /// The number in the strokes of the wide pad, rendered and read off the main thread.
    func readNumber(drawing strokes: [[CGPoint]], size: CGSize) async -> Swift.Result<NumberReader.Reading, Problem> {
        await engine.readNumber(drawing: strokes, width: Int(size.width), height: Int(size.height))
    }

    /// The number in a photo, boxes in the photo's own pixels.
    func readNumber(photo: PhotoPixels) async -> Swift.Result<NumberReader.Reading, Problem> {
        await engine.readNumber(photo: photo)
    }
}

extension DigitReader.Engine {
    func readNumber(drawing strokes: [[CGPoint]], width: Int, height: Int) -> Swift.Result<NumberReader.Reading, DigitReader.Problem> {
        let grey = DigitReader.render(strokes, width: width, height: height, lineWidth: NumberPen.lineWidth)
        return readNumber { classify, labels in
            try NumberReader.read(grey: grey, width: width, height: height, labels: labels, classify: classify)
        }
    }

    func readNumber(photo: PhotoPixels) -> Swift.Result<NumberReader.Reading, DigitReader.Problem> {
        readNumber { classify, labels in
            try NumberReader.read(rgba: photo.rgba, width: photo.width, height: photo.height, labels: labels,
                                  scale: photo.scale, classify: classify)
        }
    }

    /// `read` with the loaded model as its classifier; a failed prediction or reading as a Problem.
    private func readNumber(_ read: (@escaping NumberReader.Classify, [String]) throws -> NumberReader.Reading)
        -> Swift.Result<NumberReader.Reading, DigitReader.Problem> {
        guard let model else { return .failure(DigitReader.Problem(message: "The model is not loaded.")) }
        let labels = self.labels
        var failure: Error?
        // Every digit of the image (and every cut the reader weighs) in one Core ML batch per question.
        let classify: NumberReader.Classify = { batch in
            do {
                return try Self.probabilities(model, labels: labels, batch: batch)
            } catch {
                failure = error
                return batch.map { _ in [Float](repeating: 0, count: labels.count) }
            }
        }
        do {
            let reading = try read(classify, labels)
            if let failure { return .failure(DigitReader.Problem(message: "Prediction failed: \(failure.localizedDescription)")) }
            return .success(reading)
        } catch {
            return .failure(DigitReader.Problem(message: error.localizedDescription))
        }
    }

    /// The model's class probabilities (in `labels` order) for 28×28 inputs, as one batch.
    static func probabilities(_ model: MLModel, labels: [String], batch: [[UInt8]]) throws -> [[Float]] {
        let description = model.modelDescription
        guard let input = description.inputDescriptionsByName.keys.first,
              let output = description.predictedProbabilitiesName else {
            throw DigitReader.Problem(message: "The model has no image input or no probabilities output.")
        }
        let features: [MLFeatureProvider] = try batch.map { pixels in
            try MLDictionaryFeatureProvider(dictionary: [input: MLFeatureValue(pixelBuffer: try pixelBuffer(pixels))])
        }
        let results = try model.predictions(from: MLArrayBatchProvider(array: features), options: MLPredictionOptions())
        return (0..<results.count).map { index in
            let probabilities = results.features(at: index).featureValue(for: output)?.dictionaryValue ?? [:]
            return labels.map { label in
                // Class labels are strings or integers, as the model was exported.
                (probabilities[label] ?? Int64(label).flatMap { probabilities[$0] })?.floatValue ?? 0
            }
        }
    }

    /// A 28×28 one-byte grey pixel buffer (the model's image input).
    static func pixelBuffer(_ pixels: [UInt8]) throws -> CVPixelBuffer {
        let side = DigitNormalizer.field
        var made: CVPixelBuffer?
        guard CVPixelBufferCreate(kCFAllocatorDefault, side, side, kCVPixelFormatType_OneComponent8, nil, &made) == kCVReturnSuccess,
              let buffer = made else { throw DigitReader.Problem(message: "Could not make the model's input.") }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else { throw DigitReader.Problem(message: "Could not make the model's input.") }
        let stride = CVPixelBufferGetBytesPerRow(buffer)
        pixels.withUnsafeBytes { source in
            for row in 0..<side { memcpy(base + row * stride, source.baseAddress! + row * side, side) }
        }
        return buffer
    }
}
