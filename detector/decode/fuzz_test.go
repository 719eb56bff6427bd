package decode

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// floats reinterprets bytes as float32s, so NaN, Inf and denormals all show up.
func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:]))
	}
	return out
}

// checkDets asserts what every decoder promises: finite boxes, and an error only of the
// shape kind.
func checkDets(t *testing.T, dets []Det, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrShape) {
			t.Fatalf("error not wrapping ErrShape: %v", err)
		}
		return
	}
	for _, d := range dets {
		if !d.Box.finite() {
			t.Fatalf("non-finite box %+v", d.Box)
		}
	}
}

func FuzzYOLOX(f *testing.F) {
	out, shape := yoloxTensor(32, 32, []int{8, 16}, 1)
	seed := make([]byte, 4*len(out))
	f.Add(seed, int64(shape[1]), int64(shape[2]), 32, 32, 8, 16, 0.3)
	f.Add([]byte{0, 0, 0x80, 0x7f, 1, 2, 3, 4}, int64(2), int64(1), 8, 8, 8, 0, 0.0)
	f.Fuzz(func(t *testing.T, data []byte, n, ch int64, w, h, s1, s2 int, thr float64) {
		dets, err := YOLOX(floats(data), []int64{1, n, ch}, w, h, []int{s1, s2}, thr)
		checkDets(t, dets, err)
		dets, err = YOLOXMultiLabel(floats(data), []int64{n, ch}, w, h, []int{s1}, thr)
		checkDets(t, dets, err)
	})
}

func FuzzYOLOv8(f *testing.F) {
	f.Add(make([]byte, 4*6*10), int64(6), int64(10), 2, 0.5)
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, int64(1), int64(2), 0, 0.0)
	f.Fuzz(func(t *testing.T, data []byte, a, b int64, nc int, thr float64) {
		dets, err := YOLOv8(floats(data), []int64{1, a, b}, nc, thr)
		checkDets(t, dets, err)
		dets, err = YOLOv8MultiLabel(floats(data), []int64{a, b}, nc, thr)
		checkDets(t, dets, err)
	})
}

func FuzzNMSEnd2End(f *testing.F) {
	f.Add(make([]byte, 4*14), int64(2), int64(7), 0.25)
	f.Add(make([]byte, 4*12), int64(2), int64(6), 0.0)
	f.Fuzz(func(t *testing.T, data []byte, k, w int64, thr float64) {
		dets, err := NMSEnd2End(floats(data), []int64{1, k, w}, thr)
		checkDets(t, dets, err)
		v := floats(data)
		dets, err = EfficientNMS(k, v, []int64{1, w, 4}, v, v, thr)
		checkDets(t, dets, err)
		kept := NMS(dets, thr, w%2 == 0)
		if len(kept) > len(dets) {
			t.Fatal("NMS grew the list")
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 0}, int64(2))
	f.Fuzz(func(t *testing.T, data []byte, c int64) {
		v := floats(data)
		class, score, err := Classify(v, []int64{1, c})
		if err != nil {
			return
		}
		if class < 0 || class >= len(v) || !(score >= 0 && score <= 1) {
			t.Fatalf("class %d score %v for %v", class, score, v)
		}
	})
}

func FuzzPaddleDB(f *testing.F) {
	m := blobMap(20, 10, [5]float64{2, 2, 10, 5, 0.9})
	seed := make([]byte, 4*len(m))
	for i, v := range m {
		binary.LittleEndian.PutUint32(seed[i*4:], math.Float32bits(v))
	}
	f.Add(seed, 10, 20, 0.3, 0.6, 1.5, 100)
	f.Fuzz(func(t *testing.T, data []byte, h, w int, thr, boxThr, unclip float64, maxC int) {
		if h > 0 && w > 0 && h*w > 1<<16 {
			return // keep each run fast; size is not what is being fuzzed
		}
		boxes, err := PaddleDB(floats(data), h, w, thr, boxThr, unclip, maxC)
		if err != nil {
			return
		}
		for _, b := range boxes {
			for _, c := range b.Corners {
				if !(c.X >= 0 && c.X <= float64(w) && c.Y >= 0 && c.Y <= float64(h)) {
					t.Fatalf("corner %+v outside %dx%d", c, w, h)
				}
			}
		}
	})
}

func FuzzCTC(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 3, 0)
	f.Fuzz(func(t *testing.T, data []byte, T, C, blank int) {
		dict := make([]string, max(0, min(C, 64)))
		for i := range dict {
			dict[i] = string(rune('A' + i%26))
		}
		text, conf, _, err := CTCGreedy(floats(data), T, C, dict, blank)
		if err != nil {
			if !errors.Is(err, ErrShape) {
				t.Fatalf("error not wrapping ErrShape: %v", err)
			}
			return
		}
		if len(conf) != len([]rune(text)) {
			t.Fatalf("%d confidences for %q", len(conf), text)
		}
	})
}

func FuzzFastPlateOCR(f *testing.F) {
	f.Add(make([]byte, 4*9*37), int64(1), int64(9))
	f.Fuzz(func(t *testing.T, data []byte, b, slots int64) {
		reads, err := FastPlateOCR(floats(data), []int64{b, slots, 37}, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_", '_')
		if err != nil {
			return
		}
		for _, r := range reads {
			if len(r.CharConf) != len(r.Text) || len(r.Text) > int(slots) {
				t.Fatalf("read %+v from %d slots", r, slots)
			}
		}
	})
}

func FuzzYuNetLPD(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, 32, 32, 0.5)
	f.Fuzz(func(t *testing.T, data []byte, w, h int, thr float64) {
		v := floats(data)
		if w > 1024 || h > 1024 {
			return
		}
		out := map[string][]float32{}
		for _, s := range YuNetStrides {
			n := 0
			if w > 0 && h > 0 {
				n = ((w + 31) / 32 * 32 / s) * ((h + 31) / 32 * 32 / s)
			}
			out["cls_"+itoa(s)] = cycle(v, n)
			out["obj_"+itoa(s)] = cycle(v, n)
			out["bbox_"+itoa(s)] = cycle(v, 4*n)
			out["kps_"+itoa(s)] = cycle(v, 10*n)
		}
		dets, err := YuNet(out, w, h, YuNetStrides, thr)
		checkDets(t, dets, err)
		n := LPDYuNetPriors(w, h)
		dets, err = LPDYuNet(cycle(v, 14*n), cycle(v, 2*n), cycle(v, n), w, h, thr)
		checkDets(t, dets, err)
	})
}

// cycle repeats v to length n (zeros when v is empty).
func cycle(v []float32, n int) []float32 {
	out := make([]float32, n)
	if len(v) == 0 {
		return out
	}
	for i := range out {
		out[i] = v[i%len(v)]
	}
	return out
}
