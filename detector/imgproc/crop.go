package imgproc

import (
	"errors"
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// ErrEmptyCrop is returned when a crop rectangle lies outside the image.
var ErrEmptyCrop = errors.New("imgproc: crop is empty after clamping to the image")

// Crop returns the part of src inside rect, clamped to the image, and the rectangle actually
// used. The Mat is a view sharing src's pixels (no copy): Close it, and Clone it if it must
// outlive src. Map a crop's model coordinates to the frame with
// Transform.WithOffset(float64(used.Min.X), float64(used.Min.Y)).
func Crop(src gocv.Mat, rect image.Rectangle) (gocv.Mat, image.Rectangle, error) {
	r := rect.Canon().Intersect(image.Rect(0, 0, src.Cols(), src.Rows()))
	if r.Empty() {
		return gocv.Mat{}, r, fmt.Errorf("%w: %v in %dx%d", ErrEmptyCrop, rect, src.Cols(), src.Rows())
	}
	return src.Region(r), r, nil
}

// BoxRect rounds a box outwards to whole pixels, grown by margin (a fraction of its size on
// each side), for Crop.
func BoxRect(b Box, margin float64) image.Rectangle {
	mx, my := b.W()*margin, b.H()*margin
	return image.Rect(int(b.X1-mx), int(b.Y1-my), int(b.X2+mx+0.999), int(b.Y2+my+0.999))
}

// Rectify warps the quadrilateral corners (top-left, top-right, bottom-right, bottom-left, in
// src pixels) to an upright outW×outH image: a plate photographed at an angle becomes the
// straight rectangle OCR models are trained on. The caller closes the result.
func Rectify(src gocv.Mat, corners [4]Point, outW, outH int) (gocv.Mat, error) {
	if src.Empty() {
		return gocv.Mat{}, errors.New("imgproc: rectify: empty source image")
	}
	if outW < 1 || outH < 1 {
		return gocv.Mat{}, fmt.Errorf("imgproc: rectify: output %dx%d", outW, outH)
	}
	from := make([]gocv.Point2f, 4)
	for i, c := range corners {
		from[i] = gocv.Point2f{X: float32(c.X), Y: float32(c.Y)}
	}
	// A degenerate quadrilateral (corners closer than a pixel) has no perspective transform.
	for i := 0; i < 4; i++ {
		for j := i + 1; j < 4; j++ {
			dx, dy := from[i].X-from[j].X, from[i].Y-from[j].Y
			if dx*dx+dy*dy < 1 {
				return gocv.Mat{}, fmt.Errorf("imgproc: rectify: corners %d and %d coincide at %v", i, j, corners[i])
			}
		}
	}
	srcPts := gocv.NewPoint2fVectorFromPoints(from)
	defer srcPts.Close()
	w, h := float32(outW-1), float32(outH-1)
	dstPts := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: w, Y: 0}, {X: w, Y: h}, {X: 0, Y: h}})
	defer dstPts.Close()
	m := gocv.GetPerspectiveTransform2f(srcPts, dstPts)
	defer m.Close()
	if m.Empty() {
		return gocv.Mat{}, errors.New("imgproc: rectify: no perspective transform for these corners")
	}
	out := gocv.NewMat()
	gocv.WarpPerspectiveWithParams(src, &out, m, image.Pt(outW, outH), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	return out, nil
}

// ToGray converts a BGR Mat to a 1-channel grey Mat (a copy for a grey source).
// The caller closes the result.
func ToGray(src gocv.Mat) gocv.Mat {
	out := gocv.NewMat()
	if src.Channels() == 1 {
		src.CopyTo(&out)
		return out
	}
	gocv.CvtColor(src, &out, gocv.ColorBGRToGray)
	return out
}

// EncodeJPEG encodes a BGR (or grey) Mat as JPEG at quality 1–100, for evidence images.
func EncodeJPEG(src gocv.Mat, quality int) ([]byte, error) {
	if src.Empty() {
		return nil, errors.New("imgproc: encode jpeg: empty image")
	}
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("imgproc: encode jpeg: quality %d not in 1..100", quality)
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, src, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, fmt.Errorf("imgproc: encode jpeg: %w", err)
	}
	defer buf.Close()
	b := buf.GetBytes()
	if len(b) == 0 {
		return nil, errors.New("imgproc: encode jpeg: encoder produced no bytes")
	}
	return append([]byte(nil), b...), nil
}
