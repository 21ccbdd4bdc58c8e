import Foundation

/// The digits of one line, read with the model (Python's `numbers._Reader`). The segmentation asks
/// about the same pieces more than once (a cut's halves, then the joins, then the answer): each is
/// fitted and classified once, and the new ones of a question in one batch.
final class PieceReader {
    typealias Plane = DigitNormalizer.Plane

    let ink: Plane
    let labels: [Int]
    let lineHeight: Double
    let classify: NumberReader.Classify
    private var known: [Piece.Key: (input: [UInt8], probabilities: [Float])?] = [:]

    init(ink: Plane, labels: [Int], lineHeight: Double, classify: @escaping NumberReader.Classify) {
        self.ink = ink
        self.labels = labels
        self.lineHeight = lineHeight
        self.classify = classify
    }

    /// The piece's own ink (not its neighbours'), within its box, cropped to its ink; nil if none.
    func crop(_ piece: Piece) -> Plane? {
        let own = Set(piece.labels)
        var window = Plane(width: piece.width, height: piece.height, pixels: [])
        window.pixels.reserveCapacity(piece.width * piece.height)
        for y in piece.top..<piece.bottom {
            for x in piece.left..<piece.right {
                window.pixels.append(own.contains(labels[y * ink.width + x]) ? ink[y, x] : 0)
            }
        }
        guard window.pixels.contains(where: { $0 != 0 }) else { return nil }
        return DigitNormalizer.crop(window)
    }

    /// The rows of the piece's box that hold its own ink (for the box the user sees).
    func rows(of piece: Piece) -> Range<Int> {
        let own = Set(piece.labels)
        let inked = (0..<piece.height).filter { y in
            (piece.left..<piece.right).contains { own.contains(labels[(piece.top + y) * ink.width + $0]) }
        }
        return (inked.first ?? 0)..<((inked.last ?? -1) + 1)
    }

    /// Each piece's 28×28 input and probabilities (nil: nothing to see in it).
    func read(_ pieces: [Piece]) -> [(input: [UInt8], probabilities: [Float])?] {
        var newKeys: [Piece.Key] = []
        var inputs: [[UInt8]] = []
        for piece in pieces where known[piece.key] == nil && !newKeys.contains(piece.key) {
            if let plane = crop(piece), let input = DigitNormalizer.fit(plane) {
                newKeys.append(piece.key)
                inputs.append(input)
            } else {
                known[piece.key] = .some(nil)
            }
        }
        if !inputs.isEmpty {
            for (key, (input, probabilities)) in zip(newKeys, zip(inputs, classify(inputs))) {
                known[key] = (input, probabilities)
            }
        }
        return pieces.map { known[$0.key] ?? nil }
    }

    /// The log of the model's top probability for each piece (nil: nothing to see in it).
    func sureness(_ pieces: [Piece]) -> [Double?] {
        read(pieces).map { read in read.map { log(max(Double($0.probabilities.max() ?? 0), 1e-6)) } }
    }

    /// The piece as one digit, or cut into two (or more) where the model is surest of both halves:
    /// cut when the halves read surer than the whole (their geometric mean; a piece narrower than `wide`
    /// line heights only into halves read as sure digits), always when it is too wide for one digit; a
    /// whole that two digits would read nearly as well is marked a guess.
    func split(_ piece: Piece, depth: Int = 0) -> [Piece] {
        guard Double(piece.width) >= NumberReader.splitFrom * lineHeight, depth < 3 else { return [piece] }
        let own = Set(piece.labels)
        var profile = [Float](repeating: 0, count: piece.width)
        for y in piece.top..<piece.bottom {  // row by row in Float, as NumPy sums a column
            for x in piece.left..<piece.right {
                profile[x - piece.left] += own.contains(labels[y * ink.width + x]) ? ink[y, x] : 0
            }
        }
        let lo = Int(0.25 * Double(piece.width)), hi = Int(0.75 * Double(piece.width))
        guard hi - lo >= 2 else { return [piece] }
        // The faintest columns (of the 12 faintest, ties by position), no two side by side, left to right.
        var faintest: [Int] = []
        for column in (lo..<hi).sorted(by: { profile[$0] != profile[$1] ? profile[$0] < profile[$1] : $0 < $1 }).prefix(12)
        where faintest.allSatisfy({ abs(column - $0) > 1 }) {
            faintest.append(column)
        }
        let cuts = faintest.prefix(NumberReader.cuts).sorted()
        let halves = cuts.map { cut in
            (Piece(labels: piece.labels, top: piece.top, bottom: piece.bottom, left: piece.left, right: piece.left + cut, guess: true),
             Piece(labels: piece.labels, top: piece.top, bottom: piece.bottom, left: piece.left + cut, right: piece.right, guess: true))
        }
        let sure = sureness([piece] + halves.flatMap { [$0.0, $0.1] })
        var best: (score: Double, pair: (Piece, Piece))?
        for (i, pair) in halves.enumerated() {
            guard let left = sure[1 + 2 * i], let right = sure[2 + 2 * i] else { continue }
            let score = (left + right) / 2
            if best == nil || score > best!.score { best = (score, pair) }
        }
        guard let whole = sure[0], let best else { return [piece] }
        // narrower than a digit (a broken stroke, two narrow digits touching): cut only into sure digits
        let narrow = Double(piece.width) < NumberReader.wide * lineHeight
        if Double(piece.width) < NumberReader.mustSplit * lineHeight
            && (best.score <= whole || (narrow && best.score < log(NumberReader.sureDigit))) {
            var kept = piece
            // wider than a digit, and two digits would read nearly as well
            kept.guess = best.score > whole - NumberReader.joinDoubt && !narrow
            return [kept]
        }
        return split(best.pair.0, depth: depth + 1) + split(best.pair.1, depth: depth + 1)
    }
}
