package imgproc

import (
	"errors"
	"fmt"
	"image"
	"math"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/models"
)

// Resize modes of models.Tensor.Resize.
const (
	ResizeLetterbox       = "letterbox"        // keep aspect ratio, image top-left, pad right/bottom
	ResizeLetterboxCenter = "letterbox-center" // keep aspect ratio, image centred
	ResizeStretch         = "stretch"          // fill the input, aspect ratio lost
	// ResizeKeepRatioPad fills the height, keeps the aspect ratio up to the full width (wider
	// images are squeezed) and pads on the right: PaddleOCR's text recogniser.
	ResizeKeepRatioPad = "keep-ratio-pad"
)

// Letterbox resizes src (BGR or grey, 8-bit) to the model input of spec, a float32 NCHW
// tensor [N C H W] of the size InputSize gives, and writes one image straight into dst (the first
// C×H×W values: pass dst[i*C*H*W:] for batch item i). Colour order, scale, mean/std, resize
// mode and pad value come from spec. PadValue is a pixel value (0–255) normalised like the
// pixels; Mean and Std are per tensor channel, in the tensor's colour order.
func Letterbox(src gocv.Mat, dst []float32, spec *models.Tensor) (Transform, error) {
	w, h, err := InputSize(spec, src.Cols(), src.Rows())
	if err != nil {
		return Transform{}, err
	}
	return LetterboxTo(src, dst, spec, w, h)
}

// InputSize is the model input width and height for a srcW×srcH image: the fixed H and W of
// spec's shape, or for dynamic axes the manifest's rule: limit_side (longer side scaled down
// to at most limit_side, never up, each side then rounded to a multiple of `multiple`, at
// least one multiple: PaddleOCR's DetResizeForTest) or pad_width (fixed H, W = max(pad_width,
// ceil(H × aspect)): PaddleOCR recognition). Call it before Session.SetInputShape.
func InputSize(spec *models.Tensor, srcW, srcH int) (w, h int, err error) {
	if spec == nil || len(spec.Shape) != 4 {
		return 0, 0, errors.New("imgproc: input size: spec needs a 4-axis shape")
	}
	if srcW < 1 || srcH < 1 {
		return 0, 0, fmt.Errorf("imgproc: input size: source %dx%d", srcW, srcH)
	}
	hAxis, wAxis := 2, 3
	if spec.Layout == "NHWC" {
		hAxis, wAxis = 1, 2
	}
	h, w = int(spec.Shape[hAxis]), int(spec.Shape[wAxis])
	if h > 0 && w > 0 {
		return w, h, nil
	}
	switch {
	case spec.LimitSide > 0 && h < 0 && w < 0:
		r := 1.0
		if long := max(srcW, srcH); long > spec.LimitSide {
			r = float64(spec.LimitSide) / float64(long)
		}
		w, h = int(float64(srcW)*r), int(float64(srcH)*r)
		if m := spec.Multiple; m > 0 {
			w = max(m, int(math.Round(float64(w)/float64(m)))*m)
			h = max(m, int(math.Round(float64(h)/float64(m)))*m)
		}
		return max(w, 1), max(h, 1), nil
	case spec.PadWidth > 0 && h > 0 && w < 0:
		w = max(spec.PadWidth, int(math.Ceil(float64(h)*float64(srcW)/float64(srcH))))
		if m := spec.Multiple; m > 0 {
			w = (w + m - 1) / m * m
		}
		return w, h, nil
	}
	return 0, 0, fmt.Errorf("imgproc: input size: shape %v has dynamic axes and the spec gives no limit_side or pad_width", spec.Shape)
}

// LetterboxTo is Letterbox at an explicit size w×h, for models with dynamic H and W
// (PaddleOCR detection and recognition).
func LetterboxTo(src gocv.Mat, dst []float32, spec *models.Tensor, w, h int) (Transform, error) {
	if spec == nil {
		return Transform{}, errors.New("imgproc: letterbox: nil spec")
	}
	if spec.Layout != "" && spec.Layout != "NCHW" {
		return Transform{}, fmt.Errorf("imgproc: letterbox: layout %q is not NCHW", spec.Layout)
	}
	if spec.Type != "" && spec.Type != "float32" {
		return Transform{}, fmt.Errorf("imgproc: letterbox: type %q is not float32", spec.Type)
	}
	c, err := tensorChannels(spec, 1)
	if err != nil {
		return Transform{}, err
	}
	if w < 1 || h < 1 {
		return Transform{}, fmt.Errorf("imgproc: letterbox: target %dx%d", w, h)
	}
	if len(dst) < c*w*h {
		return Transform{}, fmt.Errorf("imgproc: letterbox: dst holds %d values, %dx%dx%d needs %d", len(dst), c, h, w, c*w*h)
	}
	luts, pad, err := normalisation(spec, c)
	if err != nil {
		return Transform{}, err
	}
	t, resized, release, err := resizeFor(src, spec, w, h, c == 1)
	if err != nil {
		return Transform{}, err
	}
	defer release()
	pix, err := resized.DataPtrUint8()
	if err != nil {
		return Transform{}, fmt.Errorf("imgproc: letterbox: %w", err)
	}
	nw, nh, px, py := t.ContentW, t.ContentH, int(t.PadX), int(t.PadY)
	if len(pix) < nw*nh*c || nw > w-px || nh > h-py {
		return Transform{}, fmt.Errorf("imgproc: letterbox: content %dx%d at (%d,%d) does not fit %dx%d", nw, nh, px, py, w, h)
	}
	// Tensor channel k reads source byte order[k] of each BGR pixel.
	order := [3]int{0, 1, 2}
	if c == 3 && spec.ColorOrder == "RGB" {
		order = [3]int{2, 1, 0}
	}
	planar(pix, nw, nh, c, dst[:c*w*h], w, h, px, py, c, &luts, order, pad)
	return t, nil
}

// ResizeNHWC writes one image into a uint8 NHWC tensor [N H W C] (fast-plate-ocr: RGB, plain
// resize to 128×64, no normalisation), dst being the first H×W×C bytes.
func ResizeNHWC(src gocv.Mat, dst []uint8, spec *models.Tensor) (Transform, error) {
	w, h, err := InputSize(spec, src.Cols(), src.Rows())
	if err != nil {
		return Transform{}, err
	}
	return ResizeNHWCTo(src, dst, spec, w, h)
}

// ResizeNHWCTo is ResizeNHWC at an explicit size w×h.
func ResizeNHWCTo(src gocv.Mat, dst []uint8, spec *models.Tensor, w, h int) (Transform, error) {
	if spec == nil {
		return Transform{}, errors.New("imgproc: resize NHWC: nil spec")
	}
	if spec.Layout != "NHWC" {
		return Transform{}, fmt.Errorf("imgproc: resize NHWC: layout %q is not NHWC", spec.Layout)
	}
	if spec.Type != "uint8" {
		return Transform{}, fmt.Errorf("imgproc: resize NHWC: type %q is not uint8", spec.Type)
	}
	if (spec.Scale != 0 && spec.Scale != 1) || len(spec.Mean) > 0 || len(spec.Std) > 0 {
		return Transform{}, errors.New("imgproc: resize NHWC: a uint8 input cannot carry scale, mean or std")
	}
	c, err := tensorChannels(spec, 3)
	if err != nil {
		return Transform{}, err
	}
	if w < 1 || h < 1 {
		return Transform{}, fmt.Errorf("imgproc: resize NHWC: target %dx%d", w, h)
	}
	if len(dst) < c*w*h {
		return Transform{}, fmt.Errorf("imgproc: resize NHWC: dst holds %d bytes, %dx%dx%d needs %d", len(dst), h, w, c, c*w*h)
	}
	t, resized, release, err := resizeFor(src, spec, w, h, c == 1)
	if err != nil {
		return Transform{}, err
	}
	defer release()
	pix, err := resized.DataPtrUint8()
	if err != nil {
		return Transform{}, fmt.Errorf("imgproc: resize NHWC: %w", err)
	}
	dst = dst[:c*w*h]
	pad := uint8(max(0, min(255, math.Round(spec.PadValue))))
	fill(dst, pad)
	nw, nh, px, py := t.ContentW, t.ContentH, int(t.PadX), int(t.PadY)
	rgb := c == 3 && spec.ColorOrder != "BGR"
	for y := 0; y < nh; y++ {
		row := pix[y*nw*c : (y+1)*nw*c]
		out := dst[((y+py)*w+px)*c : ((y+py)*w+px+nw)*c]
		if !rgb {
			copy(out, row)
			continue
		}
		for x := 0; x < nw*3; x += 3 {
			out[x], out[x+1], out[x+2] = row[x+2], row[x+1], row[x]
		}
	}
	return t, nil
}

// tensorChannels is the channel count of spec (NCHW axis 1, NHWC axis 3), checked against
// its colour order; def applies when the axis is dynamic.
func tensorChannels(spec *models.Tensor, def int) (int, error) {
	axis := 1
	if spec.Layout == "NHWC" {
		axis = 3
	}
	c := def
	if len(spec.Shape) == 4 && spec.Shape[axis] > 0 {
		c = int(spec.Shape[axis])
	}
	if spec.ColorOrder == "GRAY" {
		if c != 1 && !(len(spec.Shape) == 4 && spec.Shape[axis] < 0) {
			return 0, fmt.Errorf("imgproc: colour order GRAY with %d channels", c)
		}
		return 1, nil
	}
	if len(spec.Shape) == 4 && spec.Shape[axis] < 0 {
		c = 3
	}
	if c != 3 {
		return 0, fmt.Errorf("imgproc: colour order %q with %d channels (want 3, or GRAY with 1)", spec.ColorOrder, c)
	}
	switch spec.ColorOrder {
	case "", "BGR", "RGB":
	default:
		return 0, fmt.Errorf("imgproc: colour order %q is not BGR, RGB or GRAY", spec.ColorOrder)
	}
	return 3, nil
}

// normalisation builds one 256-entry lookup table per tensor channel (value = (p·scale −
// mean) / std), so the pixel loop is a table read per byte, and the normalised pad value.
func normalisation(spec *models.Tensor, c int) ([3][256]float32, [3]float32, error) {
	var luts [3][256]float32
	var pad [3]float32
	scale := spec.Scale
	if scale == 0 {
		scale = 1
	}
	pick := func(v []float64, ch int, def float64, what string) (float64, error) {
		switch len(v) {
		case 0:
			return def, nil
		case 1:
			return v[0], nil
		case c:
			return v[ch], nil
		}
		return 0, fmt.Errorf("imgproc: %s has %d values for %d channels", what, len(v), c)
	}
	for ch := 0; ch < c; ch++ {
		mean, err := pick(spec.Mean, ch, 0, "mean")
		if err != nil {
			return luts, pad, err
		}
		std, err := pick(spec.Std, ch, 1, "std")
		if err != nil {
			return luts, pad, err
		}
		if std == 0 {
			return luts, pad, errors.New("imgproc: std of 0")
		}
		for p := 0; p < 256; p++ {
			luts[ch][p] = float32((float64(p)*scale - mean) / std)
		}
		pad[ch] = float32((spec.PadValue*scale - mean) / std)
	}
	return luts, pad, nil
}

// resizeFor computes the geometry for spec.Resize and returns a continuous 8-bit Mat of the
// content size (3-channel BGR, or 1-channel grey when gray), plus a release func.
func resizeFor(src gocv.Mat, spec *models.Tensor, w, h int, gray bool) (Transform, gocv.Mat, func(), error) {
	noop := func() {}
	if src.Empty() {
		return Transform{}, gocv.Mat{}, noop, errors.New("imgproc: empty source image")
	}
	if src.Type() != gocv.MatTypeCV8UC3 && src.Type() != gocv.MatTypeCV8UC1 {
		return Transform{}, gocv.Mat{}, noop, fmt.Errorf("imgproc: source type %v is not 8-bit BGR or grey", src.Type())
	}
	sw, sh := src.Cols(), src.Rows()
	t := Transform{SrcW: sw, SrcH: sh, DstW: w, DstH: h, FrameScaleX: 1, FrameScaleY: 1}
	nw, nh, px, py := w, h, 0, 0
	switch spec.Resize {
	case "", ResizeLetterbox, ResizeLetterboxCenter:
		r := math.Min(float64(w)/float64(sw), float64(h)/float64(sh))
		nw = min(w, max(1, int(math.Round(float64(sw)*r))))
		nh = min(h, max(1, int(math.Round(float64(sh)*r))))
		if spec.Resize == ResizeLetterboxCenter {
			px, py = (w-nw)/2, (h-nh)/2
		}
	case ResizeStretch:
	case ResizeKeepRatioPad:
		nw = min(w, max(1, int(math.Ceil(float64(h)*float64(sw)/float64(sh)))))
	default:
		return Transform{}, gocv.Mat{}, noop, fmt.Errorf("imgproc: resize mode %q is not letterbox, letterbox-center, stretch or keep-ratio-pad", spec.Resize)
	}
	t.ContentW, t.ContentH = nw, nh
	t.PadX, t.PadY = float64(px), float64(py)
	t.ScaleX, t.ScaleY = float64(nw)/float64(sw), float64(nh)/float64(sh)

	wantType := gocv.MatTypeCV8UC3
	if gray {
		wantType = gocv.MatTypeCV8UC1
	}
	cur := src
	var owned []gocv.Mat
	release := func() {
		for i := range owned {
			owned[i].Close()
		}
	}
	step := func(f func(dst *gocv.Mat)) {
		m := gocv.NewMat()
		f(&m)
		owned = append(owned, m)
		cur = m
	}
	if nw != sw || nh != sh {
		step(func(d *gocv.Mat) {
			gocv.Resize(cur, d, image.Pt(nw, nh), 0, 0, gocv.InterpolationLinear)
		})
	}
	switch {
	case cur.Type() == wantType:
	case gray:
		step(func(d *gocv.Mat) { gocv.CvtColor(cur, d, gocv.ColorBGRToGray) })
	default:
		step(func(d *gocv.Mat) { gocv.CvtColor(cur, d, gocv.ColorGrayToBGR) })
	}
	if !cur.IsContinuous() {
		step(func(d *gocv.Mat) { cur.CopyTo(d) })
	}
	return t, cur, release, nil
}

func fill[T any](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}
