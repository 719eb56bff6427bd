// Package decode turns raw ONNX output tensors (flat float32 slices plus their shapes) into
// detections, text boxes and text reads. It is pure Go on purpose: no ONNX Runtime, no OpenCV,
// so every decoder can be unit-tested on hand-made tensors and fuzzed cheaply.
//
// Boxes come back in MODEL INPUT pixel coordinates (the letterboxed/resized tensor the model
// saw); mapping them back to the frame is the caller's job, because only the caller knows how
// the frame was resized and padded.
//
// Decoders that read a shape return an error wrapping ErrShape when the shape does not fit the
// data or the decoder, never a panic. Non-finite boxes (NaN/Inf from a broken model) are
// dropped rather than passed on.
package decode

import (
	"errors"
	"fmt"
	"math"
)

// maxInput bounds model input sides so that grid arithmetic cannot overflow.
const maxInput = 1 << 14

// ErrShape is wrapped by every error about an output whose shape does not fit its data or the
// decoder that was asked to read it.
var ErrShape = errors.New("output shape mismatch")

// Point is a position in model-input (or probability-map) pixels.
type Point struct{ X, Y float64 }

// Rect is an axis-aligned box: top-left corner plus size, in model-input pixels.
type Rect struct{ X, Y, W, H float64 }

// X2 is the right edge.
func (r Rect) X2() float64 { return r.X + r.W }

// Y2 is the bottom edge.
func (r Rect) Y2() float64 { return r.Y + r.H }

// Area is W*H, 0 for degenerate boxes.
func (r Rect) Area() float64 {
	if r.W <= 0 || r.H <= 0 {
		return 0
	}
	return r.W * r.H
}

func (r Rect) finite() bool {
	return finite(r.X) && finite(r.Y) && finite(r.W) && finite(r.H)
}

// Det is one detection.
type Det struct {
	Box   Rect
	Score float64
	Class int
	// Corners are the four corners of a quadrilateral object (a plate), clockwise from
	// top-left, when the decoder provides them (HasCorners).
	Corners    [4]Point
	HasCorners bool
	// Landmarks are decoder-specific key points (YuNet: right eye, left eye, nose tip,
	// right mouth corner, left mouth corner).
	Landmarks []Point
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func fromXYXY(x1, y1, x2, y2 float64) Rect { return Rect{X: x1, Y: y1, W: x2 - x1, H: y2 - y1} }

func fromCXCYWH(cx, cy, w, h float64) Rect { return Rect{X: cx - w/2, Y: cy - h/2, W: w, H: h} }

// numel multiplies the dimensions, rejecting negative (dynamic) and overflowing ones.
func numel(shape []int64) (int, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension: %w", shape, ErrShape)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v is too large: %w", shape, ErrShape)
		}
		n *= d
	}
	return int(n), nil
}

// checkLen verifies that data holds exactly the elements shape describes.
func checkLen(name string, data []float32, shape []int64) error {
	n, err := numel(shape)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n != len(data) {
		return fmt.Errorf("%s: shape %v needs %d values, got %d: %w", name, shape, n, len(data), ErrShape)
	}
	return nil
}

// squeezeBatch drops a leading batch dimension of 1 so that [1,a,b] and [a,b] read alike;
// batches larger than 1 are refused because every decoder here reads one image.
func squeezeBatch(name string, shape []int64, rank int) ([]int64, error) {
	if len(shape) == rank+1 {
		if shape[0] != 1 {
			return nil, fmt.Errorf("%s: batch size %d in shape %v, want 1: %w", name, shape[0], shape, ErrShape)
		}
		return shape[1:], nil
	}
	if len(shape) != rank {
		return nil, fmt.Errorf("%s: shape %v has rank %d, want %d or %d with batch 1: %w", name, shape, len(shape), rank, rank+1, ErrShape)
	}
	return shape, nil
}

func clamp01(v float64) float64 {
	if v < 0 || math.IsNaN(v) {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// ToFrame maps a detection from model-input pixels back to the frame it was made from, for
// a frame resized by (scaleX, scaleY) and then shifted by (padX, padY) (letterbox padding;
// 0 for top-left letterboxing or a plain resize): frame = (input - pad) / scale.
func (d Det) ToFrame(scaleX, scaleY, padX, padY float64) Det {
	m := func(p Point) Point { return Point{(p.X - padX) / scaleX, (p.Y - padY) / scaleY} }
	tl := m(Point{d.Box.X, d.Box.Y})
	d.Box = Rect{X: tl.X, Y: tl.Y, W: d.Box.W / scaleX, H: d.Box.H / scaleY}
	for i := range d.Corners {
		d.Corners[i] = m(d.Corners[i])
	}
	if d.Landmarks != nil {
		lm := make([]Point, len(d.Landmarks))
		for i, p := range d.Landmarks {
			lm[i] = m(p)
		}
		d.Landmarks = lm
	}
	return d
}

// ToFrame maps a text box from probability-map pixels to the frame (see Det.ToFrame).
func (t TextBox) ToFrame(scaleX, scaleY, padX, padY float64) TextBox {
	for i, p := range t.Corners {
		t.Corners[i] = Point{(p.X - padX) / scaleX, (p.Y - padY) / scaleY}
	}
	return t
}
