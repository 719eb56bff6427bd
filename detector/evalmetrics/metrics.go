package evalmetrics

import (
	"math"
	"sort"

	"github.com/crossborder/offencecam/detector/platetext"
)

// GroundTruth is one labelled object of an image.
type GroundTruth struct {
	Image string
	Class int
	Box   Box
}

// Prediction is one detection of a model on an image.
type Prediction struct {
	Image string
	Class int
	Score float64
	Box   Box
}

// ClassMetrics are the detection metrics of one class. The JSON form is the one
// `offencecam eval --json` prints per class.
type ClassMetrics struct {
	Class     int     `json:"-"`
	N         int     `json:"n"` // ground-truth objects
	TP        int     `json:"-"` // at the score threshold
	FP        int     `json:"-"`
	Precision float64 `json:"precision"` // TP/(TP+FP) at the threshold; 0 without predictions
	Recall    float64 `json:"recall"`    // TP/N at the threshold; 0 when N is 0
	AP50      float64 `json:"ap50"`      // over all predictions given; 0 when N is 0
}

// DefaultIoU is the overlap a prediction needs to count as finding a labelled object.
const DefaultIoU = 0.5

// IoU is the intersection over union of two boxes; 0 for degenerate boxes.
func IoU(a, b Box) float64 {
	ix := math.Min(a.X+a.W, b.X+b.W) - math.Max(a.X, b.X)
	iy := math.Min(a.Y+a.H, b.Y+b.H) - math.Max(a.Y, b.Y)
	if !(ix > 0 && iy > 0) || !(a.W > 0 && a.H > 0 && b.W > 0 && b.H > 0) {
		return 0
	}
	inter := ix * iy
	return inter / (a.W*a.H + b.W*b.H - inter)
}

// Evaluate is EvaluateIoU at IoU 0.5.
func Evaluate(preds []Prediction, gts []GroundTruth, numClasses int, scoreThr float64) []ClassMetrics {
	return EvaluateIoU(preds, gts, numClasses, scoreThr, DefaultIoU)
}

// EvaluateIoU computes, per class 0..numClasses-1 (numClasses <= 0: up to the largest class
// seen), precision and recall of the predictions scoring >= scoreThr, and AP over all the
// predictions passed (so pass predictions from a low threshold, e.g. 0.001, for a meaningful
// AP; P/R use scoreThr).
//
// Matching is greedy by descending score within each image and class: a prediction takes the
// unmatched ground truth it overlaps most, if that IoU is >= iouThr (TP); otherwise it is a
// false positive. Each ground truth is matched at most once, so a duplicate detection is a
// false positive. (VOC instead marks a prediction FP when its best-overlap object is already
// taken even if another unmatched one qualifies; the two differ only for crowded boxes.)
//
// AP is the all-point interpolated area under the precision/recall curve (PASCAL VOC 2010+):
// precision made monotone from the right, summed over each recall step.
func EvaluateIoU(preds []Prediction, gts []GroundTruth, numClasses int, scoreThr, iouThr float64) []ClassMetrics {
	if numClasses <= 0 {
		for _, g := range gts {
			numClasses = max(numClasses, g.Class+1)
		}
		for _, p := range preds {
			numClasses = max(numClasses, p.Class+1)
		}
	}
	out := make([]ClassMetrics, numClasses)
	for c := range out {
		out[c].Class = c
	}
	type key struct {
		img   string
		class int
	}
	gtBy := map[key][]Box{}
	for _, g := range gts {
		if g.Class < 0 || g.Class >= numClasses {
			continue
		}
		out[g.Class].N++
		k := key{g.Image, g.Class}
		gtBy[k] = append(gtBy[k], g.Box)
	}
	order := make([]int, 0, len(preds))
	for i, p := range preds {
		if p.Class >= 0 && p.Class < numClasses && !math.IsNaN(p.Score) {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return preds[order[a]].Score > preds[order[b]].Score })

	// One pass in score order serves both AP (all predictions) and P/R at the threshold: the
	// predictions above the threshold are a prefix of that order, and greedy matching of a
	// prefix does not depend on what comes after it.
	used := map[key][]bool{}
	tpFlags := make([][]bool, numClasses)
	for _, i := range order {
		p := preds[i]
		k := key{p.Image, p.Class}
		boxes := gtBy[k]
		if used[k] == nil {
			used[k] = make([]bool, len(boxes))
		}
		best, bestIoU := -1, iouThr
		for j, g := range boxes {
			if used[k][j] {
				continue
			}
			if v := IoU(p.Box, g); v >= bestIoU {
				best, bestIoU = j, v
			}
		}
		tp := best >= 0
		if tp {
			used[k][best] = true
		}
		tpFlags[p.Class] = append(tpFlags[p.Class], tp)
		if p.Score >= scoreThr {
			if tp {
				out[p.Class].TP++
			} else {
				out[p.Class].FP++
			}
		}
	}
	for c := range out {
		m := &out[c]
		if m.TP+m.FP > 0 {
			m.Precision = float64(m.TP) / float64(m.TP+m.FP)
		}
		if m.N > 0 {
			m.Recall = float64(m.TP) / float64(m.N)
			m.AP50 = averagePrecision(tpFlags[c], m.N)
		}
	}
	return out
}

// averagePrecision is the all-point interpolated AP of a score-ordered list of TP/FP flags
// against n ground-truth objects.
func averagePrecision(flags []bool, n int) float64 {
	rec := make([]float64, 0, len(flags)+2)
	prec := make([]float64, 0, len(flags)+2)
	rec, prec = append(rec, 0), append(prec, 0)
	tp, fp := 0, 0
	for _, f := range flags {
		if f {
			tp++
		} else {
			fp++
		}
		rec = append(rec, float64(tp)/float64(n))
		prec = append(prec, float64(tp)/float64(tp+fp))
	}
	rec, prec = append(rec, 1), append(prec, 0)
	for i := len(prec) - 2; i >= 0; i-- {
		prec[i] = math.Max(prec[i], prec[i+1])
	}
	ap := 0.0
	for i := 1; i < len(rec); i++ {
		ap += (rec[i] - rec[i-1]) * prec[i]
	}
	return ap
}

// MeanAP is the mean AP50 over classes that have ground truth (0 when none has).
func MeanAP(ms []ClassMetrics) float64 {
	s, n := 0.0, 0
	for _, m := range ms {
		if m.N > 0 {
			s += m.AP50
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// PlatePair is a plate's ground truth and what the pipeline read ("" when it read nothing).
type PlatePair struct {
	Ref, Hyp string
}

// PlateMetrics are plate reading scores. The JSON form is `offencecam eval --json`'s "plates".
type PlateMetrics struct {
	N          int     `json:"n"`
	Exact      float64 `json:"exact"` // fraction of plates read exactly (after normalisation)
	CER        float64 `json:"cer"`   // sum of edit distances / sum of reference lengths
	ExactCount int     `json:"-"`
	Edits      int     `json:"-"`
	RefChars   int     `json:"-"`
}

// EvaluatePlates scores plate reads. Both sides are normalised with platetext.Normalize
// (case, spaces, dashes) before comparing, so "1-abc-234" matches "1ABC234"; character error
// rate is Levenshtein distance over runes, summed over plates, divided by the summed
// reference length (a missed plate costs its full length).
func EvaluatePlates(pairs []PlatePair) PlateMetrics {
	var m PlateMetrics
	for _, p := range pairs {
		ref, hyp := platetext.Normalize(p.Ref), platetext.Normalize(p.Hyp)
		m.N++
		if ref == hyp {
			m.ExactCount++
		}
		m.Edits += Levenshtein(ref, hyp)
		m.RefChars += len([]rune(ref))
	}
	if m.N > 0 {
		m.Exact = float64(m.ExactCount) / float64(m.N)
	}
	if m.RefChars > 0 {
		m.CER = float64(m.Edits) / float64(m.RefChars)
	}
	return m
}

// Levenshtein is the edit distance (insertions, deletions, substitutions of one rune each)
// between a and b.
func Levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
