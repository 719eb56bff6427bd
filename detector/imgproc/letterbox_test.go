package imgproc

import (
	"bytes"
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/models"
)

// testMat is a 200×100 BGR image, pure blue (B=255), with a pure red (R=255) 20×20 square
// whose top-left is at (100, 40).
func testMat(t *testing.T) gocv.Mat {
	t.Helper()
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), 100, 200, gocv.MatTypeCV8UC3)
	sq := m.Region(image.Rect(100, 40, 120, 60))
	sq.SetTo(gocv.NewScalar(0, 0, 255, 0))
	sq.Close()
	return m
}

func yoloxSpec() *models.Tensor {
	return &models.Tensor{Name: "images", Type: "float32", Shape: []int64{1, 3, 416, 416},
		Layout: "NCHW", ColorOrder: "BGR", Scale: 1, Resize: "letterbox", PadValue: 114}
}

func at(dst []float32, w, h, c, x, y int) float32 { return dst[c*w*h+y*w+x] }

func TestLetterboxTopLeftBGR(t *testing.T) {
	src := testMat(t)
	defer src.Close()
	spec := yoloxSpec()
	dst := make([]float32, 3*416*416)
	for i := range dst {
		dst[i] = -1 // every value must be written
	}
	tr, err := Letterbox(src, dst, spec)
	if err != nil {
		t.Fatal(err)
	}
	// 200x100 scaled by 2.08 to 416x208, top-left: rows 208.. are padding.
	if tr.ContentW != 416 || tr.ContentH != 208 || tr.PadX != 0 || tr.PadY != 0 {
		t.Fatalf("transform %+v", tr)
	}
	for i, v := range dst {
		if v < 0 {
			t.Fatalf("value %d not written", i)
		}
	}
	for c := 0; c < 3; c++ {
		for _, p := range [][2]int{{0, 208}, {415, 415}, {200, 300}} {
			if v := at(dst, 416, 416, c, p[0], p[1]); v != 114 {
				t.Fatalf("pad (%d,%d) channel %d = %v, want 114", p[0], p[1], c, v)
			}
		}
	}
	// Blue background: BGR channel 0 = 255.
	if b, r := at(dst, 416, 416, 0, 10, 10), at(dst, 416, 416, 2, 10, 10); b != 255 || r != 0 {
		t.Fatalf("background B=%v R=%v, want 255, 0", b, r)
	}
	// The red square's centre (110, 50) in the source lands at (228.8, 104) in the model.
	mp := tr.PointFromFrame(Point{110, 50})
	x, y := int(mp.X), int(mp.Y)
	if b, r := at(dst, 416, 416, 0, x, y), at(dst, 416, 416, 2, x, y); b != 0 || r != 255 {
		t.Fatalf("red square at model (%d,%d): B=%v R=%v, want 0, 255", x, y, b, r)
	}
}

func TestLetterboxCenterRGBNormalised(t *testing.T) {
	src := testMat(t)
	defer src.Close()
	spec := &models.Tensor{Type: "float32", Shape: []int64{1, 3, 320, 320}, Layout: "NCHW",
		ColorOrder: "RGB", Scale: 1.0 / 255, Mean: []float64{0.485, 0.456, 0.406},
		Std: []float64{0.229, 0.224, 0.225}, Resize: "letterbox-center", PadValue: 0}
	dst := make([]float32, 3*320*320)
	tr, err := Letterbox(src, dst, spec)
	if err != nil {
		t.Fatal(err)
	}
	if tr.PadX != 0 || tr.PadY != 80 || tr.ContentH != 160 {
		t.Fatalf("transform %+v, want 80 px of padding on top", tr)
	}
	near := func(got float32, want float64) bool { return math.Abs(float64(got)-want) < 1e-4 }
	// Pad value 0 normalised per channel.
	for c, m := range spec.Mean {
		if v := at(dst, 320, 320, c, 5, 5); !near(v, -m/spec.Std[c]) {
			t.Fatalf("pad channel %d = %v, want %v", c, v, -m/spec.Std[c])
		}
	}
	// Blue background in RGB order: channel 2 holds the 255.
	if v := at(dst, 320, 320, 2, 5, 100); !near(v, (1-0.406)/0.225) {
		t.Fatalf("blue in channel 2 = %v", v)
	}
	if v := at(dst, 320, 320, 0, 5, 100); !near(v, -0.485/0.229) {
		t.Fatalf("red channel on blue = %v", v)
	}
	mp := tr.PointFromFrame(Point{110, 50})
	if v := at(dst, 320, 320, 0, int(mp.X), int(mp.Y)); !near(v, (1-0.485)/0.229) {
		t.Fatalf("red square in channel 0 = %v", v)
	}
}

func TestLetterboxStretchAndKeepRatioPad(t *testing.T) {
	src := testMat(t) // 200x100
	defer src.Close()
	spec := &models.Tensor{Type: "float32", Shape: []int64{1, 3, 48, -1}, Layout: "NCHW", ColorOrder: "BGR", Resize: "stretch"}
	dst := make([]float32, 3*48*320)
	tr, err := LetterboxTo(src, dst, spec, 320, 48)
	if err != nil {
		t.Fatal(err)
	}
	if tr.ContentW != 320 || tr.ContentH != 48 || tr.ScaleX != 1.6 || tr.ScaleY != 0.48 {
		t.Fatalf("stretch transform %+v", tr)
	}
	spec.Resize = "keep-ratio-pad"
	spec.PadValue = 7
	tr, err = LetterboxTo(src, dst, spec, 320, 48)
	if err != nil {
		t.Fatal(err)
	}
	// Height 48 → width 96; columns 96.. are padding.
	if tr.ContentW != 96 || tr.ContentH != 48 {
		t.Fatalf("keep-ratio-pad transform %+v", tr)
	}
	if v := at(dst, 320, 48, 0, 95, 10); v != 255 {
		t.Fatalf("last content column = %v", v)
	}
	if v := at(dst, 320, 48, 0, 96, 10); v != 7 {
		t.Fatalf("first pad column = %v", v)
	}
}

func TestLetterboxGreySource(t *testing.T) {
	g := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(77, 0, 0, 0), 50, 50, gocv.MatTypeCV8UC1)
	defer g.Close()
	dst := make([]float32, 3*416*416)
	if _, err := Letterbox(g, dst, yoloxSpec()); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 3; c++ {
		if v := at(dst, 416, 416, c, 100, 100); v != 77 {
			t.Fatalf("channel %d = %v, want 77", c, v)
		}
	}
	spec := yoloxSpec()
	spec.Shape[1] = 1
	spec.ColorOrder = "GRAY"
	col := testMat(t)
	defer col.Close()
	if _, err := Letterbox(col, dst[:416*416], spec); err != nil {
		t.Fatal(err)
	}
	// Blue (B=255) in grey is 0.114*255 ≈ 29.
	if v := dst[10*416+10]; v < 28 || v > 30 {
		t.Fatalf("grey of blue = %v", v)
	}
}

func TestLetterboxRejectsBadSpecs(t *testing.T) {
	src := testMat(t)
	defer src.Close()
	bad := []*models.Tensor{
		{Type: "float32", Shape: []int64{1, 3, 416, 416}, Layout: "NHWC"},
		{Type: "uint8", Shape: []int64{1, 3, 416, 416}},
		{Type: "float32", Shape: []int64{1, 4, 416, 416}},
		{Type: "float32", Shape: []int64{1, 3, 416, 416}, Resize: "crop"},
		{Type: "float32", Shape: []int64{1, 3, 416, 416}, Mean: []float64{1, 2}},
		{Type: "float32", Shape: []int64{1, 3, 416, 416}, ColorOrder: "YUV"},
	}
	for i, spec := range bad {
		if _, err := Letterbox(src, make([]float32, 4*416*416), spec); err == nil {
			t.Errorf("spec %d accepted: %+v", i, spec)
		}
	}
	if _, err := Letterbox(src, make([]float32, 10), yoloxSpec()); err == nil {
		t.Error("short dst accepted")
	}
	if _, err := Letterbox(gocv.NewMat(), make([]float32, 3*416*416), yoloxSpec()); err == nil {
		t.Error("empty source accepted")
	}
}

func TestResizeNHWCPlateOCR(t *testing.T) {
	src := testMat(t)
	defer src.Close()
	spec := &models.Tensor{Name: "input", Type: "uint8", Shape: []int64{-1, 64, 128, 3},
		Layout: "NHWC", ColorOrder: "RGB", Resize: "stretch"}
	dst := make([]uint8, 2*64*128*3)
	if _, err := ResizeNHWC(src, dst[64*128*3:], spec); err != nil { // batch item 1
		t.Fatal(err)
	}
	if !bytes.Equal(dst[:64*128*3], make([]uint8, 64*128*3)) {
		t.Fatal("batch item 0 was written")
	}
	px := func(x, y int) []uint8 { o := 64*128*3 + (y*128+x)*3; return dst[o : o+3] }
	if p := px(5, 5); p[0] != 0 || p[2] != 255 {
		t.Fatalf("blue background in RGB = %v", p)
	}
	// Square centre (110,50) → (70.4, 32).
	if p := px(70, 32); p[0] != 255 || p[2] != 0 {
		t.Fatalf("red square in RGB = %v", p)
	}
}

func TestTransformRoundTrip(t *testing.T) {
	src := testMat(t)
	defer src.Close()
	dst := make([]float32, 3*416*416)
	for _, resize := range []string{"letterbox", "letterbox-center", "stretch", "keep-ratio-pad"} {
		spec := yoloxSpec()
		spec.Resize = resize
		tr, err := Letterbox(src, dst, spec)
		if err != nil {
			t.Fatal(err)
		}
		// As if src were a 1/4 decode of an 800x400 frame, cropped at (1000, 500) of a bigger one.
		tr = tr.WithFrame(800, 400).WithOffset(1000, 500)
		in := Box{12.5, 30, 300, 200}
		back := tr.FromFrame(tr.ToFrame(in))
		if math.Abs(back.X1-in.X1)+math.Abs(back.Y1-in.Y1)+math.Abs(back.X2-in.X2)+math.Abs(back.Y2-in.Y2) > 1e-9 {
			t.Fatalf("%s: round trip %v → %v", resize, in, back)
		}
	}
	spec := yoloxSpec()
	tr, _ := Letterbox(src, dst, spec)
	// Model pixel (416, 208) is the bottom-right of the content = source (200, 100) = frame
	// (800, 400) after the 4x reduction.
	p := tr.WithFrame(800, 400).PointToFrame(Point{416, 208})
	if math.Abs(p.X-800) > 1e-9 || math.Abs(p.Y-400) > 1e-9 {
		t.Fatalf("corner maps to %v, want (800, 400)", p)
	}
	if b := (Box{-5, 10, 900, 50}).Clamp(800, 400); b != (Box{0, 10, 800, 50}) {
		t.Fatalf("clamp %v", b)
	}
}

func TestInputSizeDynamic(t *testing.T) {
	det := &models.Tensor{Type: "float32", Shape: []int64{-1, 3, -1, -1}, Layout: "NCHW", Resize: "stretch", LimitSide: 960, Multiple: 32}
	rec := &models.Tensor{Type: "float32", Shape: []int64{-1, 3, 48, -1}, Layout: "NCHW", Resize: "keep-ratio-pad", PadWidth: 320}
	plate := &models.Tensor{Type: "uint8", Shape: []int64{-1, 64, 128, 3}, Layout: "NHWC"}
	for _, tc := range []struct {
		spec         *models.Tensor
		sw, sh       int
		wantW, wantH int
	}{
		{det, 1920, 1080, 960, 544}, // 960x540 → 540 rounds to 544
		{det, 300, 90, 288, 96},     // never scaled up; 90 → 96
		{det, 20, 10, 32, 32},       // at least one multiple
		{rec, 200, 50, 320, 48},     // ceil(48*4)=192 < 320
		{rec, 800, 40, 960, 48},     // ceil(48*20)=960
		{plate, 500, 100, 128, 64},  // fixed
		{yoloxSpec(), 1920, 1080, 416, 416},
	} {
		w, h, err := InputSize(tc.spec, tc.sw, tc.sh)
		if err != nil || w != tc.wantW || h != tc.wantH {
			t.Errorf("InputSize(%v, %dx%d) = %dx%d, %v; want %dx%d", tc.spec.Shape, tc.sw, tc.sh, w, h, err, tc.wantW, tc.wantH)
		}
	}
	if _, _, err := InputSize(&models.Tensor{Shape: []int64{1, 3, -1, -1}}, 10, 10); err == nil {
		t.Error("dynamic axes without a rule accepted")
	}
	// Letterbox on a dynamic recognition spec pads the right with pad_value, normalised.
	src := testMat(t) // 200x100 → height 48, width 96 of 320
	defer src.Close()
	rec.Scale, rec.Mean, rec.Std, rec.PadValue = 1.0/255, []float64{0.5}, []float64{0.5}, 127.5
	dst := make([]float32, 3*48*320)
	tr, err := Letterbox(src, dst, rec)
	if err != nil {
		t.Fatal(err)
	}
	if tr.DstW != 320 || tr.ContentW != 96 {
		t.Fatalf("rec transform %+v", tr)
	}
	if v := at(dst, 320, 48, 1, 200, 20); v != 0 {
		t.Fatalf("rec pad = %v, want 0 (127.5 normalised)", v)
	}
	if v := at(dst, 320, 48, 0, 20, 20); v != 1 {
		t.Fatalf("rec blue = %v, want 1", v)
	}
}

// Preprocessing writes into the caller's buffer: a handful of small allocations per frame
// (Mat headers, the transform), none per pixel or per row.
func TestLetterboxAllocations(t *testing.T) {
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(10, 20, 30, 0), 1080, 1920, gocv.MatTypeCV8UC3)
	defer frame.Close()
	dst := make([]float32, 3*416*416)
	spec := yoloxSpec()
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := Letterbox(frame, dst, spec); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 16 {
		t.Fatalf("%v allocations per Letterbox", allocs)
	}
	t.Logf("%v allocations per Letterbox", allocs)
}
