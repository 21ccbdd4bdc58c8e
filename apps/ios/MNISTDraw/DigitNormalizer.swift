import Foundation

/// Swift port of digitkit's normalisation (src/digitkit/predict/preprocessing.py, docs/preprocessing.md):
/// any grey image of one digit → the 28×28, white-on-black, MNIST-style input of the model.
/// Pure Swift on arrays, so it behaves the same on every platform; step numbers follow the doc.
enum DigitNormalizer {
    static let field = 28
    static let box = 20
    static let noiseFraction: Float = 0.25
    static let speckFraction: Float = 0.05
    static let minContrast: Float = 0.1
    static let targetStroke: Float = 0.12

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
    static func normalize(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]? = nil) -> [UInt8]? {
        var ink = inkMap(grey: grey, width: width, height: height, alpha: alpha)  // 1, 2
        guard let strongest = ink.pixels.max(), strongest >= minContrast else { return nil }  // 3
        ink = clean(ink, strongest: strongest)  // 4, 5
        ink = thicken(ink)  // 6
        let small = scale(ink)  // 7
        return centre(small)  // 8
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

    static func inkMap(grey: [UInt8], width: Int, height: Int, alpha: [UInt8]?) -> Plane {
        var grey = grey
        if let alpha, alpha.contains(where: { $0 < 255 }) {
            let opaque = alpha.map { $0 > 127 }
            let opaqueCount = opaque.filter { $0 }.count
            if Float(opaqueCount) < 0.5 * Float(alpha.count) {
                return Plane(width: width, height: height, pixels: alpha.map { Float($0) / 255 })
            }
            let background = UInt8(lowerMedian(zip(grey, opaque).filter { $0.1 }.map { $0.0 }))
            grey = zip(grey, opaque).map { $0.1 ? $0.0 : background }
        }
        let background = Float(lowerMedian(grey))
        let darkOnLight = background >= 128
        let pixels = grey.map { value -> Float in
            let ink = darkOnLight ? (background - Float(value)) / 255 : (Float(value) - background) / 255
            return min(max(ink, 0), 1)
        }
        return Plane(width: width, height: height, pixels: pixels)
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
        let (labels, sizes) = components(plane)
        if sizes.count > 2, let largest = sizes.dropFirst().max() {
            for i in plane.pixels.indices where labels[i] > 0 && Float(sizes[labels[i]]) < speckFraction * Float(largest) {
                plane.pixels[i] = 0
            }
            plane = crop(plane)
        }
        return plane
    }

    // MARK: 6. Thicken thin strokes

    static func strokeWidth(_ plane: Plane) -> Float {
        var area = 0, boundary = 0
        for y in 0..<plane.height {
            for x in 0..<plane.width where plane[y, x] > 0 {
                area += 1
                let inside = y > 0 && y < plane.height - 1 && x > 0 && x < plane.width - 1
                    && plane[y - 1, x] > 0 && plane[y + 1, x] > 0 && plane[y, x - 1] > 0 && plane[y, x + 1] > 0
                if !inside { boundary += 1 }
            }
        }
        return 2 * Float(area) / Float(max(boundary, 1))
    }

    static func thicken(_ plane: Plane) -> Plane {
        let longer = Float(max(plane.width, plane.height))
        let width = strokeWidth(plane)
        let wanted = targetStroke * longer
        guard width < 0.6 * wanted else { return plane }
        let grow = Int(((wanted - width) / 2).rounded(.toNearestOrEven))
        guard grow > 0 else { return plane }
        var padded = Plane(width: plane.width + 2 * grow, height: plane.height + 2 * grow,
                           pixels: [Float](repeating: 0, count: (plane.width + 2 * grow) * (plane.height + 2 * grow)))
        for y in 0..<plane.height { for x in 0..<plane.width { padded[y + grow, x + grow] = plane[y, x] } }
        var out = padded
        for y in 0..<padded.height {
            for x in 0..<padded.width {
                var best: Float = 0
                for dy in -grow...grow {
                    for dx in -grow...grow where dy * dy + dx * dx <= grow * grow {
                        let yy = y + dy, xx = x + dx
                        if yy >= 0 && yy < padded.height && xx >= 0 && xx < padded.width { best = max(best, padded[yy, xx]) }
                    }
                }
                out[y, x] = best
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

    static func scale(_ plane: Plane) -> Plane {
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
        let top = out.pixels.map { max($0, 0) }.max() ?? 1
        out.pixels = out.pixels.map { max($0, 0) / (top > 0 ? top : 1) }
        return out
    }

    // MARK: 8. Centre of mass at (14, 14)

    static func centre(_ small: Plane) -> [UInt8] {
        var mass: Float = 0, sumY: Float = 0, sumX: Float = 0
        for y in 0..<small.height {
            for x in 0..<small.width {
                mass += small[y, x]; sumY += Float(y) * small[y, x]; sumX += Float(x) * small[y, x]
            }
        }
        let half = Float(field) / 2
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
