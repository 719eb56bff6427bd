package decode

import (
	"fmt"
	"math"
	"sort"
	"sync"
)

// YuNetStrides are the strides of the YuNet face detector heads (outputs *_8, *_16, *_32).
var YuNetStrides = []int{8, 16, 32}

// YuNet decodes the YuNet face detector (OpenCV Zoo face_detection_yunet_2023mar, and the
// libfacedetection.train yunet_s exports) the way OpenCV's FaceDetectorYN::postProcess does
// (objdetect/src/face_detect.cpp, OpenCV 4.8+). out maps output names to data: for each
// stride s, "cls_s" and "obj_s" [1,N,1], "bbox_s" [1,N,4], "kps_s" [1,N,10], where
// N = (padH/s)*(padW/s) and padW, padH are the input size rounded up to a multiple of 32
// (FaceDetectorYN pads the image to that). Per cell (row r, col c):
//
//	score = sqrt(clamp01(cls) * clamp01(obj))
//	cx = (c + bbox0)*s, cy = (r + bbox1)*s, w = exp(bbox2)*s, h = exp(bbox3)*s
//	landmark k = ((c + kps[2k])*s, (r + kps[2k+1])*s)
//
// Landmarks are right eye, left eye, nose tip, right and left mouth corner. Class is 0.
// Cells with score >= scoreThr are returned, without NMS.
func YuNet(out map[string][]float32, inputW, inputH int, strides []int, scoreThr float64) ([]Det, error) {
	if inputW <= 0 || inputH <= 0 || inputW > maxInput || inputH > maxInput || len(strides) == 0 {
		return nil, fmt.Errorf("yunet: input %dx%d with strides %v: %w", inputW, inputH, strides, ErrShape)
	}
	padW, padH := (inputW+31)/32*32, (inputH+31)/32*32
	var dets []Det
	for _, s := range strides {
		if s <= 0 {
			return nil, fmt.Errorf("yunet: stride %d: %w", s, ErrShape)
		}
		cols, rows := padW/s, padH/s
		n := cols * rows
		cls, obj := out[fmt.Sprintf("cls_%d", s)], out[fmt.Sprintf("obj_%d", s)]
		bbox, kps := out[fmt.Sprintf("bbox_%d", s)], out[fmt.Sprintf("kps_%d", s)]
		if len(cls) != n || len(obj) != n || len(bbox) != 4*n || len(kps) != 10*n {
			return nil, fmt.Errorf("yunet: stride %d at %dx%d needs %d cells (cls %d, obj %d, bbox %d/4, kps %d/10 values): %w",
				s, padW, padH, n, len(cls), len(obj), len(bbox), len(kps), ErrShape)
		}
		fs := float64(s)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				i := r*cols + c
				score := math.Sqrt(clamp01(float64(cls[i])) * clamp01(float64(obj[i])))
				if !(score >= scoreThr) {
					continue
				}
				b := bbox[i*4 : i*4+4]
				box := fromCXCYWH((float64(c)+float64(b[0]))*fs, (float64(r)+float64(b[1]))*fs,
					math.Exp(float64(b[2]))*fs, math.Exp(float64(b[3]))*fs)
				if !box.finite() {
					continue
				}
				lm := make([]Point, 5)
				for k := range lm {
					lm[k] = Point{(float64(c) + float64(kps[i*10+2*k])) * fs, (float64(r) + float64(kps[i*10+2*k+1])) * fs}
				}
				dets = append(dets, Det{Box: box, Score: score, Landmarks: lm})
			}
		}
	}
	return dets, nil
}

// LPD-YuNet prior configuration, from OpenCV Zoo's lpd_yunet.py.
var (
	lpdMinSizes = [][]float64{{10, 16, 24}, {32, 48}, {64, 96}, {128, 192, 256}}
	lpdSteps    = []float64{8, 16, 32, 64}
	lpdVariance = [2]float64{0.1, 0.2}
)

type prior struct{ cx, cy, sx, sy float64 } // normalised to the input size

// lpdPriorCache holds the priors of the last input size: a deployment uses one size, and a
// one-entry cache cannot grow without bound whatever sizes callers pass.
var lpdPriorCache struct {
	sync.Mutex
	w, h   int
	priors []prior
}

// lpdPriors generates the prior boxes exactly as lpd_yunet.py's _priorGen: feature maps of
// the 3rd..6th levels, where each level halves the previous with integer division after the
// first two halvings round up ((h+1)/2 then /2). 320x240 gives 40x30, 20x15, 10x7, 5x3
// maps and 3600+600+140+45 = 4385 priors.
func lpdPriors(w, h int) []prior {
	lpdPriorCache.Lock()
	defer lpdPriorCache.Unlock()
	if lpdPriorCache.priors != nil && lpdPriorCache.w == w && lpdPriorCache.h == h {
		return lpdPriorCache.priors
	}
	fh, fw := ((h+1)/2)/2, ((w+1)/2)/2
	var pr []prior
	for k := range lpdSteps {
		fh, fw = fh/2, fw/2
		for i := 0; i < fh; i++ {
			for j := 0; j < fw; j++ {
				for _, ms := range lpdMinSizes[k] {
					pr = append(pr, prior{
						cx: (float64(j) + 0.5) * lpdSteps[k] / float64(w),
						cy: (float64(i) + 0.5) * lpdSteps[k] / float64(h),
						sx: ms / float64(w),
						sy: ms / float64(h),
					})
				}
			}
		}
	}
	lpdPriorCache.w, lpdPriorCache.h, lpdPriorCache.priors = w, h, pr
	return pr
}

// LPDYuNetPriors is the number of priors (rows of loc/conf/iou) for an input size.
func LPDYuNetPriors(inputW, inputH int) int {
	if inputW <= 0 || inputH <= 0 || inputW > 4096 || inputH > 4096 {
		return 0
	}
	return len(lpdPriors(inputW, inputH))
}

// LPDYuNet decodes the OpenCV Zoo plate detector license_plate_detection_lpd_yunet_2023mar
// (input 1x3x240x320, i.e. inputW=320, inputH=240) as lpd_yunet.py's _decode does: outputs
// loc [N,14], conf [N,2], iou [N,1] against N prior boxes (min sizes [[10,16,24],[32,48],
// [64,96],[128,192,256]], steps [8,16,32,64], variance [0.1,0.2]);
//
//	score = sqrt(conf[:,1] * clamp01(iou))           (conf[:,1] also clamped here)
//	corner k = (prior.c + loc[p_k] * 0.1 * prior.s) * inputSize, p_k = 4:6, 6:8, 10:12, 12:14
//
// The four corners are returned in Det.Corners ordered clockwise from top-left (the model's
// own order is cyclic but not documented), and Det.Box is their bounding rectangle (the
// reference implementation also only uses the corners). Class is 0. No NMS.
func LPDYuNet(loc, conf, iou []float32, inputW, inputH int, scoreThr float64) ([]Det, error) {
	n := LPDYuNetPriors(inputW, inputH)
	if n == 0 {
		return nil, fmt.Errorf("lpd-yunet: input %dx%d: %w", inputW, inputH, ErrShape)
	}
	if len(loc) != 14*n || len(conf) != 2*n || len(iou) != n {
		return nil, fmt.Errorf("lpd-yunet: input %dx%d has %d priors, got loc %d/14, conf %d/2, iou %d values: %w",
			inputW, inputH, n, len(loc), len(conf), len(iou), ErrShape)
	}
	pr := lpdPriors(inputW, inputH)
	fw, fh := float64(inputW), float64(inputH)
	var dets []Det
	for i, p := range pr {
		score := math.Sqrt(clamp01(float64(conf[2*i+1])) * clamp01(float64(iou[i])))
		if !(score >= scoreThr) {
			continue
		}
		l := loc[i*14 : i*14+14]
		var pts [4]Point
		for k, off := range [4]int{4, 6, 10, 12} {
			pts[k] = Point{
				X: (p.cx + float64(l[off])*lpdVariance[0]*p.sx) * fw,
				Y: (p.cy + float64(l[off+1])*lpdVariance[0]*p.sy) * fh,
			}
		}
		box, ok := boundingRect(pts[:])
		if !ok {
			continue
		}
		dets = append(dets, Det{Box: box, Score: score, Corners: OrderCorners(pts), HasCorners: true})
	}
	return dets, nil
}

func boundingRect(pts []Point) (Rect, bool) {
	x1, y1 := math.Inf(1), math.Inf(1)
	x2, y2 := math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		if !finite(p.X) || !finite(p.Y) {
			return Rect{}, false
		}
		x1, y1 = math.Min(x1, p.X), math.Min(y1, p.Y)
		x2, y2 = math.Max(x2, p.X), math.Max(y2, p.Y)
	}
	return fromXYXY(x1, y1, x2, y2), len(pts) > 0
}

// OrderCorners puts four corners in the order top-left, top-right, bottom-right, bottom-left
// with PaddleOCR's get_mini_boxes rule: the two leftmost points are the left side (the upper
// one is top-left), the two rightmost the right side. It is right for rectangles rotated by
// less than 45 degrees, which covers plates and text lines.
func OrderCorners(p [4]Point) [4]Point {
	s := p
	sort.SliceStable(s[:], func(i, j int) bool { return s[i].X < s[j].X })
	tl, bl := s[0], s[1]
	if s[1].Y < s[0].Y {
		tl, bl = s[1], s[0]
	}
	tr, br := s[2], s[3]
	if s[3].Y < s[2].Y {
		tr, br = s[3], s[2]
	}
	return [4]Point{tl, tr, br, bl}
}
