import SwiftUI

/// Draw a digit; the model reads it as you draw (debounced) and shows all ten probabilities.
struct ContentView: View {
    @State private var strokes: [[CGPoint]] = []
    @StateObject private var reader = DigitReader()

    var body: some View {
        ScrollView {
            VStack(spacing: 16) {
                Text("Draw a digit").font(.largeTitle.bold())
                DrawingPad(strokes: $strokes)
                    .frame(width: DrawingPad.side, height: DrawingPad.side)
                    .onChange(of: strokes) { newStrokes in reader.schedule(newStrokes) }
                Button("Clear") {
                    strokes = []
                    reader.clear()
                }
                .buttonStyle(.borderedProminent)
                answer
                ProbabilityBars(probabilities: reader.result?.probabilities ?? Array(repeating: 0, count: 10))
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
            .padding()
        }
    }

    @ViewBuilder private var answer: some View {
        if let result = reader.result {
            HStack(alignment: .firstTextBaseline, spacing: 12) {
                Text(result.label).font(.system(size: 80, weight: .bold))
                Text(String(format: "%.1f%% sure", result.confidence * 100))
                    .font(.title2).foregroundStyle(.secondary)
            }
        } else {
            Text(reader.message).foregroundStyle(.secondary).frame(minHeight: 96)
        }
    }
}

/// Round, thick strokes drawn with a finger or pencil.
struct DrawingPad: View {
    static let side: CGFloat = 280
    static let lineWidth: CGFloat = 20
    @Binding var strokes: [[CGPoint]]

    var body: some View {
        Canvas { context, _ in
            for stroke in strokes {
                context.stroke(DrawingPad.path(for: stroke), with: .color(.black),
                               style: StrokeStyle(lineWidth: DrawingPad.lineWidth, lineCap: .round, lineJoin: .round))
            }
        }
        .background(Color.white)
        .border(Color.primary, width: 2)
        .gesture(
            DragGesture(minimumDistance: 0)
                .onChanged { value in
                    if value.translation == .zero || strokes.isEmpty {
                        strokes.append([value.location])
                    } else {
                        strokes[strokes.count - 1].append(value.location)
                    }
                }
                .onEnded { _ in strokes.append([]) }
        )
    }

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

/// Ten horizontal bars, the most likely digit highlighted.
struct ProbabilityBars: View {
    let probabilities: [Float]

    var body: some View {
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }
        VStack(spacing: 4) {
            ForEach(0..<10, id: \.self) { digit in
                HStack {
                    Text("\(digit)").monospacedDigit().frame(width: 20)
                    GeometryReader { geometry in
                        ZStack(alignment: .leading) {
                            RoundedRectangle(cornerRadius: 4).fill(Color.gray.opacity(0.2))
                            RoundedRectangle(cornerRadius: 4)
                                .fill(digit == best && probabilities[digit] > 0 ? Color.green : Color.blue)
                                .frame(width: geometry.size.width * CGFloat(probabilities[digit]))
                        }
                    }
                    .frame(height: 14)
                    Text(String(format: "%3.0f%%", probabilities[digit] * 100)).monospacedDigit().frame(width: 48)
                }
            }
        }
    }
}
