package decode

import (
	"fmt"
	"math"
)

// YOLOX decodes the raw head output of a YOLOX model exported without in-graph decoding,
// shape [1, N, 5+nc] (or [N, 5+nc]): per anchor-free cell cx, cy, w, h, objectness, then nc
// class scores (all already sigmoid-activated by the export). Cells are laid out stride by
// stride, row-major within each stride (x fastest), so N must equal
// sum over strides of (inputH/stride)*(inputW/stride): yolox_nano at 416x416 with strides
// 8/16/32 gives 52²+26²+13² = 3549.
//
// Decode (as YOLOX's demo_postprocess): cx = (raw+gridX)*stride, cy = (raw+gridY)*stride,
// w = exp(raw)*stride, h = exp(raw)*stride, score = obj*cls for the best class of the cell.
// Cells with score >= scoreThr are returned, without NMS.
func YOLOX(out []float32, shape []int64, inputW, inputH int, strides []int, scoreThr float64) ([]Det, error) {
	return yolox(out, shape, inputW, inputH, strides, scoreThr, false)
}

// YOLOXMultiLabel is YOLOX but returns one detection per class whose obj*cls >= scoreThr,
// not only the best class of each cell (useful when a phone and a person share a cell).
func YOLOXMultiLabel(out []float32, shape []int64, inputW, inputH int, strides []int, scoreThr float64) ([]Det, error) {
	return yolox(out, shape, inputW, inputH, strides, scoreThr, true)
}

func yolox(out []float32, shape []int64, inputW, inputH int, strides []int, scoreThr float64, multi bool) ([]Det, error) {
	s, err := squeezeBatch("yolox", shape, 2)
	if err != nil {
		return nil, err
	}
	if err := checkLen("yolox", out, shape); err != nil {
		return nil, err
	}
	n, ch := int(s[0]), int(s[1])
	if ch < 6 {
		return nil, fmt.Errorf("yolox: %d values per cell, want 5 + at least one class: %w", ch, ErrShape)
	}
	if inputW <= 0 || inputH <= 0 || inputW > maxInput || inputH > maxInput || len(strides) == 0 {
		return nil, fmt.Errorf("yolox: input %dx%d with strides %v: %w", inputW, inputH, strides, ErrShape)
	}
	total := 0
	for _, st := range strides {
		if st <= 0 {
			return nil, fmt.Errorf("yolox: stride %d: %w", st, ErrShape)
		}
		total += (inputH / st) * (inputW / st)
	}
	if total != n {
		return nil, fmt.Errorf("yolox: %d cells in shape %v, but input %dx%d with strides %v makes %d: %w",
			n, shape, inputW, inputH, strides, total, ErrShape)
	}
	var dets []Det
	idx := 0
	for _, st := range strides {
		gh, gw, fs := inputH/st, inputW/st, float64(st)
		for gy := 0; gy < gh; gy++ {
			for gx := 0; gx < gw; gx++ {
				row := out[idx*ch : (idx+1)*ch]
				idx++
				obj := float64(row[4])
				// Class scores are sigmoid outputs (<= 1), so obj alone bounds the score:
				// skipping here avoids touching 80 class scores for most background cells.
				if !(obj >= scoreThr) {
					continue
				}
				box := fromCXCYWH(
					(float64(row[0])+float64(gx))*fs,
					(float64(row[1])+float64(gy))*fs,
					math.Exp(float64(row[2]))*fs,
					math.Exp(float64(row[3]))*fs)
				if !box.finite() {
					continue
				}
				dets = appendClasses(dets, row[5:], obj, box, scoreThr, multi)
			}
		}
	}
	return dets, nil
}

// appendClasses adds the best class (or every class, multi) whose factor*cls reaches thr.
func appendClasses(dets []Det, cls []float32, factor float64, box Rect, thr float64, multi bool) []Det {
	if multi {
		for c, v := range cls {
			if sc := factor * float64(v); sc >= thr {
				dets = append(dets, Det{Box: box, Score: sc, Class: c})
			}
		}
		return dets
	}
	best, bestC := math.Inf(-1), -1
	for c, v := range cls {
		if float64(v) > best {
			best, bestC = float64(v), c
		}
	}
	if bestC >= 0 {
		if sc := factor * best; sc >= thr {
			dets = append(dets, Det{Box: box, Score: sc, Class: bestC})
		}
	}
	return dets
}

// YOLOv8 decodes the Ultralytics YOLOv8/v11 detection head (also YOLOv5u/YOLOv9 exported the
// same way): shape [1, 4+nc, N] (channels first, the default export) or the transposed
// [1, N, 4+nc]; rows are cx, cy, w, h in input pixels followed by nc class scores, with no
// objectness. numClasses > 0 pins the layout; with 0 the smaller of the two dimensions is
// taken as 4+nc (N is in the thousands for any real input size). Best class per candidate
// with score >= scoreThr, without NMS.
func YOLOv8(out []float32, shape []int64, numClasses int, scoreThr float64) ([]Det, error) {
	return yolov8(out, shape, numClasses, scoreThr, false)
}

// YOLOv8MultiLabel is YOLOv8 returning every class above the threshold per candidate.
func YOLOv8MultiLabel(out []float32, shape []int64, numClasses int, scoreThr float64) ([]Det, error) {
	return yolov8(out, shape, numClasses, scoreThr, true)
}

func yolov8(out []float32, shape []int64, numClasses int, scoreThr float64, multi bool) ([]Det, error) {
	s, err := squeezeBatch("yolov8", shape, 2)
	if err != nil {
		return nil, err
	}
	if err := checkLen("yolov8", out, shape); err != nil {
		return nil, err
	}
	a, b := int(s[0]), int(s[1])
	var chFirst bool
	switch {
	case numClasses > 0 && a == 4+numClasses:
		chFirst = true
	case numClasses > 0 && b == 4+numClasses:
		chFirst = false
	case numClasses > 0:
		return nil, fmt.Errorf("yolov8: shape %v has no dimension of 4+%d: %w", shape, numClasses, ErrShape)
	default:
		chFirst = a <= b
	}
	ch, n := b, a
	if chFirst {
		ch, n = a, b
	}
	if ch < 5 {
		return nil, fmt.Errorf("yolov8: %d values per candidate in shape %v, want 4 + at least one class: %w", ch, shape, ErrShape)
	}
	at := func(i, c int) float32 {
		if chFirst {
			return out[c*n+i]
		}
		return out[i*ch+c]
	}
	cls := make([]float32, ch-4)
	var dets []Det
	for i := 0; i < n; i++ {
		best := float32(math.Inf(-1))
		for c := range cls {
			cls[c] = at(i, 4+c)
			if cls[c] > best {
				best = cls[c]
			}
		}
		if !(float64(best) >= scoreThr) {
			continue
		}
		box := fromCXCYWH(float64(at(i, 0)), float64(at(i, 1)), float64(at(i, 2)), float64(at(i, 3)))
		if !box.finite() {
			continue
		}
		dets = appendClasses(dets, cls, 1, box, scoreThr, multi)
	}
	return dets, nil
}

// NMSEnd2End reads single-output exports that already ran NMS in the graph. Two layouts, told
// apart by the last dimension:
//
//   - 7 values per row, shape [K, 7] or [1, K, 7]: batch_index, x1, y1, x2, y2, class, score.
//     This is the ONNX "end2end" export of YOLOv7/YOLOv9 used by ankandrew's open-image-models
//     plate detectors (yolo-v9-t-*-license-plate-end2end.onnx). Rows of batch index != 0 are
//     skipped (one image per call).
//   - 6 values per row, shape [K, 6] or [1, K, 6]: x1, y1, x2, y2, score, class. This is the
//     NMS-free Ultralytics export (YOLOv10, YOLO26 end2end), padded with zero-score rows.
//
// Rows with score >= scoreThr are returned; coordinates are input pixels.
// For the four-output TensorRT EfficientNMS layout see EfficientNMS.
func NMSEnd2End(out []float32, shape []int64, scoreThr float64) ([]Det, error) {
	s, err := squeezeBatch("nms-end2end", shape, 2)
	if err != nil {
		return nil, err
	}
	if err := checkLen("nms-end2end", out, shape); err != nil {
		return nil, err
	}
	k, w := int(s[0]), int(s[1])
	if w != 7 && w != 6 {
		return nil, fmt.Errorf("nms-end2end: rows of %d values in shape %v, want 7 (batch,x1,y1,x2,y2,class,score) or 6 (x1,y1,x2,y2,score,class): %w", w, shape, ErrShape)
	}
	var dets []Det
	for i := 0; i < k; i++ {
		r := out[i*w : (i+1)*w]
		var box Rect
		var score, cls float64
		if w == 7 {
			if r[0] != 0 {
				continue
			}
			box = fromXYXY(float64(r[1]), float64(r[2]), float64(r[3]), float64(r[4]))
			cls, score = float64(r[5]), float64(r[6])
		} else {
			box = fromXYXY(float64(r[0]), float64(r[1]), float64(r[2]), float64(r[3]))
			score, cls = float64(r[4]), float64(r[5])
		}
		c, ok := classIndex(cls)
		if !(score >= scoreThr) || !ok || !box.finite() {
			continue
		}
		dets = append(dets, Det{Box: box, Score: score, Class: c})
	}
	return dets, nil
}

// classIndex converts a class id carried in a float tensor; ids that are not small
// non-negative integers mean a broken output and the row is dropped.
func classIndex(v float64) (int, bool) {
	if !(v >= 0 && v < 1<<20) {
		return 0, false
	}
	return int(math.Round(v)), true
}

// EfficientNMS reads the four-output TensorRT EfficientNMS / BatchedNMS layout that
// YOLOv5/v7/v8 "end2end" exports for TensorRT produce (and ONNX exports that emulate it):
// num_dets [B,1], det_boxes [B,K,4] (x1,y1,x2,y2), det_scores [B,K], det_classes [B,K].
// Only batch 0 is read. numDets is batch 0's count; pass the integer tensor's values as they
// come (int32, int64 or float32 classes are accepted). boxShape must be [B,K,4] or [K,4];
// scores and classes must hold at least K values (batch 0 first).
func EfficientNMS[C int32 | int64 | float32](numDets int64, boxes []float32, boxShape []int64, scores []float32, classes []C, scoreThr float64) ([]Det, error) {
	s := boxShape
	if len(s) == 3 {
		if s[0] < 1 {
			return nil, fmt.Errorf("efficient-nms: box shape %v: %w", boxShape, ErrShape)
		}
		s = s[1:]
	}
	if len(s) != 2 || s[1] != 4 {
		return nil, fmt.Errorf("efficient-nms: box shape %v, want [B,K,4] or [K,4]: %w", boxShape, ErrShape)
	}
	if err := checkLen("efficient-nms", boxes, boxShape); err != nil {
		return nil, err
	}
	k := s[0]
	if numDets < 0 || numDets > k {
		return nil, fmt.Errorf("efficient-nms: num_dets %d outside [0,%d]: %w", numDets, k, ErrShape)
	}
	if int64(len(scores)) < k || int64(len(classes)) < k {
		return nil, fmt.Errorf("efficient-nms: %d scores and %d classes for %d boxes: %w", len(scores), len(classes), k, ErrShape)
	}
	var dets []Det
	for i := 0; i < int(numDets); i++ {
		b := boxes[i*4 : i*4+4]
		box := fromXYXY(float64(b[0]), float64(b[1]), float64(b[2]), float64(b[3]))
		c, ok := classIndex(float64(classes[i]))
		sc := float64(scores[i])
		if !(sc >= scoreThr) || !ok || !box.finite() {
			continue
		}
		dets = append(dets, Det{Box: box, Score: sc, Class: c})
	}
	return dets, nil
}
