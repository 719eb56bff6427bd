package imgproc

import (
	"testing"

	"gocv.io/x/gocv"
)

// The libjpeg path must give OpenCV's image: same size, and pixels that differ only by the
// chroma upsampling (plain instead of "fancy" triangle filtering), which moves colour edges
// by at most a pixel and leaves the mean nearly untouched.
func TestDecodeJPEGMatchesOpenCV(t *testing.T) {
	for _, p := range sharedImages(t) {
		data := readFile(t, p)
		for _, r := range []int{1, 2, 4} {
			flag := map[int]gocv.IMReadFlag{1: gocv.IMReadColor, 2: gocv.IMReadReducedColor2, 4: gocv.IMReadReducedColor4}[r]
			want, err := gocv.IMDecode(data, flag|gocv.IMReadIgnoreOrientation)
			if err != nil || want.Empty() {
				t.Fatalf("%s: opencv: %v", p, err)
			}
			got, _, err := Decode(data, DecodeOptions{Reduce: r})
			if err != nil {
				t.Fatalf("%s reduce %d: %v", p, r, err)
			}
			if got.Cols() != want.Cols() || got.Rows() != want.Rows() || got.Type() != want.Type() {
				t.Fatalf("%s reduce %d: %dx%d type %v, opencv %dx%d type %v", p, r, got.Cols(), got.Rows(), got.Type(), want.Cols(), want.Rows(), want.Type())
			}
			diff := gocv.NewMat()
			gocv.AbsDiff(got, want, &diff)
			mean := diff.Mean()
			if m := (mean.Val1 + mean.Val2 + mean.Val3) / 3; m > 1.5 {
				t.Errorf("%s reduce %d: mean absolute difference %.2f from OpenCV's decode", p, r, m)
			}
			diff.Close()
			got.Close()
			want.Close()
		}
	}
}

// DecodeInto reuses a buffer of the right size (same pixels, no new Mat) and replaces one of
// another size.
func TestDecodeIntoReusesBuffer(t *testing.T) {
	imgs := sharedImages(t)
	a := readFile(t, imgs[0])
	fresh, info, err := Decode(a, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()

	var buf gocv.Mat
	defer func() {
		if buf.Ptr() != nil {
			buf.Close()
		}
	}()
	if _, err := DecodeInto(a, DecodeOptions{}, &buf); err != nil {
		t.Fatal(err)
	}
	first := buf.Ptr()
	pix, _ := buf.DataPtrUint8()
	addr := &pix[0]
	// Scribble, decode again: the same Mat and pixel memory, holding the image again.
	buf.SetTo(gocv.NewScalar(7, 7, 7, 0))
	got, err := DecodeInto(a, DecodeOptions{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	pix2, _ := buf.DataPtrUint8()
	if buf.Ptr() != first || &pix2[0] != addr {
		t.Fatal("a buffer of the right size was not reused")
	}
	if got != info {
		t.Fatalf("info %+v, want %+v", got, info)
	}
	diff := gocv.NewMat()
	defer diff.Close()
	gocv.AbsDiff(buf, fresh, &diff)
	if n := gocv.CountNonZero(diff.Reshape(1, 0)); n != 0 {
		t.Fatalf("reused decode differs from a fresh one in %d values", n)
	}

	// Another size (a reduced decode): replaced.
	if _, err := DecodeInto(a, DecodeOptions{Reduce: 2}, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.Cols() != (info.Width+1)/2 || buf.Rows() != (info.Height+1)/2 {
		t.Fatalf("reduced into buffer: %dx%d", buf.Cols(), buf.Rows())
	}
	// Bad input leaves an error and a usable buffer.
	if _, err := DecodeInto(a[:len(a)/2], DecodeOptions{}, &buf); Reason(err) != "truncated" {
		t.Fatalf("truncated: %v", err)
	}
	if buf.Empty() {
		t.Fatal("buffer emptied by a failed decode")
	}
}

// A PNG goes through OpenCV into the buffer.
func TestDecodeIntoPNG(t *testing.T) {
	p := encodePNGStd(t, greyImage(40, 30))
	var buf gocv.Mat
	if _, err := DecodeInto(p, DecodeOptions{}, &buf); err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if buf.Cols() != 40 || buf.Rows() != 30 || buf.Channels() != 3 {
		t.Fatalf("png into buffer: %dx%dx%d", buf.Cols(), buf.Rows(), buf.Channels())
	}
}
