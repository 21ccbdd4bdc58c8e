import Foundation

/// Swift port of digitkit's normalisation (src/digitkit/data/normalize.py, docs/preprocessing.md):
/// any grey image of one digit → the 28×28, white-on-black, MNIST-style input of the model.
/// Pure Swift on arrays, so it behaves the same on every platform; step numbers follow the doc.
/// Pixels are Float as Python's are float32; every decision Python takes in float64 (speck sizes,
/// the thickening rule, the centre of mass) is taken here in Double, in the same order.
public enum DigitNormalizer {
    public static let field = 28
    public static let box = 20
    public static let noiseFraction: Float = 0.25
    public static let speckFraction: Double = 0.05
    /// px: a digit smaller than the box is enlarged to at least this before it is fitted.
    public static let enlarged = 64
    /// px a side at most: a dataset's or a form processor's digit (16-32 px), not a photo of paper.
    public static let datasetSize = 32
    public static let minContrast: Float = 0.1
    public static let targetStroke: Double = 0.12
    public static let thinStroke: Double = 0.6

    /// A row-major float image.
    struct Plane {
        var width: Int
        var height: Int
        var pixels: [Float]

        subscript(y: Int, x: Int) -> Float {
            get { pixels[y * width + x] }
            set { pixels[y * width + x] = newValue }
        }
    }

    /// Returns 28×28 grey levels (0...255), or nil when the image holds no digit.
    /// `alpha`, when given, is one byte per pixel (255 = opaque).
    public static func normalize(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]? = nil) -> [UInt8]? {
        var ink = inkMap(grey: grey, width: width, height: height, alpha: alpha)  // 1, 2
        guard let strongest = ink.pixels.max(), strongest >= minContrast else { return nil }  // 3
        ink = clean(ink, strongest: strongest)  // 4, 5
        return fit(enlarge(ink))
    }

    /// Python's `enlarge`: a digit smaller than the 20 px box (a dataset's 16 px bitmap) enlarged by a
    /// whole factor to at least `enlarged` px, each pixel a square, so that the fit shrinks it to 20 px.
    static func enlarge(_ ink: Plane) -> Plane {
        let longer = max(ink.width, ink.height)
        guard longer > 0, longer < box else { return ink }
        let factor = (enlarged + longer - 1) / longer
        var out = Plane(width: ink.width * factor, height: ink.height * factor,
                        pixels: [Float](repeating: 0, count: ink.width * factor * ink.height * factor))
        for y in 0..<out.height {
            for x in 0..<out.width {
                out[y, x] = ink[y / factor, x / factor]
            }
        }
        return out
    }

    /// Steps 6-8 (Python's `fit_digit`): one piece of ink, cropped to its box, as MNIST draws a digit;
    /// nil when nothing is left to see at 20 px.
    static func fit(_ ink: Plane) -> [UInt8]? {
        guard let small = scale(thicken(ink)) else { return nil }  // 6, 7
        return centre(small)  // 8
    }

    /// The same from 8-bit RGBA pixels (4 bytes per pixel): grey is Pillow's ITU-R 601 luma, and the
    /// alpha counts only when some pixel is not opaque.
    public static func normalize(rgba: [UInt8], width: Int, height: Int) -> [UInt8]? {
        let (grey, alpha) = greyAndAlpha(rgba: rgba, count: width * height)
        return normalize(grey: grey, width: width, height: height, alpha: alpha)
    }

    /// Luma and alpha of 8-bit RGBA pixels.
    static func greyAndAlpha(rgba: [UInt8], count: Int) -> (grey: [UInt8], alpha: [UInt8]) {
        var grey = [UInt8](repeating: 0, count: count)
        var alpha = [UInt8](repeating: 255, count: count)
        for i in 0..<count {
            grey[i] = luma(Int(rgba[4 * i]), Int(rgba[4 * i + 1]), Int(rgba[4 * i + 2]))
            alpha[i] = rgba[4 * i + 3]
        }
        return (grey, alpha)
    }

    /// Pillow's RGB → L conversion (ITU-R 601 luma, 16-bit fixed point, rounded).
    public static func luma(_ r: Int, _ g: Int, _ b: Int) -> UInt8 {
        UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
    }

    // MARK: 2. Ink map

    static func lowerMedian(_ values: [UInt8]) -> Int {
        var counts = [Int](repeating: 0, count: 256)
        for v in values { counts[Int(v)] += 1 }
        let rank = (values.count - 1) / 2
        var seen = 0
        for level in 0..<256 {
            seen += counts[level]
            if seen > rank { return level }
        }
        return 255
    }

    /// A bitmap of ink and ground (a scan binarised, a dataset's digit): a wide range of grey with
    /// at most a tenth of the pixels in its middle half.
    static func twoLevel(_ grey: [UInt8]) -> Bool {
        guard let low = grey.min().map(Int.init), let high = grey.max().map(Int.init), high - low >= 128 else { return false }
        let quarter = (high - low) / 4
        let middle = grey.reduce(0) { $0 + (Int($1) > low + quarter && Int($1) < high - quarter ? 1 : 0) }
        return middle <= grey.count / 10
    }

    /// The image's outermost pixels, each once.
    static func edgePixels(_ grey: [UInt8], width: Int, height: Int) -> [UInt8] {
        var edge = Array(grey[0..<width]) + Array(grey[(height - 1) * width..<height * width])
        for y in 1..<(height - 1) {
            edge.append(grey[y * width])
            edge.append(grey[y * width + width - 1])
        }
        return edge
    }

    /// Which way the ink was found: the alpha of a transparent canvas, or dark or light on its background.
    enum Polarity { case alpha, darkOnLight, lightOnDark }

    static func inkMap(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]?) -> Plane {
        inkMapAndPolarity(grey: grey, width: width, height: height, alpha: alpha).ink
    }

    static func inkMapAndPolarity(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]?) -> (ink: Plane, polarity: Polarity) {
        var grey = grey
        if let alpha, alpha.contains(where: { $0 < 255 }) {
            let opaque = alpha.map { $0 > 127 }
            let opaqueCount = opaque.filter { $0 }.count
            if Float(opaqueCount) < 0.5 * Float(alpha.count) {
                return (Plane(width: width, height: height, pixels: alpha.map { Float($0) / 255 }), .alpha)
            }
            let background = UInt8(lowerMedian(zip(grey, opaque).filter { $0.1 }.map { $0.0 }))
            grey = zip(grey, opaque).map { $0.1 ? $0.0 : background }
        }
        var background = Float(lowerMedian(grey))
        if min(width, height) >= 3 {
            // Ink over half the image (a digit stretched to fill a tight box, a thick pen) makes the
            // median the ink's level; the ground along most of the image's edge says which is which.
            // Dark ground on the edge of a light majority is trusted in two-level bitmaps and in images
            // as small as a dataset's digits alone: in a photo it is the desk round a sheet of paper.
            let edge = Float(lowerMedian(edgePixels(grey, width: width, height: height)))
            if (background >= 128) != (edge >= 128)
                && (background < 128 || twoLevel(grey) || max(width, height) <= datasetSize) {
                background = edge
            }
        }
        let darkOnLight = background >= 128
        let pixels = grey.map { value -> Float in
            let ink = darkOnLight ? (background - Float(value)) / 255 : (Float(value) - background) / 255
            return min(max(ink, 0), 1)
        }
        return (Plane(width: width, height: height, pixels: pixels), darkOnLight ? .darkOnLight : .lightOnDark)
    }

    // MARK: 4-5. Clean and crop

    static func crop(_ plane: Plane) -> Plane {
        var top = plane.height, bottom = -1, left = plane.width, right = -1
        for y in 0..<plane.height {
            for x in 0..<plane.width where plane[y, x] > 0 {
                top = min(top, y); bottom = max(bottom, y); left = min(left, x); right = max(right, x)
            }
        }
        guard bottom >= top else { return plane }
        var out = Plane(width: right - left + 1, height: bottom - top + 1, pixels: [])
        out.pixels.reserveCapacity(out.width * out.height)
        for y in top...bottom { for x in left...right { out.pixels.append(plane[y, x]) } }
        return out
    }

    /// 4-connected components of the non-zero pixels: a label per pixel (0 = background), and sizes.
    static func components(_ plane: Plane) -> (labels: [Int], sizes: [Int]) {
        var labels = [Int](repeating: 0, count: plane.pixels.count)
        var sizes = [0]
        for start in plane.pixels.indices where plane.pixels[start] > 0 && labels[start] == 0 {
            let label = sizes.count
            var stack = [start]
            labels[start] = label
            var size = 0
            while let index = stack.popLast() {
                size += 1
                let y = index / plane.width, x = index % plane.width
                for (ny, nx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
                where ny >= 0 && ny < plane.height && nx >= 0 && nx < plane.width {
                    let next = ny * plane.width + nx
                    if plane.pixels[next] > 0 && labels[next] == 0 {
                        labels[next] = label
                        stack.append(next)
                    }
                }
            }
            sizes.append(size)
        }
        return (labels, sizes)
    }

    static func clean(_ ink: Plane, strongest: Float) -> Plane {
        var plane = ink
        plane.pixels = plane.pixels.map { $0 >= noiseFraction * strongest ? $0 : 0 }
        plane = crop(plane)
        var (labels, sizes) = components(plane)
        if sizes.count > 2 {
            let box = formBox(plane, labels: labels, count: sizes.count - 1)
            if !box.isEmpty {
                for i in plane.pixels.indices where box.contains(labels[i]) { plane.pixels[i] = 0 }
                plane = crop(plane)
                (labels, sizes) = components(plane)
            }
        }
        if sizes.count > 2, let largest = sizes.dropFirst().max() {
            for i in plane.pixels.indices where labels[i] > 0 && Double(sizes[labels[i]]) < speckFraction * Double(largest) {
                plane.pixels[i] = 0
            }
            plane = crop(plane)
        }
        return plane
    }

    /// The labels of a printed box drawn around the digit (a scanned form's cell), or [] if none: the
    /// groups of ink wholly within a margin m = max(2, min(h, w) / 8) of the crop's border, if they run
    /// along at least three sides over at least 3/5 of each, and other ink inside is at least 1/20 as
    /// much. Integers only, as in Python's `form_box`.
    static func formBox(_ plane: Plane, labels: [Int], count: Int) -> Set<Int> {
        let width = plane.width, height = plane.height
        guard min(width, height) >= 12 else { return [] }
        let m = max(2, min(width, height) / 8)
        func isInside(_ y: Int, _ x: Int) -> Bool { y >= m && y < height - m && x >= m && x < width - m }
        var touchesInside = Set<Int>()
        var insideInk = 0
        for y in 0..<height {
            for x in 0..<width where labels[y * width + x] > 0 && isInside(y, x) {
                touchesInside.insert(labels[y * width + x])
                insideInk += 1
            }
        }
        let frame = Set(1...count).subtracting(touchesInside)
        guard !frame.isEmpty else { return [] }
        func inFrame(_ y: Int, _ x: Int) -> Bool { frame.contains(labels[y * width + x]) }
        var frameInk = 0
        for i in labels.indices where frame.contains(labels[i]) { frameInk += 1 }
        var coveredTop = 0, coveredBottom = 0, coveredLeft = 0, coveredRight = 0
        for x in 0..<width {
            if (0..<m).contains(where: { inFrame($0, x) }) { coveredTop += 1 }
            if (0..<m).contains(where: { inFrame(height - 1 - $0, x) }) { coveredBottom += 1 }
        }
        for y in 0..<height {
            if (0..<m).contains(where: { inFrame(y, $0) }) { coveredLeft += 1 }
            if (0..<m).contains(where: { inFrame(y, width - 1 - $0) }) { coveredRight += 1 }
        }
        let sides = [5 * coveredTop >= 3 * width, 5 * coveredBottom >= 3 * width,
                     5 * coveredLeft >= 3 * height, 5 * coveredRight >= 3 * height].filter { $0 }.count
        guard sides >= 3, 20 * insideInk >= frameInk else { return [] }
        return frame
    }

    // MARK: 6. Thicken thin strokes

    /// The mask with pinholes closed: dilation then erosion by the 4-neighbour cross, outside = background.
    static func closed(_ mask: [Bool], width: Int, height: Int) -> [Bool] {
        let w = width + 2, h = height + 2
        var padded = [Bool](repeating: false, count: w * h)
        for y in 0..<height { for x in 0..<width { padded[(y + 1) * w + x + 1] = mask[y * width + x] } }
        func at(_ plane: [Bool], _ y: Int, _ x: Int) -> Bool {
            y >= 0 && y < h && x >= 0 && x < w && plane[y * w + x]
        }
        var dilated = padded
        for y in 0..<h {
            for x in 0..<w where !padded[y * w + x] {
                dilated[y * w + x] = at(padded, y - 1, x) || at(padded, y + 1, x) || at(padded, y, x - 1) || at(padded, y, x + 1)
            }
        }
        var out = mask
        for y in 0..<height {
            for x in 0..<width {
                let py = y + 1, px = x + 1
                let eroded = at(dilated, py, px) && at(dilated, py - 1, px) && at(dilated, py + 1, px)
                    && at(dilated, py, px - 1) && at(dilated, py, px + 1)
                out[y * width + x] = mask[y * width + x] || eroded
            }
        }
        return out
    }

    /// Ink pixels and boundary pixels of the non-zero mask, pinholes closed first.
    static func areaAndBoundary(_ plane: Plane) -> (area: Int, boundary: Int) {
        let mask = closed(plane.pixels.map { $0 > 0 }, width: plane.width, height: plane.height)
        func ink(_ y: Int, _ x: Int) -> Bool {
            y >= 0 && y < plane.height && x >= 0 && x < plane.width && mask[y * plane.width + x]
        }
        var area = 0, boundary = 0
        for y in 0..<plane.height {
            for x in 0..<plane.width where mask[y * plane.width + x] {
                area += 1
                if !(ink(y - 1, x) && ink(y + 1, x) && ink(y, x - 1) && ink(y, x + 1)) { boundary += 1 }
            }
        }
        return (area, boundary)
    }

    /// How far (px) to grow strokes with this closed `area` and `boundary` in a crop whose longer side
    /// is `longer`; 0 when they are thick enough. In Double and in Python's order of operations:
    /// docs/thickening_vectors.json lists the cases where Float would decide otherwise.
    public static func thickening(longer: Int, area: Int, boundary: Int) -> Double {
        let width = 2 * Double(area) / Double(max(boundary, 1))
        let wanted = targetStroke * Double(longer)
        guard width < thinStroke * wanted else { return 0 }
        let grow = (wanted - width) / 2
        return grow >= 0.5 ? grow : 0
    }

    static func thicken(_ plane: Plane) -> Plane {
        let (area, boundary) = areaAndBoundary(plane)
        let grow = thickening(longer: max(plane.width, plane.height), area: area, boundary: boundary)
        guard grow > 0 else { return plane }
        let pad = Int(grow.rounded(.up))
        let strongest = plane.pixels.max() ?? 1
        let w = plane.width + 2 * pad, h = plane.height + 2 * pad
        var out = Plane(width: w, height: h, pixels: [Float](repeating: 0, count: w * h))
        for y in 0..<plane.height { for x in 0..<plane.width { out[y + pad, x + pad] = plane[y, x] / strongest } }
        // Every pixel within `grow` (Euclidean, as a distance transform measures it) of an ink pixel
        // becomes full ink: a disk dilation.
        var offsets: [(Int, Int)] = []
        for dy in -pad...pad {
            for dx in -pad...pad where Double(dy * dy + dx * dx).squareRoot() <= grow { offsets.append((dy, dx)) }
        }
        let source = out
        for y in 0..<h {
            for x in 0..<w where source[y, x] < 1 {
                for (dy, dx) in offsets {
                    let yy = y + dy, xx = x + dx
                    if yy >= 0 && yy < h && xx >= 0 && xx < w && source[yy, xx] > 0 {
                        out[y, x] = 1
                        break
                    }
                }
            }
        }
        return out
    }

    // MARK: 7. Scale the longer side to 20 px (Lanczos-3, as Pillow resamples)

    static func lanczos(_ x: Double) -> Double {
        func sinc(_ v: Double) -> Double { v == 0 ? 1 : sin(v * .pi) / (v * .pi) }
        return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0
    }

    /// Resampling weights for one axis: for each output pixel, (first input index, weights).
    static func coefficients(inSize: Int, outSize: Int) -> [(Int, [Double])] {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 3.0 * filterScale
        return (0..<outSize).map { out -> (Int, [Double]) in
            let center = (Double(out) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            var weights = (lo..<hi).map { lanczos((Double($0) - center + 0.5) / filterScale) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            return (lo, weights)
        }
    }

    static func scale(_ plane: Plane) -> Plane? {
        let longer = max(plane.width, plane.height)
        let factor = Double(box) / Double(longer)
        let outWidth = max(1, Int((Double(plane.width) * factor).rounded(.toNearestOrEven)))
        let outHeight = max(1, Int((Double(plane.height) * factor).rounded(.toNearestOrEven)))
        // Horizontal pass, then vertical, as Pillow does.
        let horizontal = coefficients(inSize: plane.width, outSize: outWidth)
        var wide = Plane(width: outWidth, height: plane.height, pixels: [Float](repeating: 0, count: outWidth * plane.height))
        for y in 0..<plane.height {
            for (x, (lo, weights)) in horizontal.enumerated() {
                var sum = 0.0
                for (k, w) in weights.enumerated() { sum += w * Double(plane[y, lo + k]) }
                wide[y, x] = Float(sum)
            }
        }
        let vertical = coefficients(inSize: plane.height, outSize: outHeight)
        var out = Plane(width: outWidth, height: outHeight, pixels: [Float](repeating: 0, count: outWidth * outHeight))
        for (y, (lo, weights)) in vertical.enumerated() {
            for x in 0..<outWidth {
                var sum = 0.0
                for (k, w) in weights.enumerated() { sum += w * Double(wide[lo + k, x]) }
                out[y, x] = Float(sum)
            }
        }
        let top = out.pixels.map { max($0, 0) }.max() ?? 0
        guard top > 0 else { return nil }  // the ink vanished in the downscale: nothing to read
        out.pixels = out.pixels.map { max($0, 0) / top }
        return out
    }

    // MARK: 8. Centre of mass at (14, 14)

    /// Sums in Double: Float pixels times whole-pixel indices add up exactly there, in any order, so
    /// the rounding below matches Python's on every tie.
    static func centre(_ small: Plane) -> [UInt8] {
        var mass = 0.0, sumY = 0.0, sumX = 0.0
        for y in 0..<small.height {
            for x in 0..<small.width {
                let v = Double(small[y, x])
                mass += v; sumY += Double(y) * v; sumX += Double(x) * v
            }
        }
        let half = Double(field) / 2
        var top = Int((half - sumY / mass).rounded(.toNearestOrEven))
        var left = Int((half - sumX / mass).rounded(.toNearestOrEven))
        top = min(max(top, 0), field - small.height)
        left = min(max(left, 0), field - small.width)
        var out = [UInt8](repeating: 0, count: field * field)
        for y in 0..<small.height {
            for x in 0..<small.width {
                out[(top + y) * field + left + x] = UInt8((small[y, x] * 255).rounded(.toNearestOrEven))
            }
        }
        return out
    }
}
