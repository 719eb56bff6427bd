package ort

import (
	"context"
	"fmt"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
)

// BenchmarkRun measures each model's raw Run (no pre- or post-processing) with 1 and 2
// intra-op threads, at the input sizes the stage graph uses:
//   - yolox-nano 416×416 (scene), lpd-yunet 320×240, yunet-face 640×640 (fixed by the model);
//   - ppocr-det 608×192: the lower part of a vehicle box in a 1920×1080 frame (a plate region);
//   - ppocr-rec 320×48 (one text line), fast-plate-ocr one 128×64 plate.
func BenchmarkRun(b *testing.B) {
	shapes := map[string][]int64{
		"ppocr-det":      {1, 3, 192, 608},
		"ppocr-rec":      {1, 3, 48, 320},
		"fast-plate-ocr": {1, 64, 128, 3},
	}
	for _, name := range []string{"yolox-nano", "ppocr-det", "ppocr-rec", "fast-plate-ocr", "lpd-yunet", "yunet-face"} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(b *testing.B) {
				setup(b)
				tm := testModels()[name]
				opts := DefaultOptions()
				opts.IntraOpThreads = threads
				s, err := NewSession(tm.m, testenv.ModelFile(b, tm.file), opts)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if sh, ok := shapes[name]; ok {
					if err := s.SetInputShape(sh...); err != nil {
						b.Fatal(err)
					}
				}
				// Mid-grey input: the run time of these models does not depend on the values.
				for i := range s.InputFloat32() {
					s.InputFloat32()[i] = 114
				}
				for i := range s.InputUint8() {
					s.InputUint8()[i] = 114
				}
				ctx := context.Background()
				if err := s.Run(ctx); err != nil { // warm-up: first run allocates dynamic outputs
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := s.Run(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
