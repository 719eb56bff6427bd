package imgproc

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// bigJPEG is an 8+ MP camera-like JPEG made from a real shared image: upscaled to 4000×3000
// (12 MP, a common roadside camera size) with gocv.Resize, given mild sensor-like noise (an
// upscaled photo alone is unnaturally smooth and would decode faster than a real frame), then
// encoded at quality 90.
func bigJPEG(b *testing.B) []byte {
	b.Helper()
	m, _, err := Decode(readFile(b, sharedImages(b)[0]), DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(m, &big, image.Pt(4000, 3000), 0, 0, gocv.InterpolationCubic)
	noise := gocv.NewMatWithSize(3000, 4000, gocv.MatTypeCV8UC3)
	defer noise.Close()
	gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(6, 6, 6, 0))
	gocv.Add(big, noise, &big)
	data, err := EncodeJPEG(big, 90)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func benchDecode(b *testing.B, reduce int) {
	data := bigJPEG(b)
	info, err := Header(data)
	if err != nil {
		b.Fatal(err)
	}
	if reduce == 0 {
		reduce = ChooseReduce(info, 416, 416) // 4 for 4000×3000
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, _, err := Decode(data, DecodeOptions{Reduce: reduce})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
	b.ReportMetric(float64(reduce), "reduce")
}

// BenchmarkDecodeFull decodes a 4000×3000 JPEG at full size.
func BenchmarkDecodeFull(b *testing.B) { benchDecode(b, 1) }

// BenchmarkDecodeReduced decodes the same JPEG at the reduction ChooseReduce picks for a
// 416×416 scene model (4: 1000×750), in the DCT domain.
func BenchmarkDecodeReduced(b *testing.B) { benchDecode(b, 0) }

func BenchmarkHeader(b *testing.B) {
	data := readFile(b, sharedImages(b)[0])
	for i := 0; i < b.N; i++ {
		if _, err := Header(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLetterbox: a 1920×1080 BGR frame into YOLOX-nano's 416×416 float32 NCHW tensor.
func BenchmarkLetterbox(b *testing.B) {
	m, _, err := Decode(readFile(b, sharedImages(b)[0]), DecodeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	gocv.Resize(m, &frame, image.Pt(1920, 1080), 0, 0, gocv.InterpolationLinear)
	spec := yoloxSpec()
	dst := make([]float32, 3*416*416)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Letterbox(frame, dst, spec); err != nil {
			b.Fatal(err)
		}
	}
}
