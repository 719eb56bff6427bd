package evalmetrics

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseOccupantLabels(t *testing.T) {
	in := "\xef\xbb\xbf# stem\tphone\tbelt\tdriver_crop_x0,y0,x1,y1\tnote\r\n" +
		"a\tyes\tworn\t385,173,640,422\thands on wheel, grey strap\r\n" +
		"\n" +
		"b\tLikely\tUnsure\n" + // values are case-insensitive; no crop
		"c\tno\tnot_worn\tdark cabin\textra\tcolumns\n" + // column 4 a note, not a box: ignored
		" d \tunsure\tworn\t 10, 20 ,30,60\n"
	ls, err := ParseOccupantLabels(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, ls, 4)
	assert.Equal(t, OccupantLabel{Stem: "a", Phone: PhoneYes, Belt: BeltWorn, Crop: Box{X: 385, Y: 173, W: 255, H: 249}, HasCrop: true, Line: 2}, ls[0])
	assert.Equal(t, OccupantLabel{Stem: "b", Phone: PhoneLikely, Belt: Unsure, Line: 4}, ls[1])
	assert.Equal(t, OccupantLabel{Stem: "c", Phone: PhoneNo, Belt: BeltNotWorn, Line: 5}, ls[2])
	assert.Equal(t, OccupantLabel{Stem: "d", Phone: Unsure, Belt: BeltWorn, Crop: Box{X: 10, Y: 20, W: 20, H: 40}, HasCrop: true, Line: 6}, ls[3])

	// Only yes/no and worn/not_worn are scored; the offence is the positive class.
	for _, c := range []struct {
		l                     OccupantLabel
		phonePos, phoneScored bool
		beltPos, beltScored   bool
	}{
		{ls[0], true, true, false, true},
		{ls[1], false, false, false, false},
		{ls[2], false, true, true, true},
		{ls[3], false, false, false, true},
	} {
		pos, ok := c.l.PhonePositive()
		assert.Equal(t, [2]bool{c.phonePos, c.phoneScored}, [2]bool{pos, ok}, "phone of %s", c.l.Stem)
		pos, ok = c.l.BeltPositive()
		assert.Equal(t, [2]bool{c.beltPos, c.beltScored}, [2]bool{pos, ok}, "belt of %s", c.l.Stem)
	}
}

func TestParseOccupantLabelsErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		line int
		msg  string
	}{
		{"a\tyes\tworn\nb yes worn\n", 2, "want at least 3"}, // spaces are not tabs
		{"# h\n\na\tmaybe\tworn\n", 3, `phone "maybe": want one of yes, likely, no, unsure`},
		{"a\tyes\tbelted\n", 1, `belt "belted"`},
		{"a\tyes\tworn\n\tno\tworn\n", 2, "want at least 3"}, // leading tab trimmed away with the stem
		{"a\tyes\tworn\nb\tno\tworn\na\tno\tworn\n", 3, `stem "a" already labelled at line 1`},
		{"a\tyes\tworn\t10,20,x,40\n", 1, `column 4 (driver crop x0,y0,x1,y1): "x" is not a finite number`},
		{"a\tyes\tworn\t10,20,10,40\n", 1, "has no area"},
		{"a\tyes\tworn\t10,NaN,30,40\n", 1, "not a finite number"},
	} {
		_, err := ParseOccupantLabels(strings.NewReader(c.in))
		var pe *ParseError
		if assert.True(t, errors.As(err, &pe), "%q: err = %v", c.in, err) {
			assert.Equal(t, c.line, pe.Line, "%q", c.in)
			assert.Contains(t, pe.Error(), c.msg, "%q", c.in)
			assert.Contains(t, pe.Error(), "line ", "%q", c.in)
		}
	}
	ls, err := ParseOccupantLabels(strings.NewReader("# only a header\n"))
	assert.NoError(t, err)
	assert.Empty(t, ls)
}

func TestParseFolds(t *testing.T) {
	folds, err := ParseFolds(strings.NewReader("# stem\tfold\na\t0\nb\t3\r\n\nc\t1\textra\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"a": 0, "b": 3, "c": 1}, folds)
	for in, line := range map[string]int{
		"a\t0\nb\n":          2,
		"a\tx\n":             1,
		"a\t-1\n":            1,
		"a\t0\nb\t1\na\t2\n": 3,
		"# h\n \t1\n":        2,
	} {
		_, err := ParseFolds(strings.NewReader(in))
		var pe *ParseError
		if assert.True(t, errors.As(err, &pe), "%q: %v", in, err) {
			assert.Equal(t, line, pe.Line, "%q", in)
		}
	}
}

func TestCountBinary(t *testing.T) {
	o := func(pos, pred bool) Outcome { return Outcome{Positive: pos, Predicted: pred} }
	m := CountBinary([]Outcome{o(true, true), o(true, true), o(true, false), o(false, true), o(false, false), o(false, false), o(false, false)})
	assert.Equal(t, BinaryMetrics{TP: 2, FN: 1, FP: 1, TN: 3, N: 7, Precision: 2.0 / 3, Recall: 2.0 / 3}, m)
	// Nothing predicted, nothing positive: 0, not NaN.
	m = CountBinary([]Outcome{o(false, false)})
	assert.Equal(t, BinaryMetrics{TN: 1, N: 1}, m)
	assert.Equal(t, BinaryMetrics{}, CountBinary(nil))
}

// prOutcomes: 5 positives, one of them gated (score 0), a tie at 0.6 between a positive and a
// negative.
var prOutcomes = []Outcome{
	{Score: 0.9, Positive: true}, {Score: 0.8, Positive: true}, {Score: 0.7},
	{Score: 0.6, Positive: true}, {Score: 0.6}, {Score: 0.5, Positive: true},
	{Score: 0, Positive: true}, {Score: 0.3},
}

func TestPRCurve(t *testing.T) {
	curve := PRCurve(prOutcomes)
	want := []PRPoint{
		{Threshold: 0.9, TP: 1, FP: 0, Precision: 1, Recall: 0.2},
		{Threshold: 0.8, TP: 2, FP: 0, Precision: 1, Recall: 0.4},
		{Threshold: 0.7, TP: 2, FP: 1, Precision: 2.0 / 3, Recall: 0.4},
		{Threshold: 0.6, TP: 3, FP: 2, Precision: 0.6, Recall: 0.6}, // the tie is one point
		{Threshold: 0.5, TP: 4, FP: 2, Precision: 4.0 / 6, Recall: 0.8},
		{Threshold: 0.3, TP: 4, FP: 3, Precision: 4.0 / 7, Recall: 0.8},
	}
	require.Len(t, curve, len(want))
	for i := range want {
		assert.InDelta(t, want[i].Threshold, curve[i].Threshold, 1e-12, "point %d", i)
		assert.Equal(t, want[i].TP, curve[i].TP, "point %d", i)
		assert.Equal(t, want[i].FP, curve[i].FP, "point %d", i)
		assert.InDelta(t, want[i].Precision, curve[i].Precision, 1e-12, "point %d", i)
		assert.InDelta(t, want[i].Recall, curve[i].Recall, 1e-12, "point %d", i)
	}
	// Precision made monotone from the right: 0.2*1 + 0.2*1 + 0.2*2/3 + 0.2*2/3.
	assert.InDelta(t, 0.4+0.4*2/3, AveragePrecision(curve), 1e-12)

	assert.Empty(t, PRCurve([]Outcome{{Score: 0.9}}), "no positive label: no recall to plot")
	assert.Empty(t, PRCurve([]Outcome{{Score: 0, Positive: true}}), "no score above 0: nothing can be flagged")
	assert.Zero(t, AveragePrecision(nil))
}

func TestThresholdForPrecision(t *testing.T) {
	curve := PRCurve(prOutcomes)
	for _, c := range []struct {
		minP, thr, recall float64
	}{
		{0.9, 0.8, 0.4},  // 0.9 and 0.8 both P 1; 0.8 has more recall
		{1, 0.8, 0.4},    // precision exactly 1 counts
		{0.65, 0.5, 0.8}, // P 4/6 at recall 0.8; 0.3 has the same recall at lower precision
		{0.5, 0.5, 0.8},  // equal recall: the higher threshold, fewer false positives
	} {
		p, ok := ThresholdForPrecision(curve, c.minP)
		require.True(t, ok, "min precision %v", c.minP)
		assert.InDelta(t, c.thr, p.Threshold, 1e-12, "min precision %v", c.minP)
		assert.InDelta(t, c.recall, p.Recall, 1e-12, "min precision %v", c.minP)
		assert.GreaterOrEqual(t, p.Precision, c.minP)
	}
	_, ok := ThresholdForPrecision(curve, 1.01)
	assert.False(t, ok)
	_, ok = ThresholdForPrecision(nil, 0.9)
	assert.False(t, ok)
}

func FuzzParseOccupantLabels(f *testing.F) {
	f.Add("# stem\tphone\tbelt\na\tyes\tworn\t385,173,640,422\tnote\n")
	f.Add("\xef\xbb\xbfb\tLIKELY\tunsure\r\nc\tno\tnot_worn\t1,2,3\n")
	f.Add("a\tyes\tworn\na\tno\tworn\n")
	f.Add("a\tyes\tworn\t1e308,0,-1e308,1\n")
	f.Fuzz(func(t *testing.T, in string) {
		ls, err := ParseOccupantLabels(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, l := range ls {
			if l.Stem == "" || seen[l.Stem] || l.Line < 1 || !oneOf(l.Phone, phoneValues) || !oneOf(l.Belt, beltValues) {
				t.Fatalf("accepted %+v", l)
			}
			if l.HasCrop && !(l.Crop.W > 0 && l.Crop.H > 0) {
				t.Fatalf("accepted a crop without area: %+v", l)
			}
			seen[l.Stem] = true
		}
	})
}
