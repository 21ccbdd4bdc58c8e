import SwiftUI

/// Draw a digit; the model reads it as you draw (debounced) and shows the probability of each class.
/// Number mode (NumberMode.swift) reads a whole number, drawn or photographed, with the same model.
struct ContentView: View {
    enum Mode: String, CaseIterable { case digit = "Digit", number = "Number" }

    @State private var mode = Mode.digit
    @State private var pad = StrokeRecorder()
    @StateObject private var reader = DigitReader()

    var body: some View {
        ScrollView {
            VStack(spacing: 16) {
                Picker("Read", selection: $mode) {
                    ForEach(Mode.allCases, id: \.self) { Text($0.rawValue) }
                }
                .pickerStyle(.segmented)
                if mode == .digit { digitMode } else { NumberView(reader: reader) }
            }
            .padding()
        }
    }

    @ViewBuilder private var digitMode: some View {
        VStack(spacing: 16) {
            Text("Draw a digit").font(.largeTitle.bold())
            DrawingPad(pad: $pad)
                .frame(width: Pen.side, height: Pen.side)
                .onChange(of: pad.strokes) { newStrokes in reader.schedule(newStrokes) }
            Button("Clear") {
                pad.clear()
                reader.clear()
            }
            .buttonStyle(.borderedProminent)
            answer
            ProbabilityBars(labels: reader.labels,
                            probabilities: reader.result?.probabilities ?? Array(repeating: 0, count: reader.labels.count))
            if let seen = reader.result?.modelInput {
                VStack(spacing: 4) {
                    Image(decorative: seen, scale: 1)
                        .interpolation(.none)
                        .resizable()
                        .frame(width: 112, height: 112)
                    Text("What the model saw (28×28)").font(.footnote).foregroundStyle(.secondary)
                }
            }
        }
    }

    @ViewBuilder private var answer: some View {
        if let result = reader.result, result.verdict == .notAClass {
            // A heart, a scribble, a dot: no digit at all, rather than a sure "0".
            Text(Verdict.notAClassMessage(labels: reader.labels))
                .font(.title2).foregroundStyle(.orange).frame(minHeight: 96)
        } else if let result = reader.result {
            HStack(alignment: .firstTextBaseline, spacing: 12) {
                Text(result.label).font(.system(size: 80, weight: .bold))
                if result.sure {
                    Text(String(format: "%.1f%% sure", result.confidence * 100))
                        .font(.title2).foregroundStyle(.secondary)
                } else if let second = result.runnerUp {
                    // Not sure: say so, and name the two best candidates.
                    Text(String(format: "Not sure: %@ (%.0f%%) or %@ (%.0f%%)?", result.label, result.confidence * 100,
                                second.label, second.confidence * 100))
                        .font(.title3).foregroundStyle(.orange)
                }
            }
        } else {
            Text(reader.message).foregroundStyle(.secondary).frame(minHeight: 96)
        }
    }
}

/// The pen: the pad's size and a round, thick stroke (shared by the view and the renderer, off the
/// main actor too).
enum Pen {
    static let side: CGFloat = 280
    static let lineWidth: CGFloat = 20

    static func path(for stroke: [CGPoint]) -> Path {
        var path = Path()
        guard let first = stroke.first else { return path }
        path.move(to: first)
        // A tap is a dot: a zero-length line with round caps.
        path.addLine(to: stroke.count == 1 ? CGPoint(x: first.x + 0.01, y: first.y) : first)
        for point in stroke.dropFirst() { path.addLine(to: point) }
        return path
    }
}

/// Round, thick strokes drawn with a finger or pencil.
struct DrawingPad: View {
    @Binding var pad: StrokeRecorder
    var lineWidth = Pen.lineWidth
    /// True while a touch is down. SwiftUI resets it when the gesture ends *and* when the system
    /// cancels it (which skips `onEnded`), so the stroke is ended either way.
    @GestureState private var touching = false

    var body: some View {
        Canvas { context, _ in
            for stroke in pad.strokes {
                context.stroke(Pen.path(for: stroke), with: .color(.black),
                               style: StrokeStyle(lineWidth: lineWidth, lineCap: .round, lineJoin: .round))
            }
        }
        .background(Color.white)
        .border(Color.primary, width: 2)
        .gesture(
            DragGesture(minimumDistance: 0)
                .updating($touching) { _, state, _ in state = true }
                .onChanged { value in pad.touch(at: value.location) }
                .onEnded { _ in pad.lift() }
        )
        .onChange(of: touching) { isTouching in
            if !isTouching { pad.lift() }  // ended or cancelled: the next touch starts a new stroke
        }
    }
}

/// One horizontal bar per class, the most likely highlighted.
struct ProbabilityBars: View {
    let labels: [String]
    let probabilities: [Float]

    var body: some View {
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }
        VStack(spacing: 4) {
            ForEach(Array(labels.enumerated()), id: \.offset) { index, label in
                let p = index < probabilities.count ? probabilities[index] : 0
                HStack {
                    Text(label).monospacedDigit().lineLimit(1).frame(minWidth: 20, alignment: .leading)
                    GeometryReader { geometry in
                        ZStack(alignment: .leading) {
                            RoundedRectangle(cornerRadius: 4).fill(Color.gray.opacity(0.2))
                            RoundedRectangle(cornerRadius: 4)
                                .fill(index == best && p > 0 ? Color.green : Color.blue)
                                .frame(width: geometry.size.width * CGFloat(p))
                        }
                    }
                    .frame(height: 14)
                    Text(String(format: "%3.0f%%", p * 100)).monospacedDigit().frame(width: 48)
                }
            }
        }
    }
}
