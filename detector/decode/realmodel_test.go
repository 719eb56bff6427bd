//go:build ortcheck

// Decoders against the real models' real outputs, run with ONNX Runtime directly (not through
// detector/ort) and minimal pure-Go preprocessing, so that a layout assumption (raw YOLOX
// head, LPD prior order, fast-plate probabilities, PP-OCR dictionary size) is checked on
// actual tensors. Opt-in because it needs cgo and the ONNX Runtime library:
//
//	go test -tags ortcheck -run RealModel -v ./detector/decode/
package decode_test

import (
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/crossborder/offencecam/detector/decode"
	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/detector/platetext"
	"github.com/crossborder/offencecam/internal/testenv"
)

var ortOnce sync.Once

func initORT(t *testing.T) {
	t.Helper()
	lib := testenv.ModelFile(t, "libonnxruntime.so.1")
	var err error
	ortOnce.Do(func() {
		ort.SetSharedLibraryPath(lib)
		err = ort.InitializeEnvironment()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, model string, inName string, in ort.Value, outNames []string) []ort.Value {
	t.Helper()
	s, err := ort.NewDynamicAdvancedSession(testenv.ModelFile(t, model), []string{inName}, outNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	outs := make([]ort.Value, len(outNames))
	if err := s.Run([]ort.Value{in}, outs); err != nil {
		t.Fatal(err)
	}
	return outs
}

func data(v ort.Value) ([]float32, []int64) {
	tt := v.(*ort.Tensor[float32])
	return tt.GetData(), tt.GetShape()
}

type plateCase struct {
	img   image.Image
	label evalmetrics.PlateLabel
}

func plates(t *testing.T) []plateCase {
	dir := testenv.SharedPath(t, "data", "plates")
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	var out []plateCase
	for _, p := range files {
		if strings.HasPrefix(filepath.Base(p), "LICENSE") {
			continue
		}
		f, _ := os.Open(p)
		ls, err := evalmetrics.ParsePlateLabels(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		jf, err := os.Open(filepath.Join(dir, ls[0].File))
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(jf)
		jf.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, plateCase{img, ls[0]})
	}
	return out
}

// sample is a bilinear read of channel c (0 R, 1 G, 2 B) at (x, y) in 0..255.
func sample(img image.Image, x, y float64) [3]float64 {
	b := img.Bounds()
	x = math.Max(0, math.Min(x, float64(b.Dx()-1)))
	y = math.Max(0, math.Min(y, float64(b.Dy()-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, b.Dx()-1), min(y0+1, b.Dy()-1)
	fx, fy := x-float64(x0), y-float64(y0)
	px := func(xx, yy int) [3]float64 {
		r, g, bb, _ := img.At(b.Min.X+xx, b.Min.Y+yy).RGBA()
		return [3]float64{float64(r >> 8), float64(g >> 8), float64(bb >> 8)}
	}
	a, bq, c, d := px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1)
	var o [3]float64
	for i := range o {
		o[i] = (a[i]*(1-fx)+bq[i]*fx)*(1-fy) + (c[i]*(1-fx)+d[i]*fx)*fy
	}
	return o
}

// bgrCHW resizes the region r of img to w x h (scaled by sx, sy from region to tensor),
// writing BGR 0..255 planes; pixels outside the scaled region get pad.
func bgrCHW(img image.Image, r image.Rectangle, w, h int, sx, sy, pad float64) []float32 {
	out := make([]float32, 3*w*h)
	rw, rh := float64(r.Dx())*sx, float64(r.Dy())*sy
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var v [3]float64
			if float64(x) < rw && float64(y) < rh {
				v = sample(img, float64(r.Min.X)+(float64(x)+0.5)/sx-0.5, float64(r.Min.Y)+(float64(y)+0.5)/sy-0.5)
			} else {
				v = [3]float64{pad, pad, pad}
			}
			out[0*w*h+y*w+x] = float32(v[2])
			out[1*w*h+y*w+x] = float32(v[1])
			out[2*w*h+y*w+x] = float32(v[0])
		}
	}
	return out
}

func TestRealModelYOLOXFindsTheCarAroundEachPlate(t *testing.T) {
	initORT(t)
	found := 0
	cases := plates(t)
	for _, pc := range cases {
		b := pc.img.Bounds()
		r := math.Min(416/float64(b.Dx()), 416/float64(b.Dy()))
		in, _ := ort.NewTensor(ort.NewShape(1, 3, 416, 416), bgrCHW(pc.img, b, 416, 416, r, r, 114))
		outs := run(t, "yolox_nano.onnx", "images", in, []string{"output"})
		out, shape := data(outs[0])
		dets, err := decode.YOLOX(out, shape, 416, 416, []int{8, 16, 32}, 0.25)
		if err != nil {
			t.Fatal(err)
		}
		dets = decode.NMS(dets, 0.45, true)
		pb := pc.label.Box
		cx, cy := (pb.X+pb.W/2)*r, (pb.Y+pb.H/2)*r
		ok := false
		for _, d := range dets {
			if (d.Class == 2 || d.Class == 5 || d.Class == 7) && cx > d.Box.X && cx < d.Box.X2() && cy > d.Box.Y && cy < d.Box.Y2() {
				ok = true
			}
		}
		if ok {
			found++
		}
		in.Destroy()
		for _, o := range outs {
			o.Destroy()
		}
	}
	t.Logf("YOLOX: a vehicle box contains the plate centre in %d of %d images", found, len(cases))
	if found*10 < len(cases)*8 {
		t.Fatalf("recall %d/%d below 80%%", found, len(cases))
	}
}

func TestRealModelFastPlateOCR(t *testing.T) {
	initORT(t)
	cases := plates(t)
	var pairs, interpreted []evalmetrics.PlatePair
	for _, pc := range cases {
		pb := pc.label.Box
		rect := image.Rect(int(pb.X), int(pb.Y), int(pb.X+pb.W), int(pb.Y+pb.H))
		const w, h = 128, 64
		buf := make([]uint8, w*h*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := sample(pc.img, float64(rect.Min.X)+(float64(x)+0.5)*float64(rect.Dx())/w-0.5,
					float64(rect.Min.Y)+(float64(y)+0.5)*float64(rect.Dy())/h-0.5)
				for c := 0; c < 3; c++ {
					buf[(y*w+x)*3+c] = uint8(math.Round(v[c]))
				}
			}
		}
		in, _ := ort.NewTensor(ort.NewShape(1, h, w, 3), buf)
		outs := run(t, "cct_xs_v1_global.onnx", "input", in, []string{"Identity:0"})
		out, shape := data(outs[0])
		reads, err := decode.FastPlateOCR(out, shape, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_", '_')
		if err != nil {
			t.Fatal(err)
		}
		res := platetext.Interpret(reads[0].Text, reads[0].CharConf)
		t.Logf("%-12s read %-10s conf %.2f -> %s %s %v", pc.label.Text, reads[0].Text, reads[0].Conf, res.Text, res.Country, reads[0].CharConf)
		pairs = append(pairs, evalmetrics.PlatePair{Ref: pc.label.Text, Hyp: reads[0].Text})
		interpreted = append(interpreted, evalmetrics.PlatePair{Ref: pc.label.Text, Hyp: res.Text})
		in.Destroy()
		outs[0].Destroy()
	}
	m := evalmetrics.EvaluatePlates(pairs)
	mi := evalmetrics.EvaluatePlates(interpreted)
	t.Logf("fast-plate-ocr on %d labelled crops: exact %.2f, CER %.3f; after platetext.Interpret: exact %.2f, CER %.3f",
		m.N, m.Exact, m.CER, mi.Exact, mi.CER)
	if m.Exact < 0.5 {
		t.Fatalf("exact %.2f: the decoder or the slot layout is wrong", m.Exact)
	}
	// These are US plates: no national format here applies, so interpretation must not
	// turn correct reads into wrong ones.
	if mi.ExactCount < m.ExactCount {
		t.Fatalf("Interpret lost exact reads: %d -> %d", m.ExactCount, mi.ExactCount)
	}
}

func TestRealModelLPDYuNet(t *testing.T) {
	initORT(t)
	hit, cases := 0, plates(t)
	for _, pc := range cases {
		b := pc.img.Bounds()
		sx, sy := 320/float64(b.Dx()), 240/float64(b.Dy())
		in, _ := ort.NewTensor(ort.NewShape(1, 3, 240, 320), bgrCHW(pc.img, b, 320, 240, sx, sy, 0))
		outs := run(t, "license_plate_detection_lpd_yunet_2023mar.onnx", "input", in, []string{"loc", "conf", "iou"})
		loc, _ := data(outs[0])
		conf, _ := data(outs[1])
		iou, _ := data(outs[2])
		dets, err := decode.LPDYuNet(loc, conf, iou, 320, 240, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		dets = decode.NMS(dets, 0.3, false)
		pb := pc.label.Box
		want := decode.Rect{X: pb.X * sx, Y: pb.Y * sy, W: pb.W * sx, H: pb.H * sy}
		best := 0.0
		for _, d := range dets {
			best = math.Max(best, decode.IoU(d.Box, want))
		}
		if best >= 0.3 {
			hit++
		}
		in.Destroy()
		for _, o := range outs {
			o.Destroy()
		}
	}
	t.Logf("LPD-YuNet: a detection overlaps the labelled plate (IoU >= 0.3) in %d of %d images", hit, len(cases))
	if hit == 0 {
		t.Fatal("no plate found at all: prior layout or corner decoding is wrong")
	}
}

func TestRealModelPPOCRRecDictionary(t *testing.T) {
	initORT(t)
	f, err := os.Open(testenv.ModelFile(t, "ppocr_keys_v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dict, err := decode.LoadDict(f, true)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cases := plates(t)
	var pairs []evalmetrics.PlatePair
	for _, pc := range cases {
		pb := pc.label.Box
		rect := image.Rect(int(pb.X), int(pb.Y), int(pb.X+pb.W), int(pb.Y+pb.H))
		const h = 48
		w := min(320, int(math.Ceil(h*float64(rect.Dx())/float64(rect.Dy()))))
		s := float64(h) / float64(rect.Dy())
		raw := bgrCHW(pc.img, rect, w, h, float64(w)/float64(rect.Dx()), s, 0)
		for i := range raw {
			raw[i] = (raw[i]/255 - 0.5) / 0.5
		}
		in, _ := ort.NewTensor(ort.NewShape(1, 3, h, int64(w)), raw)
		outs := run(t, "ch_PP-OCRv4_rec_infer.onnx", "x", in, []string{"softmax_11.tmp_0"})
		out, shape := data(outs[0])
		text, _, mean, err := decode.CTCOutput(out, shape, dict, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-10s PP-OCR rec %-12q conf %.2f", pc.label.Text, text, mean)
		pairs = append(pairs, evalmetrics.PlatePair{Ref: pc.label.Text, Hyp: text})
		in.Destroy()
		outs[0].Destroy()
	}
	m := evalmetrics.EvaluatePlates(pairs)
	t.Logf("PP-OCRv4 rec on %d labelled crops: exact %.2f, CER %.3f", m.N, m.Exact, m.CER)
	if m.CER > 0.5 {
		t.Fatalf("CER %.3f: dictionary offset or blank index is wrong", m.CER)
	}
}

func TestRealModelPaddleDBOnPlates(t *testing.T) {
	initORT(t)
	hit, cases := 0, plates(t)
	for _, pc := range cases {
		b := pc.img.Bounds()
		// Resize so that the long side is at most 960 and both sides are multiples of 32.
		r := math.Min(1, 960/float64(max(b.Dx(), b.Dy())))
		w := max(32, int(math.Round(float64(b.Dx())*r/32))*32)
		h := max(32, int(math.Round(float64(b.Dy())*r/32))*32)
		sx, sy := float64(w)/float64(b.Dx()), float64(h)/float64(b.Dy())
		raw := bgrCHW(pc.img, b, w, h, sx, sy, 0)
		mean := []float32{0.485, 0.456, 0.406}
		std := []float32{0.229, 0.224, 0.225}
		for c := 0; c < 3; c++ {
			for i := c * w * h; i < (c+1)*w*h; i++ {
				raw[i] = (raw[i]/255 - mean[c]) / std[c]
			}
		}
		in, _ := ort.NewTensor(ort.NewShape(1, 3, int64(h), int64(w)), raw)
		outs := run(t, "ch_PP-OCRv4_det_infer.onnx", "x", in, []string{"sigmoid_0.tmp_0"})
		prob, shape := data(outs[0])
		boxes, err := decode.PaddleDB(prob, int(shape[2]), int(shape[3]), decode.DBThresh, decode.DBBoxThresh, decode.DBUnclipRatio, decode.DBMaxCandidates)
		if err != nil {
			t.Fatal(err)
		}
		pb := pc.label.Box
		want := decode.Rect{X: pb.X * sx, Y: pb.Y * sy, W: pb.W * sx, H: pb.H * sy}
		best := 0.0
		for _, tb := range boxes {
			best = math.Max(best, decode.IoU(tb.Bounds(), want))
		}
		if best >= 0.3 {
			hit++
		}
		in.Destroy()
		outs[0].Destroy()
	}
	t.Logf("PP-OCR det + DB: a text box overlaps the labelled plate (IoU >= 0.3) in %d of %d images", hit, len(cases))
	if hit*2 < len(cases) {
		t.Fatalf("only %d/%d plates found as text", hit, len(cases))
	}
}
