import Foundation

/// Swift port of digitkit's number reader (src/digitkit/predict/numbers.py): one line of handwritten
/// digits in a drawing, a scan or a photo of paper → the number, each digit with its box, answer and
/// the 28×28 input the model saw. The steps, constants and every tie-break are Python's, so the phone
/// reads a number as every published figure does (tests/test_swift.py compares the two on hundreds
/// of images). The model stays outside: `classify` is the Core ML model on the phone and a stand-in in
/// tests, so this package needs nothing but Foundation.
public enum NumberReader {
    public static let maxDigits = 32  // more candidate digits than this is not a number
    static let maxParts = 3  // a digit is drawn in at most this many pieces
    static let joinedWidth = 1.3  // pieces joined into one digit span at most this many line heights
    static let joinGap = 0.1  // and stand at most this many line heights apart
    static let joinDoubt = 1.0  // a close call between one digit and two (log probability) is a guess
    static let speck = 0.2  // a piece lower and narrower than this share of the line is a speck or a point
    static let speckled = 2  // with this many other specks about (a scan's noise), a point may be one of them: not "sure"
    static let low = 0.6  // a digit lower than this share of the line may be a piece of one (a 1's flag): never "sure"
    static let sureDigit = 0.97  // a digit of a number is "sure" from this probability (alone, from 0.9)
    static let short = 0.4  // a piece lower than this, with no other piece close by or joining none, is no digit (a page's edge)
    static let line = 1.5  // lower than `short` and wider than this many line heights: a line drawn under or through the number
    static let splitFrom = 0.9  // a piece wider than this many line heights may be touching digits
    static let mustSplit = 1.7  // wider than this, it is
    static let wide = 1.0  // narrower, a piece is cut only into sure digits; wider, kept whole, a close call is a guess
    static let digitBonus = 0.3  // (log) each digit (not lower than `low`) adds this: two sure digits outweigh one sure pair
    static let tall = 1.25  // a 1 taller than this many times the other digits' median height is not "sure" (a form's wall)
    static let cuts = 6  // a piece that may be touching digits is tried at this many of its faintest columns
    static let zoomBelow = 48  // digits lower than this many pixels as read, in a photo reduced to read, are read again closer
    public static let point = "."

    /// Probabilities (in the order of the model's labels) for a batch of 28×28 inputs, 784 grey
    /// levels each, white on black.
    public typealias Classify = ([[UInt8]]) -> [[Float]]

    public struct Box: Sendable, Equatable, Codable {
        public let x: Int, y: Int, width: Int, height: Int
    }

    /// One character of a number: a digit with the model's answer, or a decimal point.
    public struct Digit: Sendable, Codable {
        public let label: String
        public let confidence: Float
        public let verdict: String  // "sure", "not sure", "not a class" or "point"
        public let box: Box  // in the image's pixels (times `scale`)
        public let probabilities: [Float]?
        public let input: [UInt8]?  // the 28×28 the model saw
    }

    /// The number; `verdict` is "sure" only when every digit is sure, and `unsure` lists the
    /// positions (in `number`) of those that are not.
    public struct Reading: Sendable, Codable {
        public let number: String
        public let verdict: String  // "sure", "not sure" or "no digits found"
        public let digits: [Digit]
        public let unsure: [Int]
        public let message: String?

        init(_ digits: [Digit]) {
            guard digits.contains(where: { $0.label != NumberReader.point }) else {
                self.init(number: "", verdict: "no digits found", digits: [], unsure: [],
                          message: "no digits found: the image has no handwriting")
                return
            }
            let unsure = digits.indices.filter { !["sure", "point"].contains(digits[$0].verdict) }
            let message = unsure.isEmpty ? nil : "not sure of the digit" + (unsure.count > 1 ? "s" : "")
                + " at position " + unsure.map { String($0 + 1) }.joined(separator: ", ")
            self.init(number: digits.map(\.label).joined(), verdict: unsure.isEmpty ? "sure" : "not sure",
                      digits: digits, unsure: unsure, message: message)
        }

        init(number: String, verdict: String, digits: [Digit], unsure: [Int], message: String?) {
            self.number = number; self.verdict = verdict; self.digits = digits; self.unsure = unsure; self.message = message
        }

        /// The same reading with every box moved by (x, y): a closer look's boxes in the whole photo.
        public func shifted(x: Int, y: Int) -> Reading {
            let moved = digits.map { digit in
                Digit(label: digit.label, confidence: digit.confidence, verdict: digit.verdict,
                      box: Box(x: digit.box.x + x, y: digit.box.y + y, width: digit.box.width, height: digit.box.height),
                      probabilities: digit.probabilities, input: digit.input)
            }
            return Reading(number: number, verdict: verdict, digits: moved, unsure: unsure, message: message)
        }
    }

    /// Where to look closer at a photo (Python's `zoom_region`), in the photo's own pixels, for a
    /// reading of it reduced to `width` pixels across (`full`: the photo's size): around the digits,
    /// when they are under `zoomBelow` pixels high as read and the region is under half the photo,
    /// so a closer look at a photo reduced to read sees them at least twice as large. Nil otherwise.
    public static func zoomRegion(_ reading: Reading, full: (width: Int, height: Int), width: Int) -> Box? {
        let digits = reading.digits.filter { $0.label != point }
        guard !digits.isEmpty, width > 0 else { return nil }
        let scale = Double(full.width) / Double(width)
        let height = median(digits.map { Double($0.box.height) })
        guard height / scale < Double(zoomBelow) else { return nil }
        let margin = Int(height.rounded(.toNearestOrEven))  // Python's round()
        let left = max(0, (reading.digits.map(\.box.x).min() ?? 0) - margin)
        let top = max(0, (reading.digits.map(\.box.y).min() ?? 0) - margin)
        let right = min(full.width, (reading.digits.map { $0.box.x + $0.box.width }.max() ?? 0) + margin)
        let bottom = min(full.height, (reading.digits.map { $0.box.y + $0.box.height }.max() ?? 0) + margin)
        guard 2 * max(right - left, bottom - top) <= max(full.width, full.height) else { return nil }
        return Box(x: left, y: top, width: right - left, height: bottom - top)
    }

    public struct TooManyPieces: Error, LocalizedError, Sendable {
        public let count: Int
        public var errorDescription: String? {
            "the image holds \(count) candidate digits, more than a number of \(NumberReader.maxDigits) can have: "
                + "photograph or crop one line of handwriting"
        }
    }

    /// Reads 8-bit RGBA pixels (4 bytes per pixel); boxes are multiplied by `scale` (x, y), for an
    /// image that was reduced before reading.
    public static func read(rgba: [UInt8], width: Int, height: Int, labels: [String], scale: (Double, Double) = (1, 1),
                            classify: @escaping Classify) throws -> Reading {
        let (grey, alpha) = DigitNormalizer.greyAndAlpha(rgba: rgba, count: width * height)
        return try read(grey: grey, width: width, height: height, alpha: alpha, labels: labels, scale: scale, classify: classify)
    }

    /// Reads 8-bit grey pixels, with an alpha byte per pixel when the canvas is transparent.
    public static func read(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]? = nil, labels: [String],
                            scale: (Double, Double) = (1, 1), classify: @escaping Classify) throws -> Reading {
        guard let ink = LineInk.ink(grey: grey, width: width, height: height, alpha: alpha) else { return Reading([]) }
        let (pixelLabels, boxes) = LineInk.components(ink.pixels.map { $0 > 0 }, width: width, height: height)
        let pieces = boxes.enumerated().map { Piece(labels: [$0.offset + 1], top: $0.element.top, bottom: $0.element.bottom,
                                                    left: $0.element.left, right: $0.element.right) }
        guard !pieces.isEmpty else { return Reading([]) }
        let lineHeight = Self.lineHeight(pieces)
        let isSmall = pieces.map { Double($0.height) < speck * lineHeight && Double($0.width) < speck * lineHeight }
        let small = zip(pieces, isSmall).filter { $0.1 }.map(\.0)
        // A hand-drawn line under or through the number: flatter than any digit, wider than two.
        let large = zip(pieces, isSmall).filter {
            !$0.1 && !(Double($0.0.height) < short * lineHeight && Double($0.0.width) > line * lineHeight)
        }.map(\.0)
        // Joining and the neighbour search are quadratic in the pieces: far more than a number's digits
        // can be made of is refused first.
        var units = large
        if large.count <= maxParts * maxDigits {
            let grouped = group(large)
            units = grouped.indices.filter {
                Double(grouped[$0].height) >= short * lineHeight || hasNeighbour($0, in: grouped, lineHeight: lineHeight)
            }.map { grouped[$0] }
        }
        guard units.count <= maxDigits else { throw TooManyPieces(count: units.count) }
        let reader = PieceReader(ink: ink, labels: pixelLabels, lineHeight: lineHeight, classify: classify)
        units = units.flatMap { reader.split($0) }
        // a short piece was kept for a neighbour to join: left on its own, it is no digit (a 5's flag apart)
        let digits = bestSegmentation(reader, units).filter { Double($0.height) >= short * lineHeight }
        let points = small.filter { isPoint($0, digits: digits, lineHeight: lineHeight) }
        return Reading(answers(reader, digits: digits, points: points, labels: labels, scale: scale,
                               speckled: small.count - points.count >= speckled))
    }

    static func lineHeight(_ pieces: [Piece]) -> Double {
        let tallest = pieces.map(\.height).max() ?? 0
        return median(pieces.map(\.height).filter { Double($0) >= 0.4 * Double(tallest) }.map(Double.init))
    }

    /// NumPy's median: the middle value, or the mean of the two middle ones.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted(), n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    /// Python's stable `sorted(key=)`: Swift's sort is not stable, so ties keep their order by index.
    static func stableSorted<T>(_ items: [T], by key: (T) -> Double) -> [T] {
        items.enumerated().sorted { key($0.element) != key($1.element) ? key($0.element) < key($1.element) : $0.offset < $1.offset }
            .map(\.element)
    }

    /// One stands over the other: nearly all of the narrower one lies within the other's columns.
    static func stacked(_ a: Piece, _ b: Piece) -> Bool {
        Double(min(a.right, b.right) - max(a.left, b.left)) >= 0.8 * Double(min(a.width, b.width))
    }

    /// Pieces that stand over one another (surely parts of one digit) joined, left to right.
    static func group(_ pieces: [Piece]) -> [Piece] {
        var groups: [Piece] = []
        for piece in stableSorted(pieces, by: { Double($0.left) }) {
            if let i = groups.firstIndex(where: { stacked($0, piece) }) {
                groups[i] = groups[i].joined(piece)
            } else {
                groups.append(piece)
            }
        }
        var merged = true
        while merged {  // a joined group can now stand over another
            merged = false
            search: for i in groups.indices {
                for j in (i + 1)..<groups.count where stacked(groups[i], groups[j]) {
                    groups[i] = groups[i].joined(groups.remove(at: j))
                    merged = true
                    break search
                }
            }
        }
        return stableSorted(groups) { Double($0.left + $0.right) / 2 }
    }

    /// Another piece stands within joining distance, across and down (the short piece may be part of its digit).
    static func hasNeighbour(_ index: Int, in units: [Piece], lineHeight: Double) -> Bool {
        let unit = units[index]
        return units.indices.contains { j in
            let other = units[j]
            let gap = max(other.left - unit.right, unit.left - other.right, other.top - unit.bottom, unit.top - other.bottom)
            return j != index && Double(gap) <= joinGap * lineHeight
        }
    }

    /// A decimal point: a small roundish dot on the baseline, with a digit on each side and a gap to each.
    static func isPoint(_ speck: Piece, digits: [Piece], lineHeight height: Double) -> Bool {
        let size = Double(max(speck.width, speck.height))
        guard !digits.isEmpty, 0.06 * height <= size, size <= 0.35 * height else { return false }
        let ratio = Double(speck.width) / Double(max(speck.height, 1))
        guard 0.4 <= ratio, ratio <= 2.5 else { return false }
        let baseline = median(digits.map { Double($0.bottom) })
        let centre = Double(speck.left + speck.right) / 2
        return digits.contains { $0.right <= speck.left } && digits.contains { $0.left >= speck.right }
            && Double(speck.bottom) >= baseline - 0.3 * height && Double(speck.top) >= baseline - 0.6 * height
            && !digits.contains { Double($0.left) < centre && centre < Double($0.right) }
    }

    /// Which neighbouring pieces make one digit: of every way to join up to `maxParts` neighbours (close
    /// together, no wider than `joinedWidth` line heights), the one whose digits the model is surest of,
    /// each digit of at least `low` line heights weighing `digitBonus` more, so two digits read surely are
    /// not joined into one read as surely (a lower part, a 5's flag say, is weighed as it reads).
    static func bestSegmentation(_ reader: PieceReader, _ units: [Piece]) -> [Piece] {
        var keys: [Span] = []
        var candidates: [Span: Piece] = [:]
        for i in units.indices {
            var joined = units[i]
            keys.append(Span(i, i + 1)); candidates[Span(i, i + 1)] = joined
            for j in (i + 1)..<min(i + maxParts, units.count) {
                if !Set(units[j].labels).isDisjoint(with: joined.labels) { break }  // halves of one cut piece
                if Double(units[j].left - joined.right) > joinGap * reader.lineHeight { break }
                joined = joined.joined(units[j])
                if Double(joined.width) > joinedWidth * reader.lineHeight { break }
                keys.append(Span(i, j + 1)); candidates[Span(i, j + 1)] = joined
            }
        }
        var sure: [Span: Double] = [:]
        for (key, value) in zip(keys, reader.sureness(keys.map { candidates[$0]! })) where value != nil {
            sure[key] = value! + (Double(candidates[key]!.height) >= low * reader.lineHeight ? digitBonus : 0)
        }
        guard !sure.isEmpty else { return [] }
        var best = [0.0] + [Double](repeating: -.infinity, count: units.count)
        var came = [Int](repeating: 0, count: units.count + 1)
        for end in stride(from: 1, through: units.count, by: 1) {
            for start in max(0, end - maxParts)..<end {
                if let score = sure[Span(start, end)], best[start] + score > best[end] {
                    best[end] = best[start] + score
                    came[end] = start
                }
            }
        }
        var chosen: [Piece] = []
        var end = units.count
        while end > 0 {
            let start = came[end]
            var piece = candidates[Span(start, end)]!
            let apart = (start..<end).map { sure[Span($0, $0 + 1)] }
            if end - start > 1, !apart.contains(where: { $0 == nil }),
               sure[Span(start, end)]! - apart.reduce(0, { $0 + $1! }) < joinDoubt {
                piece.guess = true  // the parts read nearly as well as separate digits
            }
            chosen.append(piece)
            end = start
        }
        return chosen.reversed()
    }

    /// The model's answer for each digit, and the points, left to right. A digit whose edge was a
    /// guess is never "sure", however sure the model is of its shape; nor is a digit far lower than the
    /// line's others, which may be a piece of one, nor one under `sureDigit`: a number is right only
    /// when all of its digits are, nor a 1 `tall` times as high as the other digits (a form's wall whose
    /// lines a scan broke). A point among specks (`speckled`) is "not sure": it may be one of them.
    static func answers(_ reader: PieceReader, digits: [Piece], points: [Piece], labels: [String],
                        scale: (Double, Double), speckled: Bool) -> [Digit] {
        func box(_ top: Int, _ bottom: Int, _ left: Int, _ right: Int) -> Box {
            func round(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }
            return Box(x: round(Double(left) * scale.0), y: round(Double(top) * scale.1),
                       width: max(1, round(Double(right - left) * scale.0)), height: max(1, round(Double(bottom - top) * scale.1)))
        }
        var out: [(left: Int, digit: Digit)] = []
        for (piece, read) in zip(digits, reader.read(digits)) {
            guard let (seen, probabilities) = read else { continue }
            let rows = reader.rows(of: piece)
            let confidence = probabilities.max() ?? 0
            let order = probabilities.firstIndex(of: confidence) ?? 0  // the first of equals, as NumPy's stable sort
            var verdict = Verdict(confidence: confidence).rawValue
            let isLow = Double(rows.count) < low * reader.lineHeight
            if (piece.guess || isLow || Double(confidence) < sureDigit) && verdict == "sure" { verdict = "not sure" }
            out.append((piece.left, Digit(label: labels[order], confidence: confidence, verdict: verdict,
                                          box: box(piece.top + rows.lowerBound, piece.top + rows.upperBound, piece.left, piece.right),
                                          probabilities: probabilities, input: seen)))
        }
        let others = out.filter { $0.digit.label != "1" }.map { Double($0.digit.box.height) }
        out = out.map { left, digit in  // a 1 far taller than the other digits may be a form's wall left standing
            guard !others.isEmpty, digit.label == "1", digit.verdict == "sure",
                  Double(digit.box.height) > tall * median(others) else { return (left, digit) }
            return (left, Digit(label: digit.label, confidence: digit.confidence, verdict: "not sure", box: digit.box,
                                probabilities: digit.probabilities, input: digit.input))
        }
        for p in points {
            out.append((p.left, Digit(label: point, confidence: 1, verdict: speckled ? "not sure" : "point",
                                      box: box(p.top, p.bottom, p.left, p.right),
                                      probabilities: nil, input: nil)))
        }
        return stableSorted(out) { Double($0.left) }.map(\.digit)
    }

    struct Span: Hashable {
        let start: Int, end: Int
        init(_ start: Int, _ end: Int) { self.start = start; self.end = end }
    }
}

/// A piece of a line: the connected components it is made of, and its box (bottom and right exclusive).
struct Piece {
    var labels: [Int]
    var top: Int, bottom: Int, left: Int, right: Int
    var guess = false  // where this digit ends is a guess: a cut through touching ink, or a close call

    var width: Int { right - left }
    var height: Int { bottom - top }

    func joined(_ other: Piece) -> Piece {
        Piece(labels: labels + other.labels, top: min(top, other.top), bottom: max(bottom, other.bottom),
              left: min(left, other.left), right: max(right, other.right), guess: guess || other.guess)
    }

    struct Key: Hashable {
        let labels: [Int], top: Int, bottom: Int, left: Int, right: Int
    }

    var key: Key { Key(labels: labels, top: top, bottom: bottom, left: left, right: right) }
}
