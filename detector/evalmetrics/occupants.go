package evalmetrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Occupant label values (roadside-train labels.tsv). Only the definite ones are scored:
// "likely" is a weak positive and "unsure" means no label, so both stay out of the counts.
const (
	PhoneYes    = "yes"
	PhoneLikely = "likely"
	PhoneNo     = "no"
	BeltWorn    = "worn"
	BeltNotWorn = "not_worn"
	Unsure      = "unsure"
)

var (
	phoneValues = []string{PhoneYes, PhoneLikely, PhoneNo, Unsure}
	beltValues  = []string{BeltWorn, BeltNotWorn, Unsure}
)

// OccupantLabel is one row of an occupant label file: what a person saw of the driver of
// the image's largest vehicle.
type OccupantLabel struct {
	Stem  string
	Phone string // yes, likely, no, unsure
	Belt  string // worn, not_worn, unsure
	// Crop is the driver crop the labeller judged (pixels, top-left plus size), when the
	// file gives one in column 4 as x0,y0,x1,y1.
	Crop    Box
	HasCrop bool
	Line    int
}

// PhonePositive reports whether the phone label is scored and, if so, whether it is a
// phone held.
func (l OccupantLabel) PhonePositive() (positive, scored bool) {
	return l.Phone == PhoneYes, l.Phone == PhoneYes || l.Phone == PhoneNo
}

// BeltPositive reports whether the belt label is scored and, if so, whether the belt is
// not worn (the offence is the positive class).
func (l OccupantLabel) BeltPositive() (positive, scored bool) {
	return l.Belt == BeltNotWorn, l.Belt == BeltNotWorn || l.Belt == BeltWorn
}

// ParseOccupantLabels reads a tab-separated occupant label file: `stem phone belt` then
// optional columns. Column 4, when it is four comma-separated numbers x0,y0,x1,y1, is the
// labelled driver crop; any other extra column is ignored (notes). Values are
// case-insensitive. Blank lines and '#' lines are skipped. A stem given twice is an error,
// since one image has one driver. Errors are *ParseError naming the line.
func ParseOccupantLabels(r io.Reader) ([]OccupantLabel, error) {
	var out []OccupantLabel
	seen := map[string]int{}
	err := eachLine(r, func(n int, line string) error {
		l, err := parseOccupantLine(n, line)
		if err != nil {
			return err
		}
		if first, dup := seen[l.Stem]; dup {
			return &ParseError{n, fmt.Sprintf("stem %q already labelled at line %d", l.Stem, first)}
		}
		seen[l.Stem] = n
		out = append(out, l)
		return nil
	})
	return out, err
}

func parseOccupantLine(n int, line string) (OccupantLabel, error) {
	f := strings.Split(line, "\t")
	if len(f) < 3 {
		return OccupantLabel{}, &ParseError{n, fmt.Sprintf("%d tab-separated columns, want at least 3: stem phone belt", len(f))}
	}
	l := OccupantLabel{
		Stem:  strings.TrimSpace(f[0]),
		Phone: strings.ToLower(strings.TrimSpace(f[1])),
		Belt:  strings.ToLower(strings.TrimSpace(f[2])),
		Line:  n,
	}
	if l.Stem == "" {
		return l, &ParseError{n, "empty stem"}
	}
	if !oneOf(l.Phone, phoneValues) {
		return l, &ParseError{n, fmt.Sprintf("phone %q: want one of %s", l.Phone, strings.Join(phoneValues, ", "))}
	}
	if !oneOf(l.Belt, beltValues) {
		return l, &ParseError{n, fmt.Sprintf("belt %q: want one of %s", l.Belt, strings.Join(beltValues, ", "))}
	}
	if len(f) > 3 {
		box, isBox, err := parseCrop(strings.TrimSpace(f[3]))
		if err != nil {
			return l, &ParseError{n, "column 4 (driver crop x0,y0,x1,y1): " + err.Error()}
		}
		l.Crop, l.HasCrop = box, isBox
	}
	return l, nil
}

// parseCrop reads "x0,y0,x1,y1". A field without exactly three commas is not a box (a note
// in column 4): isBox false, no error. Four fields that are not a box with area are an error,
// since they were meant as one.
func parseCrop(s string) (b Box, isBox bool, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return Box{}, false, nil
	}
	var v [4]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return Box{}, false, fmt.Errorf("%q is not a finite number", p)
		}
		v[i] = x
	}
	b = Box{X: v[0], Y: v[1], W: v[2] - v[0], H: v[3] - v[1]}
	if !(b.W > 0 && b.H > 0) {
		return Box{}, false, fmt.Errorf("%s has no area (want x1 > x0 and y1 > y0)", s)
	}
	if math.IsInf(b.W, 0) || math.IsInf(b.H, 0) {
		return Box{}, false, fmt.Errorf("%s is too large", s)
	}
	return b, true, nil
}

func oneOf(s string, vals []string) bool {
	for _, v := range vals {
		if s == v {
			return true
		}
	}
	return false
}

// Outcome is one image's label and prediction for a binary offence.
type Outcome struct {
	Positive  bool    // the label says the offence
	Predicted bool    // the pipeline flagged it at the configured thresholds
	Score     float64 // the score the threshold applies to; <= 0 means it can never be flagged
}

// BinaryMetrics are image-level precision and recall of one offence. The JSON form is the
// one `offencecam eval --json` prints.
type BinaryMetrics struct {
	Precision float64 `json:"precision"` // TP/(TP+FP); 0 without predicted positives
	Recall    float64 `json:"recall"`    // TP/(TP+FN); 0 without positives
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
	TN        int     `json:"tn"`
	N         int     `json:"n"` // images scored: TP+FP+FN+TN
}

// CountBinary counts the outcomes' confusion matrix.
func CountBinary(outs []Outcome) BinaryMetrics {
	var m BinaryMetrics
	for _, o := range outs {
		switch {
		case o.Positive && o.Predicted:
			m.TP++
		case o.Predicted:
			m.FP++
		case o.Positive:
			m.FN++
		default:
			m.TN++
		}
	}
	m.N = len(outs)
	m.Precision = ratio(m.TP, m.TP+m.FP)
	m.Recall = ratio(m.TP, m.TP+m.FN)
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// PRPoint is precision and recall when every score >= Threshold is flagged.
type PRPoint struct {
	Threshold float64 `json:"threshold"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
}

// PRCurve is the precision-recall curve over the outcomes' scores, one point per distinct
// positive score, highest threshold first (recall rising). A score <= 0 (a state below its
// visibility gate, an image without a driver) is never flagged at any threshold, so it gives
// no point but still counts in the recall's denominator. Empty when no positive score or no
// positive label.
func PRCurve(outs []Outcome) []PRPoint {
	positives := 0
	var scored []Outcome
	for _, o := range outs {
		if o.Positive {
			positives++
		}
		if o.Score > 0 && !math.IsNaN(o.Score) {
			scored = append(scored, o)
		}
	}
	if positives == 0 {
		return nil
	}
	sort.SliceStable(scored, func(i, j int) bool { return scored[i].Score > scored[j].Score })
	var curve []PRPoint
	tp, fp := 0, 0
	for i, o := range scored {
		if o.Positive {
			tp++
		} else {
			fp++
		}
		// Equal scores fall on the same side of any threshold: one point after the last.
		if i+1 < len(scored) && scored[i+1].Score == o.Score {
			continue
		}
		curve = append(curve, PRPoint{Threshold: o.Score, Precision: ratio(tp, tp+fp), Recall: ratio(tp, positives), TP: tp, FP: fp})
	}
	return curve
}

// ThresholdForPrecision is the curve's point with the most recall among those with
// precision >= minPrecision, the highest threshold of that recall (the fewest false
// positives). ok is false when no point reaches minPrecision.
func ThresholdForPrecision(curve []PRPoint, minPrecision float64) (p PRPoint, ok bool) {
	for _, c := range curve {
		if c.Precision < minPrecision {
			continue
		}
		if !ok || c.Recall > p.Recall {
			p, ok = c, true
		}
	}
	return p, ok
}

// AveragePrecision is the all-point interpolated area under the curve (as AP50 for boxes):
// precision made monotone from the right, summed over each recall step. 0 for no curve.
func AveragePrecision(curve []PRPoint) float64 {
	best := make([]float64, len(curve))
	for i := len(curve) - 1; i >= 0; i-- {
		best[i] = curve[i].Precision
		if i+1 < len(curve) {
			best[i] = math.Max(best[i], best[i+1])
		}
	}
	ap, prevRecall := 0.0, 0.0
	for i, c := range curve {
		ap += (c.Recall - prevRecall) * best[i]
		prevRecall = c.Recall
	}
	return ap
}

// ParseFolds reads a folds file written by training (folds.tsv): `stem<TAB>k` per line, k a
// non-negative fold number; '#' lines (the header) and blank lines are skipped. A stem given
// twice is an error: an image was held out of exactly one fold's training. Errors are
// *ParseError naming the line.
func ParseFolds(r io.Reader) (map[string]int, error) {
	out := map[string]int{}
	lines := map[string]int{}
	err := eachLine(r, func(n int, line string) error {
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			return &ParseError{n, fmt.Sprintf("%d tab-separated columns, want 2: stem fold", len(f))}
		}
		stem := strings.TrimSpace(f[0])
		if stem == "" {
			return &ParseError{n, "empty stem"}
		}
		k, err := strconv.Atoi(strings.TrimSpace(f[1]))
		if err != nil || k < 0 || k > 1000 {
			return &ParseError{n, fmt.Sprintf("fold %q is not a number 0..1000", f[1])}
		}
		if first, dup := lines[stem]; dup {
			return &ParseError{n, fmt.Sprintf("stem %q already has a fold at line %d", stem, first)}
		}
		out[stem], lines[stem] = k, n
		return nil
	})
	return out, err
}
