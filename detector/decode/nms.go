package decode

import (
	"fmt"
	"math"
	"sort"
)

// IoU is the intersection over union of two boxes; 0 when either is degenerate.
func IoU(a, b Rect) float64 {
	ix := math.Min(a.X2(), b.X2()) - math.Max(a.X, b.X)
	iy := math.Min(a.Y2(), b.Y2()) - math.Max(a.Y, b.Y)
	if !(ix > 0 && iy > 0) {
		return 0
	}
	inter := ix * iy
	union := a.Area() + b.Area() - inter
	if !(union > 0) {
		return 0
	}
	return inter / union
}

// NMS is greedy non-maximum suppression: detections are taken by descending score and one is
// dropped when its IoU with an already kept one exceeds iouThr. With classAware, only
// detections of the same class suppress each other (a phone inside a person box survives).
// The input slice is not modified; the result is sorted by descending score (stable, so equal
// scores keep their input order).
func NMS(dets []Det, iouThr float64, classAware bool) []Det {
	order := make([]int, len(dets))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return dets[order[a]].Score > dets[order[b]].Score })
	kept := make([]Det, 0, len(dets))
	for _, i := range order {
		d := dets[i]
		keep := true
		for _, k := range kept {
			if classAware && k.Class != d.Class {
				continue
			}
			if IoU(k.Box, d.Box) > iouThr {
				keep = false
				break
			}
		}
		if keep {
			kept = append(kept, d)
		}
	}
	return kept
}

// Softmax returns exp(x_i - max) / sum, computed in float64 for stability. Non-finite inputs
// give a uniform (for all -Inf) or NaN-free best effort result: NaN logits count as -Inf.
func Softmax(logits []float32) []float32 {
	out := make([]float32, len(logits))
	if len(logits) == 0 {
		return out
	}
	mx := math.Inf(-1)
	for _, v := range logits {
		if f := float64(v); f > mx {
			mx = f
		}
	}
	if math.IsInf(mx, 1) {
		// +Inf logits share all the mass.
		n := 0
		for _, v := range logits {
			if math.IsInf(float64(v), 1) {
				n++
			}
		}
		for i, v := range logits {
			if math.IsInf(float64(v), 1) {
				out[i] = float32(1 / float64(n))
			}
		}
		return out
	}
	if math.IsInf(mx, -1) {
		for i := range out {
			out[i] = float32(1 / float64(len(out)))
		}
		return out
	}
	sum := 0.0
	ex := make([]float64, len(logits))
	for i, v := range logits {
		f := float64(v)
		if math.IsNaN(f) {
			continue
		}
		ex[i] = math.Exp(f - mx)
		sum += ex[i]
	}
	for i := range out {
		out[i] = float32(ex[i] / sum)
	}
	return out
}

// looksLikeProbabilities says whether a vector is already a probability distribution (all in
// [0,1], summing to 1 within 1e-3): exports differ on whether the graph ends in a softmax,
// and applying it twice would flatten the scores.
func looksLikeProbabilities(v []float32) bool {
	sum := 0.0
	for _, x := range v {
		f := float64(x)
		if !(f >= 0 && f <= 1) {
			return false
		}
		sum += f
	}
	return math.Abs(sum-1) < 1e-3
}

// Classify reads a classifier output of shape [1, C] or [C] and returns the best class with
// its probability. Logits are passed through Softmax; an output that already is a
// probability distribution is used as is.
func Classify(out []float32, shape []int64) (class int, score float64, err error) {
	s, err := squeezeBatch("softmax", shape, 1)
	if err != nil {
		return 0, 0, err
	}
	if err := checkLen("softmax", out, shape); err != nil {
		return 0, 0, err
	}
	if s[0] < 1 {
		return 0, 0, fmt.Errorf("softmax: no classes in shape %v: %w", shape, ErrShape)
	}
	p := out
	if !looksLikeProbabilities(out) {
		p = Softmax(out)
	}
	best := -1
	for i, v := range p {
		if best < 0 || v > p[best] {
			best = i
		}
	}
	if math.IsNaN(float64(p[best])) {
		return 0, 0, fmt.Errorf("softmax: output is not a number")
	}
	return best, float64(p[best]), nil
}
