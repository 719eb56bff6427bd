package decode

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
)

const eps = 1e-4

func near(a, b float64) bool { return math.Abs(a-b) < eps }

func assertRect(t *testing.T, got, want Rect) {
	t.Helper()
	if !near(got.X, want.X) || !near(got.Y, want.Y) || !near(got.W, want.W) || !near(got.H, want.H) {
		t.Fatalf("box = %+v, want %+v", got, want)
	}
}

func assertShapeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrShape) {
		t.Fatalf("err = %v, want ErrShape", err)
	}
}

// yoloxTensor builds a [1,N,5+nc] output for input w x h and strides, all zero.
func yoloxTensor(w, h int, strides []int, nc int) ([]float32, []int64) {
	n := 0
	for _, s := range strides {
		n += (h / s) * (w / s)
	}
	return make([]float32, n*(5+nc)), []int64{1, int64(n), int64(5 + nc)}
}

func TestYOLOXDecodesKnownCells(t *testing.T) {
	strides := []int{8, 16}
	out, shape := yoloxTensor(64, 32, strides, 3) // 4*8 + 2*4 = 40 cells of 8 values
	if shape[1] != 40 {
		t.Fatalf("cells = %d", shape[1])
	}
	// Stride 16, grid x=2, y=1: index 32 + 1*4 + 2.
	c := out[38*8 : 39*8]
	copy(c, []float32{0.5, 0.25, float32(math.Log(2)), 0, 0.9, 0.1, 0.8, 0.3})
	// Stride 8, grid x=7, y=3: index 3*8+7, score 0.5*0.5 = 0.25 (below 0.3).
	c = out[31*8 : 32*8]
	copy(c, []float32{0, 0, 0, 0, 0.5, 0.5, 0.4, 0.45})

	dets, err := YOLOX(out, shape, 64, 32, strides, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 {
		t.Fatalf("dets = %+v, want 1", dets)
	}
	d := dets[0]
	// cx = (0.5+2)*16 = 40, cy = (0.25+1)*16 = 20, w = 2*16, h = 16.
	assertRect(t, d.Box, Rect{24, 12, 32, 16})
	if d.Class != 1 || !near(d.Score, 0.72) {
		t.Fatalf("class %d score %v, want 1 and 0.72", d.Class, d.Score)
	}

	dets, err = YOLOX(out, shape, 64, 32, strides, 0.2)
	if err != nil || len(dets) != 2 {
		t.Fatalf("thr 0.2: %v %+v, want 2 dets", err, dets)
	}
	// Stride 8 cell (7,3): cx = 7*8 = 56, cy = 24, w = h = 8; best class 0.
	assertRect(t, dets[0].Box, Rect{52, 20, 8, 8})
	if dets[0].Class != 0 || !near(dets[0].Score, 0.25) {
		t.Fatalf("second det %+v", dets[0])
	}

	multi, err := YOLOXMultiLabel(out, shape, 64, 32, strides, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	// Cell 31: 0.25, 0.2, 0.225 all >= 0.2; cell 38: 0.72 and 0.27 (0.05 < 0.2).
	if len(multi) != 5 {
		t.Fatalf("multi-label dets = %d, want 5: %+v", len(multi), multi)
	}
}

func TestYOLOXShapeErrors(t *testing.T) {
	out, shape := yoloxTensor(64, 32, []int{8, 16}, 3)
	cases := map[string]func() error{
		"cells do not match strides": func() error { _, err := YOLOX(out, shape, 64, 32, []int{8}, 0.3); return err },
		"data shorter than shape":    func() error { _, err := YOLOX(out[:10], shape, 64, 32, []int{8, 16}, 0.3); return err },
		"batch of two":               func() error { _, err := YOLOX(out, []int64{2, 20, 8}, 64, 32, []int{8, 16}, 0.3); return err },
		"no classes":                 func() error { _, err := YOLOX(out, []int64{1, 64, 5}, 64, 32, []int{8, 16}, 0.3); return err },
		"zero stride":                func() error { _, err := YOLOX(out, shape, 64, 32, []int{0}, 0.3); return err },
		"negative dim":               func() error { _, err := YOLOX(out, []int64{1, -40, -8}, 64, 32, []int{8, 16}, 0.3); return err },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { assertShapeErr(t, f()) })
	}
}

func TestYOLOv8BothLayouts(t *testing.T) {
	// 3 candidates, 2 classes; candidate 1 is a class-1 box at (50,40) 20x10.
	rows := [][]float32{
		{10, 10, 4, 4, 0.1, 0.05},
		{50, 40, 20, 10, 0.2, 0.9},
		{30, 30, 8, 8, 0.6, 0.1},
	}
	const n = 10 // candidates 3..9 are all zero
	chFirst := make([]float32, 6*n)
	trans := make([]float32, n*6)
	for i, r := range rows {
		for c, v := range r {
			chFirst[c*n+i] = v
			trans[i*6+c] = v
		}
	}
	for name, tc := range map[string]struct {
		out   []float32
		shape []int64
		nc    int
	}{
		"channels first":           {chFirst, []int64{1, 6, n}, 2},
		"transposed":               {trans, []int64{1, n, 6}, 2},
		"transposed without batch": {trans, []int64{n, 6}, 2},
	} {
		t.Run(name, func(t *testing.T) {
			dets, err := YOLOv8(tc.out, tc.shape, tc.nc, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			if len(dets) != 2 {
				t.Fatalf("dets = %+v", dets)
			}
			assertRect(t, dets[0].Box, Rect{40, 35, 20, 10})
			if dets[0].Class != 1 || !near(dets[0].Score, 0.9) {
				t.Fatalf("det 0 = %+v", dets[0])
			}
			if dets[1].Class != 0 || !near(dets[1].Score, 0.6) {
				t.Fatalf("det 1 = %+v", dets[1])
			}
		})
	}
	// Inferred layout: the smaller dimension (6) is channels.
	for _, shape := range [][]int64{{1, 6, n}, {1, n, 6}} {
		data := chFirst
		if shape[1] == n {
			data = trans
		}
		dets, err := YOLOv8(data, shape, 0, 0.5)
		if err != nil || len(dets) != 2 || dets[0].Class != 1 {
			t.Fatalf("inferred layout %v: %v %+v", shape, err, dets)
		}
	}
	_, err := YOLOv8(chFirst, []int64{1, 6, n}, 5, 0.5)
	assertShapeErr(t, err)
	_, err = YOLOv8(chFirst[:4*15], []int64{1, 4, 15}, 0, 0.5)
	assertShapeErr(t, err)
}

func TestNMSEnd2EndLayouts(t *testing.T) {
	seven := []float32{
		0, 10, 20, 50, 60, 3, 0.9,
		1, 0, 0, 5, 5, 1, 0.99, // other image in the batch
		0, 1, 1, 2, 2, 0, 0.1, // below threshold
	}
	dets, err := NMSEnd2End(seven, []int64{3, 7}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || dets[0].Class != 3 || !near(dets[0].Score, 0.9) {
		t.Fatalf("7-wide: %+v", dets)
	}
	assertRect(t, dets[0].Box, Rect{10, 20, 40, 40})

	six := []float32{
		5, 6, 15, 26, 0.8, 2,
		0, 0, 0, 0, 0, 0, // padding row
	}
	dets, err = NMSEnd2End(six, []int64{1, 2, 6}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || dets[0].Class != 2 {
		t.Fatalf("6-wide: %+v", dets)
	}
	assertRect(t, dets[0].Box, Rect{5, 6, 10, 20})

	_, err = NMSEnd2End(six, []int64{3, 4}, 0.25)
	assertShapeErr(t, err)
	_, err = NMSEnd2End(six[:11], []int64{2, 6}, 0.25)
	assertShapeErr(t, err)
}

func TestEfficientNMS(t *testing.T) {
	boxes := []float32{10, 10, 30, 40, 0, 0, 9, 9, 7, 7, 8, 8}
	scores := []float32{0.95, 0.5, 0.99}
	classes := []int32{2, 0, 1}
	dets, err := EfficientNMS(2, boxes, []int64{1, 3, 4}, scores, classes, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	// The third box is beyond num_dets and must be ignored despite its score.
	if len(dets) != 2 || dets[0].Class != 2 || dets[1].Class != 0 {
		t.Fatalf("dets = %+v", dets)
	}
	assertRect(t, dets[0].Box, Rect{10, 10, 20, 30})
	_, err = EfficientNMS(4, boxes, []int64{1, 3, 4}, scores, classes, 0.3)
	assertShapeErr(t, err)
	_, err = EfficientNMS(1, boxes, []int64{1, 3, 4}, scores[:1], classes, 0.3)
	assertShapeErr(t, err)
}

func TestIoUAndNMS(t *testing.T) {
	if got := IoU(Rect{0, 0, 10, 10}, Rect{5, 0, 10, 10}); !near(got, 50.0/150) {
		t.Fatalf("IoU = %v, want 1/3", got)
	}
	if got := IoU(Rect{0, 0, 10, 10}, Rect{20, 20, 5, 5}); got != 0 {
		t.Fatalf("disjoint IoU = %v", got)
	}
	if got := IoU(Rect{0, 0, 0, 10}, Rect{0, 0, 0, 10}); got != 0 {
		t.Fatalf("degenerate IoU = %v", got)
	}
	a := Det{Box: Rect{0, 0, 10, 10}, Score: 0.9, Class: 0}
	b := Det{Box: Rect{1, 0, 10, 10}, Score: 0.8, Class: 0} // IoU 0.818 with a
	c := Det{Box: Rect{0, 1, 10, 10}, Score: 0.7, Class: 1} // overlaps a, other class
	d := Det{Box: Rect{50, 50, 10, 10}, Score: 0.95, Class: 0}
	in := []Det{b, c, a, d}

	aware := NMS(in, 0.5, true)
	if len(aware) != 3 || aware[0].Score != 0.95 || aware[1].Score != 0.9 || aware[2].Class != 1 {
		t.Fatalf("class-aware NMS = %+v, want d, a, c", aware)
	}
	agnostic := NMS(in, 0.5, false)
	if len(agnostic) != 2 || agnostic[1].Score != 0.9 {
		t.Fatalf("class-agnostic NMS = %+v, want d, a", agnostic)
	}
	if in[0].Score != 0.8 {
		t.Fatal("NMS reordered its input")
	}
	// A threshold above the overlap keeps both same-class boxes.
	if got := NMS([]Det{a, b}, 0.9, true); len(got) != 2 {
		t.Fatalf("NMS at 0.9 = %+v", got)
	}
}

func TestSoftmaxAndClassify(t *testing.T) {
	p := Softmax([]float32{0, float32(math.Log(3))})
	if !near(float64(p[0]), 0.25) || !near(float64(p[1]), 0.75) {
		t.Fatalf("softmax = %v", p)
	}
	// Large logits must not overflow.
	p = Softmax([]float32{1000, 1000})
	if !near(float64(p[0]), 0.5) {
		t.Fatalf("softmax of large logits = %v", p)
	}
	c, s, err := Classify([]float32{0.1, 0.7, 0.2}, []int64{1, 3})
	if err != nil || c != 1 || !near(s, 0.7) {
		t.Fatalf("probabilities: %d %v %v, want 1 0.7 (not re-softmaxed)", c, s, err)
	}
	c, s, err = Classify([]float32{2, 0, float32(math.Log(2)) + 2}, []int64{3})
	if err != nil || c != 2 || !near(s, 2.0/(3+math.Exp(-2))) {
		t.Fatalf("logits: %d %v %v", c, s, err)
	}
	_, _, err = Classify([]float32{1, 2}, []int64{1, 3})
	assertShapeErr(t, err)
	_, _, err = Classify(nil, []int64{1, 0})
	assertShapeErr(t, err)
}

func TestCTCGreedy(t *testing.T) {
	dict := []string{"", "A", "B"}
	// Steps argmax: A A blank A B B -> "AAB"
	probs := []float32{
		0.1, 0.8, 0.1,
		0.1, 0.9, 0.0,
		0.7, 0.2, 0.1,
		0.2, 0.6, 0.2,
		0.1, 0.2, 0.7,
		0.0, 0.1, 0.9,
	}
	text, conf, mean, err := CTCGreedy(probs, 6, 3, dict, 0)
	if err != nil {
		t.Fatal(err)
	}
	if text != "AAB" {
		t.Fatalf("text = %q, want AAB", text)
	}
	want := []float32{0.8, 0.6, 0.7}
	for i := range want {
		if !near(float64(conf[i]), float64(want[i])) {
			t.Fatalf("charConf = %v, want %v", conf, want)
		}
	}
	if !near(float64(mean), 0.7) {
		t.Fatalf("mean = %v", mean)
	}
	// Without a blank between them, repeats collapse.
	text, _, _, _ = CTCGreedy(probs[:6], 2, 3, dict, 0)
	if text != "A" {
		t.Fatalf("AA -> %q, want A", text)
	}
	text, conf, mean, err = CTCGreedy(probs[6:9], 1, 3, dict, 0)
	if err != nil || text != "" || len(conf) != 0 || mean != 0 {
		t.Fatalf("all blank: %q %v %v %v", text, conf, mean, err)
	}
	_, _, _, err = CTCGreedy(probs, 6, 3, dict[:2], 0)
	assertShapeErr(t, err)
	_, _, _, err = CTCGreedy(probs, 5, 3, dict, 0)
	assertShapeErr(t, err)
	_, _, _, err = CTCGreedy(probs, 6, 3, dict, 3)
	assertShapeErr(t, err)
	text, _, _, err = CTCOutput(probs, []int64{1, 6, 3}, dict, 0)
	if err != nil || text != "AAB" {
		t.Fatalf("CTCOutput: %q %v", text, err)
	}
}

func TestLoadDict(t *testing.T) {
	d, err := LoadDict(strings.NewReader("a\r\nb\nc"), true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d, "|") != "|a|b|c| " {
		t.Fatalf("dict = %q", d)
	}
	if _, err := LoadDict(strings.NewReader("a\n\nb\n"), false); err == nil {
		t.Fatal("empty line accepted")
	}
	if _, err := LoadDict(strings.NewReader(""), false); err == nil {
		t.Fatal("empty dictionary accepted")
	}
}

// The PP-OCRv4 rec model has 6625 classes: blank + 6623 dictionary lines + space.
func TestLoadDictPPOCRKeys(t *testing.T) {
	f, err := os.Open(testenv.ModelFile(t, "ppocr_keys_v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := LoadDict(f, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 6625 {
		t.Fatalf("classes = %d, want 6625", len(d))
	}
	if d[0] != "" || d[len(d)-1] != " " {
		t.Fatalf("blank %q / last %q", d[0], d[len(d)-1])
	}
}

func TestFastPlateOCR(t *testing.T) {
	alphabet := "AB1_"
	// Two plates, 4 slots: "A_1_" -> "A1"; "B1B_" -> "B1B".
	out := []float32{
		0.9, 0.05, 0.05, 0,
		0, 0, 0.2, 0.8,
		0.1, 0, 0.7, 0.2,
		0, 0, 0, 1,

		0, 1, 0, 0,
		0, 0, 1, 0,
		0.3, 0.6, 0.1, 0,
		0, 0, 0, 1,
	}
	reads, err := FastPlateOCR(out, []int64{2, 4, 4}, alphabet, '_')
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 2 || reads[0].Text != "A1" || reads[1].Text != "B1B" {
		t.Fatalf("reads = %+v", reads)
	}
	if len(reads[0].CharConf) != 2 || !near(float64(reads[0].CharConf[1]), 0.7) || !near(float64(reads[0].Conf), 0.8) {
		t.Fatalf("conf = %+v", reads[0])
	}
	// Logit slots are softmax-ed: slot argmax and order stay, confidences become probabilities.
	logits := []float32{5, 0, 0, 0, 0, 0, 0, 5}
	reads, err = FastPlateOCR(logits, []int64{1, 2, 4}, alphabet, '_')
	if err != nil || reads[0].Text != "A" || !(reads[0].CharConf[0] > 0.9 && reads[0].CharConf[0] < 1) {
		t.Fatalf("logits: %+v %v", reads, err)
	}
	_, err = FastPlateOCR(out, []int64{2, 4, 4}, "AB1", '_')
	assertShapeErr(t, err)
	_, err = FastPlateOCR(out, []int64{2, 16}, alphabet, '_')
	assertShapeErr(t, err)
}

// blobMap draws axis-aligned rectangles of constant probability on a zero map.
func blobMap(w, h int, blobs ...[5]float64) []float32 {
	m := make([]float32, w*h)
	for _, b := range blobs {
		for y := int(b[1]); y < int(b[1]+b[3]); y++ {
			for x := int(b[0]); x < int(b[0]+b[2]); x++ {
				m[y*w+x] = float32(b[4])
			}
		}
	}
	return m
}

func TestPaddleDBTwoBlobs(t *testing.T) {
	w, h := 100, 40
	m := blobMap(w, h,
		[5]float64{60, 20, 30, 10, 0.8}, // x 60..89, y 20..29
		[5]float64{10, 5, 20, 10, 0.9},  // x 10..29, y 5..14
		[5]float64{40, 30, 2, 2, 0.9},   // too small
		[5]float64{40, 2, 15, 8, 0.4},   // above thresh but below box thresh
	)
	boxes, err := PaddleDB(m, h, w, DBThresh, DBBoxThresh, DBUnclipRatio, DBMaxCandidates)
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 2 {
		t.Fatalf("boxes = %+v, want 2", boxes)
	}
	// Blob 1: pixel centres span 19x9; d = 171*1.5/56; reading order puts it first.
	d1 := 19.0 * 9 * 1.5 / 56
	wantRect(t, boxes[0], Rect{10 - d1, 5 - d1, 19 + 2*d1, 9 + 2*d1}, 0.9)
	d2 := 29.0 * 9 * 1.5 / 76
	wantRect(t, boxes[1], Rect{60 - d2, 20 - d2, 29 + 2*d2, 9 + 2*d2}, 0.8)

	// Corners are clockwise from top-left.
	c := boxes[0].Corners
	if !(c[0].X < c[1].X && c[1].Y < c[2].Y && c[2].X > c[3].X && c[3].Y > c[0].Y) {
		t.Fatalf("corner order %+v", c)
	}

	// maxCandidates stops after the first components in raster order.
	boxes, err = PaddleDB(m, h, w, DBThresh, DBBoxThresh, DBUnclipRatio, 1)
	if err != nil || len(boxes) != 0 { // the first component found is the 0.4 blob at y=2
		t.Fatalf("maxCandidates=1: %+v %v", boxes, err)
	}
}

func wantRect(t *testing.T, b TextBox, r Rect, score float64) {
	t.Helper()
	assertRect(t, b.Bounds(), r)
	if !near(b.Score, score) {
		t.Fatalf("score %v, want %v", b.Score, score)
	}
}

func TestPaddleDBRotatedBlob(t *testing.T) {
	// A thick diagonal band: its minimum-area rectangle is rotated and much smaller than its
	// axis-aligned bounding box.
	w, h := 80, 80
	m := make([]float32, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if d := float64(x - y); d >= -3 && d <= 3 && x > 10 && x < 70 {
				m[y*w+x] = 0.9
			}
		}
	}
	boxes, err := PaddleDB(m, h, w, DBThresh, DBBoxThresh, DBUnclipRatio, 0)
	if err != nil || len(boxes) != 1 {
		t.Fatalf("boxes %+v %v", boxes, err)
	}
	c := boxes[0].Corners
	side := func(a, b Point) float64 { return math.Hypot(a.X-b.X, a.Y-b.Y) }
	long, short := side(c[0], c[1]), side(c[1], c[2])
	if long < short {
		long, short = short, long
	}
	// Raw rectangle about (58*sqrt2 + 6/sqrt2) x 6/sqrt2 = 86.3 x 4.2; unclip adds about 6.
	if short > 12 || long < 88 || long > 95 {
		t.Fatalf("rotated rectangle sides %.1f x %.1f, want about 92 x 10", long, short)
	}
	if b := boxes[0].Bounds(); b.W < 55 || b.H < 55 {
		t.Fatalf("bounds %+v", b)
	}
}

func TestPaddleDBErrors(t *testing.T) {
	_, err := PaddleDB(make([]float32, 10), 3, 3, 0.3, 0.6, 1.5, 10)
	assertShapeErr(t, err)
	_, err = PaddleDB(make([]float32, 9), 3, 3, math.NaN(), 0.6, 1.5, 10)
	if err == nil {
		t.Fatal("NaN threshold accepted")
	}
}

func TestYuNetSingleHotCell(t *testing.T) {
	for _, in := range [][2]int{{64, 64}, {60, 50}} { // 60x50 pads to 64x64
		out := map[string][]float32{}
		for _, s := range YuNetStrides {
			n := (64 / s) * (64 / s)
			for _, k := range []string{"cls", "obj"} {
				out[k+"_"+itoa(s)] = make([]float32, n)
			}
			out["bbox_"+itoa(s)] = make([]float32, 4*n)
			out["kps_"+itoa(s)] = make([]float32, 10*n)
		}
		// Stride 16, row 1, col 2: cell 1*4+2 = 6.
		out["cls_16"][6], out["obj_16"][6] = 0.81, 1.2 // obj clamps to 1
		copy(out["bbox_16"][24:], []float32{0.5, 0.5, float32(math.Log(2)), 0})
		for k := 0; k < 10; k++ {
			out["kps_16"][60+k] = 0.5
		}
		out["kps_16"][60+4] = -0.25 // nose x
		out["cls_8"][0], out["obj_8"][0] = 0.2, 0.2
		dets, err := YuNet(out, in[0], in[1], YuNetStrides, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if len(dets) != 1 {
			t.Fatalf("dets = %+v", dets)
		}
		d := dets[0]
		if !near(d.Score, 0.9) {
			t.Fatalf("score %v, want sqrt(0.81*1)", d.Score)
		}
		// cx = 2.5*16 = 40, cy = 1.5*16 = 24, w = 32, h = 16.
		assertRect(t, d.Box, Rect{24, 16, 32, 16})
		if len(d.Landmarks) != 5 || !near(d.Landmarks[0].X, 40) || !near(d.Landmarks[0].Y, 24) || !near(d.Landmarks[2].X, 28) {
			t.Fatalf("landmarks %+v", d.Landmarks)
		}
	}
	_, err := YuNet(map[string][]float32{}, 64, 64, YuNetStrides, 0.5)
	assertShapeErr(t, err)
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestLPDYuNetPriorsAndHotPrior(t *testing.T) {
	const w, h = 320, 240
	n := LPDYuNetPriors(w, h)
	if n != 4385 {
		t.Fatalf("priors = %d, want 4385 (the model's output rows)", n)
	}
	loc := make([]float32, 14*n)
	conf := make([]float32, 2*n)
	iou := make([]float32, n)
	// Level 1 (step 16, min sizes 32 and 48) starts after 30*40*3 = 3600 priors; row i=2,
	// col j=3, second size (48): prior centre (56, 40), size 48.
	p := 3600 + (2*20+3)*2 + 1
	conf[2*p+1], iou[p] = 0.64, 1.5 // iou clamps to 1 -> score 0.8
	// corner = centre + l*0.1*48 = centre + 4.8*l. Model order here: TR, BR, BL, TL.
	l := loc[p*14 : p*14+14]
	copy(l[4:8], []float32{5, -2.5, 5, 2.5})     // TR (80,28), BR (80,52)
	copy(l[10:14], []float32{-5, 2.5, -5, -2.5}) // BL (32,52), TL (32,28)
	conf[1], iou[0] = 0.1, 0.1                   // a weak prior elsewhere

	dets, err := LPDYuNet(loc, conf, iou, w, h, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 {
		t.Fatalf("dets = %+v", dets)
	}
	d := dets[0]
	if !near(d.Score, 0.8) || !d.HasCorners {
		t.Fatalf("det %+v", d)
	}
	assertRect(t, d.Box, Rect{32, 28, 48, 24})
	want := [4]Point{{32, 28}, {80, 28}, {80, 52}, {32, 52}}
	for i := range want {
		if !near(d.Corners[i].X, want[i].X) || !near(d.Corners[i].Y, want[i].Y) {
			t.Fatalf("corners %+v, want %+v", d.Corners, want)
		}
	}
	_, err = LPDYuNet(loc[:14], conf, iou, w, h, 0.5)
	assertShapeErr(t, err)
	_, err = LPDYuNet(loc, conf, iou, 0, h, 0.5)
	assertShapeErr(t, err)
}

func TestToFrame(t *testing.T) {
	// A 1000x500 frame letterboxed into 416x416 at scale 0.416, padded 104 px at the top.
	d := Det{Box: Rect{41.6, 145.6, 83.2, 41.6}, HasCorners: true,
		Corners:   [4]Point{{41.6, 145.6}, {124.8, 145.6}, {124.8, 187.2}, {41.6, 187.2}},
		Landmarks: []Point{{83.2, 166.4}}}
	orig := d.Landmarks[0]
	f := d.ToFrame(0.416, 0.416, 0, 104)
	assertRect(t, f.Box, Rect{100, 100, 200, 100})
	if !near(f.Corners[2].X, 300) || !near(f.Corners[2].Y, 200) || !near(f.Landmarks[0].X, 200) || !near(f.Landmarks[0].Y, 150) {
		t.Fatalf("mapped %+v", f)
	}
	if d.Landmarks[0] != orig {
		t.Fatal("ToFrame modified the original landmarks")
	}
	tb := TextBox{Corners: [4]Point{{10, 20}, {30, 20}, {30, 40}, {10, 40}}}.ToFrame(0.5, 0.25, 0, 0)
	if !near(tb.Corners[2].X, 60) || !near(tb.Corners[2].Y, 160) {
		t.Fatalf("text box %+v", tb)
	}
}
