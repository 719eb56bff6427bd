package evalmetrics

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
)

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestParseYOLOLabels(t *testing.T) {
	in := "\xef\xbb\xbf2 0.5 0.25 0.5 0.25\r\n\n# comment\n1.0 0.1 0.2 0.1 0.2\n0 0.1 0.1 0.3 0.1 0.2 0.4\n"
	ls, err := ParseYOLOLabels(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 {
		t.Fatalf("labels %+v", ls)
	}
	if ls[0].Class != 2 || ls[0].Line != 1 || ls[1].Class != 1 || ls[1].Line != 4 {
		t.Fatalf("labels %+v", ls)
	}
	b := ls[0].Box(640, 480)
	if !approx(b.X, 160) || !approx(b.Y, 60) || !approx(b.W, 320) || !approx(b.H, 120) {
		t.Fatalf("box %+v", b)
	}
	// Polygon (0.1,0.1) (0.3,0.1) (0.2,0.4) -> box x 0.1..0.3, y 0.1..0.4.
	p := ls[2]
	if !p.FromPolygon || !approx(p.CX, 0.2) || !approx(p.CY, 0.25) || !approx(p.W, 0.2) || !approx(p.H, 0.3) {
		t.Fatalf("polygon label %+v", p)
	}
}

func TestParseYOLOLabelsErrors(t *testing.T) {
	for in, wantLine := range map[string]int{
		"0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n":         2, // 4 fields
		"\n\n-1 0.5 0.5 0.1 0.1\n":                   3, // negative class
		"x 0.5 0.5 0.1 0.1\n":                        1,
		"0 0.5 NaN 0.1 0.1\n":                        1,
		"0 0.5 0.5 0 0.1\n":                          1, // no area
		"0 320 240 50 50\n":                          1, // pixels, not normalised
		"0 0.5 0.5 0.1 0.1 0.9\n":                    1, // 6 fields: a prediction with a score, not a label
		"0 0.5 0.5 0.1 0.1\n1 0.1 0.1 0.2 0.2 0.3\n": 2,
	} {
		_, err := ParseYOLOLabels(strings.NewReader(in))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != wantLine {
			t.Errorf("%q: err = %v, want a ParseError at line %d", in, err, wantLine)
		}
	}
}

func TestLabelPathFor(t *testing.T) {
	for in, want := range map[string]string{
		"/d/set/images/a.jpg":           "/d/set/labels/a.txt",
		"/d/images/train/images/b.JPEG": "/d/images/train/labels/b.txt",
		"/d/plates/c.png":               "/d/plates/c.txt",
	} {
		if got := LabelPathFor(in); got != want {
			t.Errorf("LabelPathFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDataYAML(t *testing.T) {
	names, err := ParseDataYAML(strings.NewReader("nc: 3\nnames: [mobile, seatbelt, windshield]\n"))
	if err != nil || strings.Join(names, ",") != "mobile,seatbelt,windshield" {
		t.Fatalf("list: %v %v", names, err)
	}
	names, err = ParseDataYAML(strings.NewReader("names:\n  1: seatbelt\n  0: mobile\n"))
	if err != nil || strings.Join(names, ",") != "mobile,seatbelt" {
		t.Fatalf("map: %v %v", names, err)
	}
	for _, bad := range []string{
		"nc: 2\nnames: [a, b, c]\n",
		"names:\n  0: a\n  2: c\n",
		"names: a\n",
		"path: .\n",
		"",
		"names: [a, '']\n",
		"names: {x: a}\n",
		"names: [a\n",
	} {
		if _, err := ParseDataYAML(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseSharedDataYAMLAndLabels(t *testing.T) {
	dir := testenv.SharedPath(t, "data", "seatbelt-phone")
	f, err := os.Open(filepath.Join(dir, "data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := ParseDataYAML(f)
	if err != nil || strings.Join(names, ",") != "mobile,seatbelt,windshield" {
		t.Fatalf("names %v %v", names, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "labels", "*.txt"))
	if len(files) != 49 {
		t.Fatalf("%d label files, want 49", len(files))
	}
	counts := make([]int, len(names))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := ParseYOLOLabels(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, l := range ls {
			counts[l.Class]++
		}
	}
	// SOURCES.md: 19 mobile, 33 seatbelt, 49 windshield boxes.
	if counts[0] != 19 || counts[1] != 33 || counts[2] != 49 {
		t.Fatalf("class counts %v, want [19 33 49]", counts)
	}
}

// Three labelled objects, four predictions, worked by hand:
//
//	p1 0.9 on g1 (A)  TP   P=1/1 R=1/3
//	p2 0.8 nothing    FP   P=1/2 R=1/3
//	p3 0.7 on g3 (B)  TP   P=2/3 R=2/3
//	p4 0.6 on g1 again FP  P=2/4 R=2/3  (g1 already taken; g2 is elsewhere)
//
// Interpolated precision: 1 up to R=1/3, 2/3 up to R=2/3, 0 beyond, so
// AP = 1/3*1 + 1/3*2/3 = 5/9.
func TestEvaluateHandComputed(t *testing.T) {
	gts := []GroundTruth{
		{Image: "A", Class: 0, Box: Box{0, 0, 10, 10}},   // g1
		{Image: "A", Class: 0, Box: Box{50, 50, 10, 10}}, // g2, never found
		{Image: "B", Class: 0, Box: Box{20, 20, 10, 10}}, // g3
	}
	preds := []Prediction{
		{Image: "A", Class: 0, Score: 0.6, Box: Box{1, 0, 10, 10}},
		{Image: "A", Class: 0, Score: 0.9, Box: Box{0, 0, 10, 10}},
		{Image: "B", Class: 0, Score: 0.7, Box: Box{21, 21, 10, 10}},
		{Image: "A", Class: 0, Score: 0.8, Box: Box{100, 100, 10, 10}},
	}
	ms := Evaluate(preds, gts, 1, 0.65)
	m := ms[0]
	if m.N != 3 || m.TP != 2 || m.FP != 1 || !approx(m.Precision, 2.0/3) || !approx(m.Recall, 2.0/3) {
		t.Fatalf("at 0.65: %+v", m)
	}
	if !approx(m.AP50, 5.0/9) {
		t.Fatalf("AP50 = %v, want 5/9", m.AP50)
	}
	m = Evaluate(preds, gts, 1, 0.75)[0]
	if m.TP != 1 || m.FP != 1 || !approx(m.Precision, 0.5) || !approx(m.Recall, 1.0/3) || !approx(m.AP50, 5.0/9) {
		t.Fatalf("at 0.75: %+v (AP must not depend on the threshold)", m)
	}
	if !approx(MeanAP(ms), 5.0/9) {
		t.Fatalf("mAP %v", MeanAP(ms))
	}
}

func TestEvaluateClassesAndMatching(t *testing.T) {
	gts := []GroundTruth{
		{Image: "A", Class: 0, Box: Box{0, 0, 10, 10}},
		{Image: "A", Class: 0, Box: Box{4, 0, 10, 10}},
		{Image: "A", Class: 2, Box: Box{0, 0, 20, 20}},
	}
	preds := []Prediction{
		// Class 1 on a class-0 object: a false positive of class 1, no help for class 0.
		{Image: "A", Class: 1, Score: 0.95, Box: Box{0, 0, 10, 10}},
		{Image: "A", Class: 0, Score: 0.9, Box: Box{0, 0, 10, 10}},
		// Best overlap is the taken first object (IoU .82), but the second one still
		// qualifies (IoU .54): matched to it.
		{Image: "A", Class: 0, Score: 0.8, Box: Box{1, 0, 10, 10}},
		// Same box on another image: no object there.
		{Image: "B", Class: 0, Score: 0.85, Box: Box{0, 0, 10, 10}},
	}
	ms := Evaluate(preds, gts, 0, 0.5) // class count inferred: 3
	if len(ms) != 3 {
		t.Fatalf("%d classes", len(ms))
	}
	if ms[0].N != 2 || ms[0].TP != 2 || ms[0].FP != 1 || !approx(ms[0].Recall, 1) {
		t.Fatalf("class 0 %+v", ms[0])
	}
	// Order 0.9 TP, 0.85 FP, 0.8 TP: AP = 1/2*1 + 1/2*2/3.
	if !approx(ms[0].AP50, 0.5+1.0/3) {
		t.Fatalf("class 0 AP %v", ms[0].AP50)
	}
	if ms[1].N != 0 || ms[1].FP != 1 || ms[1].Precision != 0 || ms[1].AP50 != 0 {
		t.Fatalf("class 1 %+v", ms[1])
	}
	if ms[2].N != 1 || ms[2].TP != 0 || ms[2].Recall != 0 || ms[2].Precision != 0 || ms[2].AP50 != 0 {
		t.Fatalf("class 2 %+v", ms[2])
	}
	// IoU threshold is respected: a 0.6 overlap fails at 0.7.
	m := EvaluateIoU([]Prediction{{Image: "A", Class: 2, Score: 1, Box: Box{0, 0, 20, 12}}}, gts, 3, 0.5, 0.7)[2]
	if m.TP != 0 || m.FP != 1 {
		t.Fatalf("IoU 0.7: %+v", m)
	}
	b, err := json.Marshal(ms[0])
	if err != nil || string(b) != `{"n":2,"precision":0.6666666666666666,"recall":1,"ap50":0.8333333333333333}` {
		t.Fatalf("json %s %v", b, err)
	}
}

func TestIoU(t *testing.T) {
	if v := IoU(Box{0, 0, 10, 10}, Box{5, 5, 10, 10}); !approx(v, 25.0/175) {
		t.Fatalf("IoU %v", v)
	}
	if v := IoU(Box{0, 0, 0, 10}, Box{0, 0, 10, 10}); v != 0 {
		t.Fatalf("degenerate IoU %v", v)
	}
}

func TestParsePlateLabels(t *testing.T) {
	in := "car1.jpg\t243\t356\t115\t57\t627WWI\nus 3.jpg 1 2 3 4 x\nb.jpg 10 20 30 40 627 WWI\n"
	ls, err := ParsePlateLabels(strings.NewReader(in))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		// "us 3.jpg" splits into a file "us" and a non-number "3.jpg".
		t.Fatalf("err %v, want a ParseError at line 2", err)
	}
	ls, err = ParsePlateLabels(strings.NewReader("car1.jpg\t243\t356\t115\t57\t627WWI\r\nb.jpg 10 20 30 40 627 WWI\n"))
	if err != nil || len(ls) != 2 {
		t.Fatalf("%+v %v", ls, err)
	}
	if ls[0].File != "car1.jpg" || ls[0].Box != (Box{243, 356, 115, 57}) || ls[0].Text != "627WWI" {
		t.Fatalf("line 1 %+v", ls[0])
	}
	if ls[1].Text != "627 WWI" || ls[1].Line != 2 {
		t.Fatalf("line 2 %+v", ls[1])
	}
	for in, line := range map[string]int{
		"a.jpg 1 2 3 4\n":            1,
		"a.jpg 1 2 3 4 X\nb 1 2 3\n": 2,
		"a.jpg 1 2 0 4 X\n":          1,
		"a.jpg 1 2 3 Inf X\n":        1,
	} {
		_, err := ParsePlateLabels(strings.NewReader(in))
		if !errors.As(err, &pe) || pe.Line != line {
			t.Errorf("%q: err %v, want line %d", in, err, line)
		}
	}
}

func TestParseSharedPlateLabels(t *testing.T) {
	dir := testenv.SharedPath(t, "data", "plates")
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	n := 0
	for _, p := range files {
		if strings.HasPrefix(filepath.Base(p), "LICENSE") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := ParsePlateLabels(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(ls) != 1 || ls[0].File != strings.TrimSuffix(filepath.Base(p), ".txt")+".jpg" {
			t.Fatalf("%s: %+v", p, ls)
		}
		n++
	}
	if n != 30 {
		t.Fatalf("%d plate files, want 30", n)
	}
}

func TestEvaluatePlates(t *testing.T) {
	m := EvaluatePlates([]PlatePair{
		{Ref: "1ABC234", Hyp: "1-abc-234"}, // exact after normalisation
		{Ref: "AB123CD", Hyp: "AB128CD"},   // 1 substitution
		{Ref: "XY12", Hyp: ""},             // missed: 4 deletions
		{Ref: "MAB1234", Hyp: "DMAB1234"},  // band glued: 1 insertion
	})
	if m.N != 4 || m.ExactCount != 1 || !approx(m.Exact, 0.25) {
		t.Fatalf("%+v", m)
	}
	if m.Edits != 6 || m.RefChars != 25 || !approx(m.CER, 6.0/25) {
		t.Fatalf("%+v", m)
	}
	if z := EvaluatePlates(nil); z.N != 0 || z.Exact != 0 || z.CER != 0 {
		t.Fatalf("empty %+v", z)
	}
	b, _ := json.Marshal(m)
	if string(b) != `{"n":4,"exact":0.25,"cer":0.24}` {
		t.Fatalf("json %s", b)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3},
		{"1ABC234", "1ABC234", 0}, {"ÄB", "AB", 1}, {"ab", "ba", 2},
	} {
		if got := Levenshtein(c.a, c.b); got != c.d {
			t.Errorf("Levenshtein(%q,%q) = %d, want %d", c.a, c.b, got, c.d)
		}
		if got := Levenshtein(c.b, c.a); got != c.d {
			t.Errorf("not symmetric on %q %q", c.a, c.b)
		}
	}
}

func FuzzParseYOLOLabels(f *testing.F) {
	f.Add("0 0.5 0.5 0.1 0.1\n1 0.1 0.1 0.3 0.1 0.2 0.4\n")
	f.Add("\xef\xbb\xbf# x\n\n2 1 1 1 1")
	f.Fuzz(func(t *testing.T, in string) {
		ls, err := ParseYOLOLabels(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for _, l := range ls {
			if l.Class < 0 || !(l.W > 0 && l.H > 0) || l.Line < 1 {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}

func FuzzParsePlateLabels(f *testing.F) {
	f.Add("car1.jpg\t243\t356\t115\t57\t627WWI\n")
	f.Add("a 1 2 3 4 A B C\r\n# c\n")
	f.Fuzz(func(t *testing.T, in string) {
		ls, err := ParsePlateLabels(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for _, l := range ls {
			if l.File == "" || l.Text == "" || !(l.Box.W > 0 && l.Box.H > 0) {
				t.Fatalf("accepted %+v", l)
			}
		}
	})
}

func FuzzParseDataYAML(f *testing.F) {
	f.Add("names: [a, b]\n")
	f.Add("nc: 1\nnames: {0: a}\n")
	f.Fuzz(func(t *testing.T, in string) {
		names, err := ParseDataYAML(strings.NewReader(in))
		if err == nil && len(names) == 0 {
			t.Fatal("no names and no error")
		}
	})
}
