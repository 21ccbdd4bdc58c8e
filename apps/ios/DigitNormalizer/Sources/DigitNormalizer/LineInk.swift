import Foundation

/// The ink of a line of handwriting, as Python's `predict.numbers.line_ink` finds it: either polarity
/// or a transparent canvas, the paper's uneven light flattened (a shadow is not ink), printed lines
/// (ruled paper, a form's boxes) removed, and the ink's pieces with 8-connectivity. Written by hand on arrays because there is no
/// image library on Linux; each filter follows SciPy's `ndimage` (its boundary rule and its order of
/// float operations) so that both readers see the same pixels.
enum LineInk {
    typealias Plane = DigitNormalizer.Plane

    static let sheet = 0.1  // "light ink" too thick for a pen over this share of a dark image is a sheet of paper on a desk
    static let desk = 0.6  // darker than this share of the paper's level, a thick region along the border is not the sheet
    static let writing = 0.25  // darker than its own level by this share of the paper's, a pixel in the "desk" is writing: a shadow
    static let tiltSteps = 20  // printed lines are looked for turned up to this many half-degree steps each way (±10°)
    static let tilted = 1.2  // a row profile this much sharper at an angle than level: the lines are turned, and sheared straight

    /// Ink 0...1 per pixel, or nil when the image is blank.
    static func ink(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]?) -> Plane? {
        var (ink, polarity) = DigitNormalizer.inkMapAndPolarity(grey: grey, width: width, height: height, alpha: alpha)
        let window = flatteningWindow(width: width, height: height)
        let size = (window / 4) | 1  // thicker than a pen line
        var dark: [Bool]? = nil  // where a photo may show the desk under the sheet
        if polarity == .lightOnDark, let top = ink.pixels.max(), top > 0 {
            // Over half as light as the lightest is paper on a desk of any darkness; thick as no pen
            // writes, over a tenth of the image, it is a sheet, not light writing.
            let half = 0.5 * strongest(ink.pixels.filter { $0 > 0 })
            let light = ink.pixels.map { $0 > half }
            let thick = opened(light, width: width, height: height, rows: window, columns: window)
            if Double(thick.reduce(0) { $1 ? $0 + 1 : $0 }) / Double(max(thick.count, 1)) > sheet {
                polarity = .darkOnLight
                dark = opened(light.map { !$0 }, width: width, height: height, rows: size, columns: size)
            }
        }
        if polarity == .darkOnLight && min(width, height) >= 16 {
            ink.pixels = flattened(grey: grey, width: width, height: height)
            let level = paper(grey)
            let candidate = dark ?? farDarkerThanPaper(grey: grey, paper: level, width: width, height: height, size: size)
            if let candidate, let around = desk(grey: grey, paper: level, dark: candidate, width: width, height: height,
                                                grow: size) {
                for i in ink.pixels.indices where around[i] { ink.pixels[i] = 0 }
            }
        }
        guard let top = ink.pixels.max(), top >= Float(0.1) else { return nil }
        let strong = strongest(ink.pixels.filter { $0 > 0 })
        let floor = DigitNormalizer.noiseFraction * strong
        let scale = max(strong, Float(1e-6))
        ink.pixels = ink.pixels.map { $0 >= floor ? min($0 / scale, 1) : 0 }
        let lines = printedLines(ink.pixels.map { $0 > 0 }, width: width, height: height)
        for i in ink.pixels.indices where lines[i] { ink.pixels[i] = 0 }
        return ink
    }

    /// The nearest-rank 99.5th percentile of the inked pixels (Python's `_strong`).
    static func strongest(_ values: [Float]) -> Float {
        let rank = Int(0.995 * Double(values.count - 1))
        return values.sorted()[rank]
    }

    // MARK: Flattening the paper's light

    /// Index `i` of a line of `n` mirrored at its ends as SciPy's "reflect" mode does (d c b a | a b c d).
    static func reflect(_ i: Int, _ n: Int) -> Int {
        i < 0 ? -i - 1 : (i >= n ? 2 * n - i - 1 : i)
    }

    /// Applies `filter` to every column, then to every row (SciPy's order of axes).
    static func separable(_ pixels: [Float], width: Int, height: Int, _ filter: ([Float]) -> [Float]) -> [Float] {
        var out = pixels
        for x in 0..<width {
            let column = filter((0..<height).map { out[$0 * width + x] })
            for y in 0..<height { out[y * width + x] = column[y] }
        }
        for y in 0..<height {
            out.replaceSubrange(y * width..<(y + 1) * width, with: filter(Array(out[y * width..<(y + 1) * width])))
        }
        return out
    }

    /// SciPy's `uniform_filter1d(size=3)`: a running sum in Double, divided as each value is written.
    static func mean3(_ line: [Float]) -> [Float] {
        let n = line.count
        func at(_ i: Int) -> Double { Double(line[reflect(i, n)]) }
        var sum = at(-1) + at(0) + at(1)
        var out = [Float](repeating: 0, count: n)
        out[0] = Float(sum / 3)
        for i in 1..<max(n, 1) {
            sum += at(i + 1) - at(i - 2)
            out[i] = Float(sum / 3)
        }
        return out
    }

    /// The largest (or smallest) value within `size / 2` of each position, mirrored at the ends.
    static func extreme(_ line: [Float], size: Int, largest: Bool) -> [Float] {
        let n = line.count, half = size / 2
        return (0..<n).map { i in
            var best = line[reflect(i - half, n)]
            for k in (i - half + 1)...(i + half) {
                let v = line[reflect(k, n)]
                if largest ? v > best : v < best { best = v }
            }
            return best
        }
    }

    /// Dark ink relative to the paper around it (Python's `_flattened`): the paper's level is a grey
    /// closing of the lightly smoothed image, and ink is how much darker a pixel is, as a share of it.
    static func flattened(grey: [UInt8], width: Int, height: Int) -> [Float] {
        let level = grey.map { Float($0) }
        let window = flatteningWindow(width: width, height: height)
        let smooth = separable(level, width: width, height: height, mean3)
        let dilated = separable(smooth, width: width, height: height) { extreme($0, size: window, largest: true) }
        let paper = separable(dilated, width: width, height: height) { extreme($0, size: window, largest: false) }
        return zip(paper, level).map { p, g in min(max((p - g) / max(p, 32), 0), 1) }
    }

    // MARK: A sheet on a desk

    /// The flattening's window: a sixth of the image's shorter side (odd, at least 9).
    static func flatteningWindow(width: Int, height: Int) -> Int {
        max(9, (min(width, height) / 6) | 1)
    }

    /// The indices of the image's border pixels, each once (Python's `_edge`).
    static func edge(width: Int, height: Int) -> [Int] {
        let rows = (0..<width).flatMap { [$0, (height - 1) * width + $0] }
        return rows + (1..<max(height - 1, 1)).flatMap { [$0 * width, $0 * width + width - 1] }
    }

    /// The paper's grey level: the nearest-rank 90th percentile (Python's `_paper`).
    static func paper(_ grey: [UInt8]) -> UInt8 {
        grey.sorted()[Int(0.9 * Double(grey.count - 1))]
    }

    /// Where a photo of paper may show the surface under the sheet (Python's `_far_darker_than_paper`):
    /// regions under `desk` of the paper's level and thicker than a pen line, when they run along at
    /// least a quarter of the border. Nil when the photo shows only paper.
    static func farDarkerThanPaper(grey: [UInt8], paper: UInt8, width: Int, height: Int, size: Int) -> [Bool]? {
        let thick = opened(grey.map { Double($0) < desk * Double(paper) }, width: width, height: height, rows: size, columns: size)
        let border = edge(width: width, height: height)
        return Double(border.filter { thick[$0] }.count) / Double(border.count) >= 0.25 ? thick : nil
    }

    /// The desk under a photographed sheet (Python's `_desk`): the regions of `dark` that reach the
    /// border, grown by `grow` over the sheet's blurred edge; nil when there are none or when they
    /// hold writing (a deep shadow over the paper, not a desk).
    static func desk(grey: [UInt8], paper: UInt8, dark: [Bool], width: Int, height: Int, grow: Int) -> [Bool]? {
        let regions = components(dark, width: width, height: height).labels
        let atBorder = Set(edge(width: width, height: height).map { regions[$0] }).subtracting([0])
        let inDesk = regions.map { atBorder.contains($0) }
        let values = grey.indices.filter { inDesk[$0] }.map { grey[$0] }
        guard !values.isEmpty else { return nil }
        let level = values.sorted()[(values.count - 1) / 2]
        let writing = Double(level) - self.writing * Double(paper)
        guard Double(values.filter { Double($0) < writing }.count) <= 0.01 * Double(values.count) else { return nil }
        return spread(inDesk, width: width, height: height, rows: grow, columns: grow, erode: false)
    }

    // MARK: Printed lines

    /// Binary erosion (all of the window) or dilation (any of it) by a centred run of `size` pixels,
    /// outside the image counting as no ink, as SciPy's defaults do.
    static func morph(_ line: [Bool], size: Int, erode: Bool) -> [Bool] {
        let n = line.count, half = size / 2
        var prefix = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + (line[i] ? 1 : 0) }
        return (0..<n).map { i in
            let lo = i - half, hi = i + half
            if erode { return lo >= 0 && hi < n && prefix[hi + 1] - prefix[lo] == size }
            return prefix[min(hi, n - 1) + 1] - prefix[max(lo, 0)] > 0
        }
    }

    /// Erosion (or dilation) of a mask by a `rows` × `columns` rectangle: a column pass, then a row pass.
    static func spread(_ plane: [Bool], width: Int, height: Int, rows: Int, columns: Int, erode: Bool) -> [Bool] {
        var out = plane
        if rows > 1 {
            for x in 0..<width {
                let column = morph((0..<height).map { out[$0 * width + x] }, size: rows, erode: erode)
                for y in 0..<height { out[y * width + x] = column[y] }
            }
        }
        if columns > 1 {
            for y in 0..<height {
                let row = morph(Array(out[y * width..<(y + 1) * width]), size: columns, erode: erode)
                out.replaceSubrange(y * width..<(y + 1) * width, with: row)
            }
        }
        return out
    }

    /// Opening (erosion, then dilation) of a mask by a `rows` × `columns` rectangle.
    static func opened(_ mask: [Bool], width: Int, height: Int, rows: Int, columns: Int) -> [Bool] {
        let eroded = spread(mask, width: width, height: height, rows: rows, columns: columns, erode: true)
        return spread(eroded, width: width, height: height, rows: rows, columns: columns, erode: false)
    }

    /// Closing (dilation, then erosion): gaps narrower than the rectangle filled.
    static func closed(_ mask: [Bool], width: Int, height: Int, rows: Int, columns: Int) -> [Bool] {
        let dilated = spread(mask, width: width, height: height, rows: rows, columns: columns, erode: false)
        return spread(dilated, width: width, height: height, rows: rows, columns: columns, erode: true)
    }

    /// Pixels of printed lines (Python's `_printed_lines`): ruled or squared paper's lines across nearly
    /// all of the image, and a form's lines around the writing (an underline, a box, a comb of boxes).
    /// A form's horizontal line is thin, straight and at least half again as long as the ink is high;
    /// its vertical lines meet its horizontal lines with both ends, or with one end and under half the
    /// ink's height (a comb's ticks). A thick bar is a stroke; where a stroke crosses a line or lies
    /// along it, the line's pixels there stay ink; the bits a jagged line leaves on it go with it.
    static func printedLines(_ mask: [Bool], width: Int, height: Int) -> [Bool] {
        let slope = tilt(mask, width: width)
        guard slope != 0 else { return straightLines(mask, width: width, height: height, wiggle: false) }
        let (rows, cols) = sheared(width: width, height: height, slope: slope)
        let shearedHeight = (rows.max() ?? 0) + 1, shearedWidth = (cols.max() ?? 0) + 1
        var straight = [Bool](repeating: false, count: shearedHeight * shearedWidth)
        for i in mask.indices { straight[rows[i] * shearedWidth + cols[i]] = mask[i] }
        let lines = straightLines(straight, width: shearedWidth, height: shearedHeight, wiggle: true)
        return mask.indices.map { lines[rows[$0] * shearedWidth + cols[$0]] }
    }

    /// The slope of the image's long lines (Python's `_tilt`): of the half-degree steps up to
    /// `tiltSteps` each way, the one whose row profile is sharpest, if `tilted` times the level one's.
    static func tilt(_ mask: [Bool], width: Int) -> Double {
        let inked = mask.indices.filter { mask[$0] }
        guard !inked.isEmpty else { return 0 }
        var best = -1, bestSlope = 0.0, level = 0
        for step in [0] + (1...tiltSteps).flatMap({ [-$0, $0] }) {
            let slope = tan(0.5 * Double(step) * (Double.pi / 180))
            let down = shifts(width, slope: slope)
            let rows = inked.map { $0 / width - down[$0 % width] }
            let low = rows.min() ?? 0
            var counts = [Int](repeating: 0, count: (rows.max() ?? 0) - low + 1)
            for row in rows { counts[row - low] += 1 }
            let score = counts.reduce(0) { $0 + $1 * $1 }
            if step == 0 { level = score }
            if score > best { (best, bestSlope) = (score, slope) }
        }
        return Double(best) >= tilted * Double(level) ? bestSlope : 0
    }

    /// Where each pixel goes when the image is sheared straight: each column moved up by its share of
    /// the slope, then each row along by its share; whole pixels, so the way back is exact.
    static func sheared(width: Int, height: Int, slope: Double) -> (rows: [Int], cols: [Int]) {
        let down = shifts(width, slope: slope)
        let lift = down.max() ?? 0
        let rows = (0..<(width * height)).map { $0 / width - down[$0 % width] + lift }
        let along = shifts((rows.max() ?? 0) + 1, slope: slope)
        let cols = rows.indices.map { $0 % width + along[rows[$0]] }
        let first = cols.min() ?? 0
        return (rows, cols.map { $0 - first })
    }

    /// How far the slope moves each of `count` columns (or rows), to the nearest whole pixel.
    static func shifts(_ count: Int, slope: Double) -> [Int] {
        (0..<count).map { Int((Double($0) * slope + 0.5).rounded(.down)) }
    }

    /// `printedLines` along the rows and columns; `wiggle`: a line may step by a row (or a column)
    /// on its way, as a sheared one does.
    static func straightLines(_ mask: [Bool], width: Int, height: Int, wiggle: Bool) -> [Bool] {
        let tall = inkHeight(mask, width: width)
        let thickest = max(5, (tall / 10) | 1)
        let step = wiggle ? 3 : 1
        var across = zip(opened(spread(mask, width: width, height: height, rows: step, columns: 1, erode: false),
                                width: width, height: height, rows: 1,
                                columns: max(9, min(width * 9 / 10, 3 * tall / 2)) | 1), mask).map { $0 && $1 }
        var down = zip(opened(spread(mask, width: width, height: height, rows: 1, columns: step, erode: false),
                              width: width, height: height, rows: max(9, height * 9 / 10) | 1, columns: 1), mask).map { $0 && $1 }
        let thick = opened(zip(across, down).map { $0 || $1 }, width: width, height: height, rows: thickest, columns: thickest)
        across = zip(across, thick).map { $0 && !$1 }
        down = zip(down, thick).map { $0 && !$1 }
        let walls = formWalls(mask.indices.map { mask[$0] && !thick[$0] && !across[$0] }, across: across,
                              width: width, height: height, tall: tall, wiggle: wiggle)
        down = zip(down, walls).map { $0 || $1 }
        let rest = mask.indices.map { mask[$0] && !across[$0] && !down[$0] }
        let bridgedAcross = closed(rest, width: width, height: height, rows: 5, columns: 1)
        let bridgedDown = closed(rest, width: width, height: height, rows: 1, columns: 5)
        let thin = thickness(across, width: width, height: height, down: true)
        let alongAcross = along(across, inked: mask.indices.map { mask[$0] && !down[$0] }, width: width, height: height,
                                down: true, thickness: thin)
        let alongDown = along(down, inked: mask.indices.map { mask[$0] && !across[$0] }, width: width, height: height,
                              down: false, thickness: thickness(down, width: width, height: height, down: false))
        let lines = mask.indices.map { i in
            (across[i] || down[i]) && !((bridgedAcross[i] && across[i]) || (bridgedDown[i] && down[i]))
                && !alongAcross[i] && !alongDown[i]
        }
        let bits = debris(mask.indices.map { mask[$0] && !lines[$0] }, lines: lines, width: width, height: height,
                          flat: 2 * thin + 3)
        return zip(lines, bits).map { $0 || $1 }
    }

    /// How high the writing is: the rows from the 1st to the 99th percentile of its inked pixels
    /// (nearest rank), so that a scanner's specks above and below do not count.
    static func inkHeight(_ mask: [Bool], width: Int) -> Int {
        let rows = mask.indices.filter { mask[$0] }.map { $0 / width }
        guard !rows.isEmpty else { return 0 }
        return rows[(rows.count - 1) * 99 / 100] - rows[(rows.count - 1) / 100] + 1
    }

    /// A form's vertical lines: thin straight vertical runs at least a quarter of the ink's height,
    /// each meeting a horizontal line with both ends, or with one end and under half the ink's
    /// height; two at least.
    static func formWalls(_ inked: [Bool], across: [Bool], width: Int, height: Int, tall: Int, wiggle: Bool) -> [Bool] {
        var walls = [Bool](repeating: false, count: inked.count)
        guard across.contains(true) else { return walls }
        let base = spread(inked, width: width, height: height, rows: 1, columns: wiggle ? 3 : 1, erode: false)
        let runs = zip(opened(base, width: width, height: height, rows: max(5, tall / 4) | 1, columns: 1), inked).map { $0 && $1 }
        let reach = wiggle ? 5 : 3
        let near = spread(across, width: width, height: height, rows: reach, columns: reach, erode: false)
        let (labels, boxes) = components(runs, width: width, height: height)
        var found = Set<Int>()
        for (index, box) in boxes.enumerated() {
            let top = (box.left..<box.right).contains { near[box.top * width + $0] }
            let bottom = (box.left..<box.right).contains { near[(box.bottom - 1) * width + $0] }
            if (top && bottom) || ((top || bottom) && Double(box.bottom - box.top) < Double(tall) / 2) {
                found.insert(index + 1)
            }
        }
        if found.count >= 2 {
            walls = labels.map { found.contains($0) }
        }
        return walls
    }

    /// A stroke lying along a line: where the ink is over twice as thick as the line (`thickness`),
    /// for over twice that length (`down`: the lines run across, their thickness is measured down the columns).
    static func along(_ lines: [Bool], inked: [Bool], width: Int, height: Int, down: Bool, thickness: Int) -> [Bool] {
        guard lines.contains(true) else { return lines }
        let size = 2 * thickness + 3
        let thicker = zip(lines, opened(inked, width: width, height: height, rows: down ? size : 1,
                                        columns: down ? 1 : size)).map { $0 && $1 }
        return opened(thicker, width: width, height: height, rows: down ? 1 : size, columns: down ? size : 1)
    }

    /// The lines' thickness: the median length (nearest rank) of their runs of pixels down the columns
    /// (`down`) or along the rows.
    static func thickness(_ lines: [Bool], width: Int, height: Int, down: Bool) -> Int {
        var lengths: [Int] = []
        for outer in 0..<(down ? width : height) {
            var run = 0
            for inner in 0..<(down ? height : width) {
                if lines[down ? inner * width + outer : outer * width + inner] {
                    run += 1
                } else if run > 0 {
                    lengths.append(run)
                    run = 0
                }
            }
            if run > 0 { lengths.append(run) }
        }
        guard !lengths.isEmpty else { return 0 }
        return lengths.sorted()[(lengths.count - 1) / 2]
    }

    /// What a jagged line leaves where it is taken away: bits of ink no higher than `flat` that touch
    /// a line's pixels.
    static func debris(_ rest: [Bool], lines: [Bool], width: Int, height: Int, flat: Int) -> [Bool] {
        var bits = [Bool](repeating: false, count: rest.count)
        guard lines.contains(true) else { return bits }
        let near = spread(lines, width: width, height: height, rows: 3, columns: 3, erode: false)
        let (labels, boxes) = components(rest, width: width, height: height)
        for (index, box) in boxes.enumerated() where box.bottom - box.top <= flat {
            let pixels = (box.top..<box.bottom).flatMap { y in (box.left..<box.right).map { y * width + $0 } }
                .filter { labels[$0] == index + 1 }
            if pixels.contains(where: { near[$0] }) {
                for i in pixels { bits[i] = true }
            }
        }
        return bits
    }

    // MARK: Pieces

    /// 8-connected components of the mask, numbered from 1 in the order a raster scan first meets
    /// them (as SciPy's `label` numbers them), with each one's bounding box.
    static func components(_ mask: [Bool], width: Int, height: Int) -> (labels: [Int], boxes: [(top: Int, bottom: Int, left: Int, right: Int)]) {
        var labels = [Int](repeating: 0, count: mask.count)
        var boxes: [(top: Int, bottom: Int, left: Int, right: Int)] = []
        for start in mask.indices where mask[start] && labels[start] == 0 {
            let label = boxes.count + 1
            var box = (top: start / width, bottom: start / width + 1, left: start % width, right: start % width + 1)
            var stack = [start]
            labels[start] = label
            while let index = stack.popLast() {
                let y = index / width, x = index % width
                box = (min(box.top, y), max(box.bottom, y + 1), min(box.left, x), max(box.right, x + 1))
                for dy in -1...1 {
                    for dx in -1...1 where dy != 0 || dx != 0 {
                        let ny = y + dy, nx = x + dx
                        guard ny >= 0, ny < height, nx >= 0, nx < width else { continue }
                        let next = ny * width + nx
                        if mask[next] && labels[next] == 0 {
                            labels[next] = label
                            stack.append(next)
                        }
                    }
                }
            }
            boxes.append(box)
        }
        return (labels, boxes)
    }
}
