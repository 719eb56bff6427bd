package imgproc

import (
	"errors"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func TestCropClamped(t *testing.T) {
	src := testMat(t) // 200x100
	defer src.Close()
	c, used, err := Crop(src, image.Rect(150, 30, 260, 70))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if used != image.Rect(150, 30, 200, 70) || c.Cols() != 50 || c.Rows() != 40 {
		t.Fatalf("crop %v, %dx%d", used, c.Cols(), c.Rows())
	}
	// Crop (0,0) is source (150,30): blue background, the red square (100..119) is left of it.
	if v := c.GetVecbAt(0, 0); v[0] != 255 {
		t.Fatalf("crop (0,0) = %v, want blue", v)
	}
	if _, _, err := Crop(src, image.Rect(300, 300, 400, 400)); !errors.Is(err, ErrEmptyCrop) {
		t.Fatalf("outside crop: %v", err)
	}
	if r := BoxRect(Box{10.2, 20.5, 30.1, 40}, 0.5); r != image.Rect(0, 10, 41, 50) {
		t.Fatalf("BoxRect = %v", r)
	}
}

// plateMat is 200×100: left half red, right half green, top 10 rows white.
func plateMat() gocv.Mat {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 255, 0), 100, 200, gocv.MatTypeCV8UC3)
	r := m.Region(image.Rect(100, 0, 200, 100))
	r.SetTo(gocv.NewScalar(0, 255, 0, 0))
	r.Close()
	r = m.Region(image.Rect(0, 0, 200, 10))
	r.SetTo(gocv.NewScalar(255, 255, 255, 0))
	r.Close()
	return m
}

func TestRectifyPerspective(t *testing.T) {
	plate := plateMat()
	defer plate.Close()
	// Warp the plate into a skewed quadrilateral of a 400x300 scene, as a camera at an angle sees it.
	quad := [4]Point{{60, 80}, {330, 50}, {340, 200}, {50, 170}}
	src := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 0, Y: 0}, {X: 199, Y: 0}, {X: 199, Y: 99}, {X: 0, Y: 99}})
	defer src.Close()
	dstv := gocv.NewPoint2fVectorFromPoints([]gocv.Point2f{{X: 60, Y: 80}, {X: 330, Y: 50}, {X: 340, Y: 200}, {X: 50, Y: 170}})
	defer dstv.Close()
	h := gocv.GetPerspectiveTransform2f(src, dstv)
	defer h.Close()
	scene := gocv.NewMat()
	defer scene.Close()
	gocv.WarpPerspective(plate, &scene, h, image.Pt(400, 300))

	out, err := Rectify(scene, quad, 200, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if out.Cols() != 200 || out.Rows() != 100 {
		t.Fatalf("rectified %dx%d", out.Cols(), out.Rows())
	}
	check := func(x, y int, want [3]uint8) {
		t.Helper()
		v := out.GetVecbAt(y, x)
		for i := range want {
			if d := int(v[i]) - int(want[i]); d < -40 || d > 40 {
				t.Fatalf("rectified (%d,%d) = %v, want about %v", x, y, v, want)
			}
		}
	}
	check(50, 50, [3]uint8{0, 0, 255})     // red left half
	check(150, 50, [3]uint8{0, 255, 0})    // green right half
	check(100, 4, [3]uint8{255, 255, 255}) // white band on top

	// Corners given rotated by 180° turn the plate upside down: red comes out on the right.
	rot, err := Rectify(scene, [4]Point{quad[2], quad[3], quad[0], quad[1]}, 200, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	if v := rot.GetVecbAt(50, 150); v[2] < 200 || v[1] > 60 {
		t.Fatalf("rotated rectify (150,50) = %v, want red", v)
	}
	if _, err := Rectify(scene, [4]Point{{1, 1}, {1, 1}, {5, 5}, {0, 5}}, 10, 10); err == nil {
		t.Fatal("degenerate corners accepted")
	}
}

func TestEncodeJPEG(t *testing.T) {
	data := readFile(t, sharedImages(t)[0])
	m, _, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hi, err := EncodeJPEG(m, 95)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := EncodeJPEG(m, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(lo) >= len(hi) {
		t.Fatalf("quality 30 gave %d bytes, quality 95 %d", len(lo), len(hi))
	}
	back, info, err := Decode(hi, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	back.Close()
	if info.Width != 640 || info.Height != 640 {
		t.Fatalf("re-encoded %+v", info)
	}
	if _, err := EncodeJPEG(m, 0); err == nil {
		t.Fatal("quality 0 accepted")
	}
}
