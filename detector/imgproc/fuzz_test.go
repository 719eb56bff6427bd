package imgproc

import (
	"errors"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	grey := greyImage(40, 30)
	j := encodeJPEGStd(f, grey)
	p := encodePNGStd(f, grey)
	f.Add(j)
	f.Add(j[:len(j)/2])
	f.Add(p)
	f.Add(p[:40])
	f.Add(pngWithIHDR(100000, 100000, 8, 2))
	f.Add(pngWithIHDR(16, 16, 16, 0))
	f.Add([]byte{})
	f.Add([]byte("\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9"))
	f.Add([]byte("hello"))
}

// FuzzHeader: any bytes give either a sane Info or a typed error, never a panic.
func FuzzHeader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Header(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || Reason(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if info.Width < 1 || info.Height < 1 || info.Width > MaxSide || info.Height > MaxSide || info.Pixels() > DefaultMaxPixels {
			t.Fatalf("accepted %+v", info)
		}
		if info.Channels != 1 && info.Channels != 3 {
			t.Fatalf("accepted %d channels", info.Channels)
		}
	})
}

// FuzzDecode: decoding arbitrary bytes never panics or crashes OpenCV; errors are typed and a
// success is a 3-channel image of the header's size. The pixel limit keeps each run small.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, info, err := Decode(data, DecodeOptions{MaxPixels: 1 << 20})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || Reason(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		defer m.Close()
		if m.Channels() != 3 || m.Cols() != info.Width || m.Rows() != info.Height {
			t.Fatalf("decoded %dx%dx%d, header %+v", m.Cols(), m.Rows(), m.Channels(), info)
		}
	})
}
