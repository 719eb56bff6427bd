package imgproc

import (
	"errors"
	"image"
	"image/color"
	"runtime"
	"testing"

	"gocv.io/x/gocv"
)

func TestHeaderRealJPEGs(t *testing.T) {
	for _, p := range sharedImages(t) {
		info, err := Header(readFile(t, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// The set is documented as 640x640 colour JPEG.
		if info.Format != FormatJPEG || info.Width != 640 || info.Height != 640 || info.Channels != 3 || info.BitDepth != 8 {
			t.Fatalf("%s: header %+v, want jpeg 640x640x3 8-bit", p, info)
		}
	}
}

func TestDecodeRealJPEGFullAndReduced(t *testing.T) {
	imgs := sharedImages(t)
	data := readFile(t, imgs[0])
	for _, tc := range []struct{ reduce, want int }{{1, 640}, {2, 320}, {4, 160}, {8, 80}} {
		m, info, err := Decode(data, DecodeOptions{Reduce: tc.reduce})
		if err != nil {
			t.Fatalf("reduce %d: %v", tc.reduce, err)
		}
		if m.Cols() != tc.want || m.Rows() != tc.want || m.Channels() != 3 {
			t.Errorf("reduce %d: got %dx%dx%d, want %dx%dx3", tc.reduce, m.Cols(), m.Rows(), m.Channels(), tc.want, tc.want)
		}
		if info.Width != 640 || info.Height != 640 {
			t.Errorf("reduce %d: info %+v must describe the full frame", tc.reduce, info)
		}
		// A real photo is not a flat colour: the decode produced content.
		mean := m.Mean()
		g := ToGray(m)
		_, maxVal, _, _ := gocv.MinMaxLoc(g)
		g.Close()
		if mean.Val1 < 5 || maxVal < 100 {
			t.Errorf("reduce %d: decoded image looks blank (mean %v, max %v)", tc.reduce, mean, maxVal)
		}
		m.Close()
	}
}

func TestDecodeAllSharedImages(t *testing.T) {
	for _, p := range sharedImages(t) {
		m, _, err := Decode(readFile(t, p), DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		m.Close()
	}
}

// Grey (IR) images must come out as 3-channel BGR with B=G=R, so models get 3 channels.
func TestDecodeGreyToBGR(t *testing.T) {
	src := greyImage(300, 200)
	for name, data := range map[string][]byte{
		"jpeg": encodeJPEGStd(t, src),
		"png":  encodePNGStd(t, src),
	} {
		t.Run(name, func(t *testing.T) {
			info, err := Header(data)
			if err != nil {
				t.Fatal(err)
			}
			if info.Channels != 1 || info.Width != 300 || info.Height != 200 {
				t.Fatalf("header %+v, want 300x200 1 channel", info)
			}
			m, _, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Channels() != 3 || m.Cols() != 300 || m.Rows() != 200 {
				t.Fatalf("decoded %dx%dx%d, want 300x200x3", m.Cols(), m.Rows(), m.Channels())
			}
			for _, x := range []int{10, 128, 250} {
				v := m.GetVecbAt(100, x)
				if v[0] != v[1] || v[1] != v[2] {
					t.Errorf("pixel (%d,100) = %v, want B=G=R", x, v)
				}
				if d := int(v[0]) - x%256; d < -3 || d > 3 {
					t.Errorf("pixel (%d,100) = %v, want about %d", x, v, x%256)
				}
			}
		})
	}
}

func TestDecodeColourPNG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = 255 // opaque white, so Go writes a plain RGB PNG
	}
	img.Set(10, 5, color.RGBA{R: 200, G: 20, B: 60, A: 255})
	data := encodePNGStd(t, img)
	m, info, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info.Format != FormatPNG || info.Channels != 3 {
		t.Fatalf("info %+v", info)
	}
	if v := m.GetVecbAt(5, 10); v[0] != 60 || v[1] != 20 || v[2] != 200 {
		t.Fatalf("pixel = %v, want BGR [60 20 200]", v)
	}
}

func TestBadInputTypedErrors(t *testing.T) {
	real := readFile(t, sharedImages(t)[0])
	rgba := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	rgba.SetNRGBA(1, 1, color.NRGBA{R: 10, A: 100}) // not opaque: Go keeps the alpha channel
	g16 := image.NewGray16(image.Rect(0, 0, 8, 8))
	g16.SetGray16(2, 2, color.Gray16{Y: 40000})
	headerOnly := append([]byte(nil), real[:findSOS(t, real)]...)
	headerOnly = append(headerOnly, 0xFF, 0xD9)
	truncatedPNG := encodePNGStd(t, greyImage(100, 100))
	truncatedPNG = truncatedPNG[:len(truncatedPNG)/2]

	// The real JPEG with its frame header patched to claim 60000x60000 (3.6 GP).
	hugeJPEG := append([]byte(nil), real...)
	sof := findMarker(t, hugeJPEG, 0xC0)
	hugeJPEG[sof+5], hugeJPEG[sof+6], hugeJPEG[sof+7], hugeJPEG[sof+8] = 0xEA, 0x60, 0xEA, 0x60

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"text", []byte("camera,plate\nA,1-ABC-123\n"), ErrUnknownFormat},
		{"jpeg signature only", real[:2], ErrTruncated},
		{"jpeg cut in the header", real[:100], ErrTruncated},
		{"jpeg cut in the scan", real[:len(real)/2], ErrTruncated},
		{"jpeg without scan", headerOnly, ErrCorrupt},
		{"png cut", truncatedPNG, ErrTruncated},
		{"png 16-bit", encodePNGStd(t, g16), ErrUnsupported},
		{"png rgba", encodePNGStd(t, rgba), ErrUnsupported},
		{"png bomb 100000x100000", pngWithIHDR(100000, 100000, 8, 2), ErrTooLarge},
		{"png 20000x20000 over 100 MP", pngWithIHDR(20000, 20000, 8, 2), ErrTooLarge},
		{"png 0x10", pngWithIHDR(0, 10, 8, 2), ErrCorrupt},
		{"jpeg claiming 60000x60000", hugeJPEG, ErrTooLarge},
		{"png bad colour type", pngWithIHDR(10, 10, 8, 5), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := Decode(tc.data, DecodeOptions{})
			if err == nil {
				m.Close()
				t.Fatalf("Decode accepted %s", tc.name)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || Reason(err) == "" {
				t.Fatalf("error %v is not a typed *Error with a reason", err)
			}
		})
	}
}

func findSOS(t *testing.T, jpg []byte) int { return findMarker(t, jpg, 0xDA) }

func findMarker(t *testing.T, jpg []byte, marker byte) int {
	t.Helper()
	for i := 2; i+1 < len(jpg); i++ {
		if jpg[i] == 0xFF && jpg[i+1] == marker {
			return i
		}
	}
	t.Fatalf("no 0x%02X marker", marker)
	return 0
}

func TestDecodePalettePNG(t *testing.T) {
	pal := image.NewPaletted(image.Rect(0, 0, 20, 10), color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{10, 200, 30, 255}})
	pal.SetColorIndex(3, 4, 1)
	m, info, err := Decode(encodePNGStd(t, pal), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info.Channels != 3 || info.BitDepth > 8 {
		t.Fatalf("palette info %+v", info)
	}
	if v := m.GetVecbAt(4, 3); v[0] != 30 || v[1] != 200 || v[2] != 10 {
		t.Fatalf("palette pixel %v, want BGR [30 200 10]", v)
	}
}

func TestHeaderPixelLimitConfigurable(t *testing.T) {
	data := readFile(t, sharedImages(t)[0]) // 640x640 = 409600 pixels
	if _, err := HeaderLimit(data, 409600); err != nil {
		t.Fatalf("limit equal to the size: %v", err)
	}
	if _, err := HeaderLimit(data, 409599); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limit one below: %v, want ErrTooLarge", err)
	}
	if _, _, err := Decode(data, DecodeOptions{MaxPixels: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode with MaxPixels 1000: %v, want ErrTooLarge", err)
	}
}

// The bomb is rejected from its 45-byte header: checking it must not allocate anything near
// its claimed 30 GB of pixels.
func TestBombRejectedWithoutAllocating(t *testing.T) {
	bomb := pngWithIHDR(100000, 100000, 8, 2)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		m, _, err := Decode(bomb, DecodeOptions{})
		if !errors.Is(err, ErrTooLarge) {
			m.Close()
			t.Fatalf("bomb: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("100 rejections allocated %d bytes", got)
	}
}

func TestDecodeInvalidReduce(t *testing.T) {
	_, _, err := Decode(readFile(t, sharedImages(t)[0]), DecodeOptions{Reduce: 3})
	if !errors.Is(err, ErrInvalidReduce) {
		t.Fatalf("reduce 3: %v", err)
	}
}

func TestChooseReduce(t *testing.T) {
	for _, tc := range []struct{ w, h, mw, mh, want int }{
		{4000, 3000, 416, 416, 4},
		{1920, 1080, 416, 416, 2},
		{640, 640, 416, 416, 1},
		{8000, 6000, 416, 416, 8},
		{4000, 3000, 640, 640, 4},
		{1920, 1080, 640, 640, 1},
		{100, 100, 0, 0, 1},
	} {
		if got := ChooseReduce(Info{Width: tc.w, Height: tc.h}, tc.mw, tc.mh); got != tc.want {
			t.Errorf("ChooseReduce(%dx%d, %dx%d) = %d, want %d", tc.w, tc.h, tc.mw, tc.mh, got, tc.want)
		}
	}
}

func TestReasonLabels(t *testing.T) {
	if Reason(errors.New("other")) != "" {
		t.Fatal("a foreign error has no reason")
	}
	_, err := Header([]byte("GIF89a"))
	if Reason(err) != "unknown_format" {
		t.Fatalf("reason %q", Reason(err))
	}
}
