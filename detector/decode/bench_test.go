package decode

import (
	"math/rand/v2"
	"testing"
)

// Decoder cost per frame, to set against model Run time (the pipeline overhead budget).

func BenchmarkYOLOX416(b *testing.B) {
	out, shape := yoloxTensor(416, 416, []int{8, 16, 32}, 80)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range out {
		out[i] = r.Float32() * 0.2 // mostly background: objectness below the threshold
	}
	for i := 0; i < 50; i++ { // 50 confident cells
		out[r.IntN(3549)*85+4] = 0.9
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := YOLOX(out, shape, 416, 416, []int{8, 16, 32}, 0.3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPaddleDB960(b *testing.B) {
	var blobs [][5]float64
	for i := 0; i < 20; i++ {
		blobs = append(blobs, [5]float64{float64(40 + (i%4)*220), float64(30 + (i/4)*180), 160, 40, 0.9})
	}
	m := blobMap(960, 960, blobs...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PaddleDB(m, 960, 960, DBThresh, DBBoxThresh, DBUnclipRatio, DBMaxCandidates); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLPDYuNet(b *testing.B) {
	n := LPDYuNetPriors(320, 240)
	loc, conf, iou := make([]float32, 14*n), make([]float32, 2*n), make([]float32, n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LPDYuNet(loc, conf, iou, 320, 240, 0.5); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCTCGreedyPPOCR(b *testing.B) {
	const T, C = 40, 6625
	probs := make([]float32, T*C)
	dict := make([]string, C)
	for i := range dict {
		dict[i] = string(rune('A' + i%26))
	}
	for t := 0; t < T; t++ {
		probs[t*C+(t*7)%C] = 0.9
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := CTCGreedy(probs, T, C, dict, 0); err != nil {
			b.Fatal(err)
		}
	}
}
