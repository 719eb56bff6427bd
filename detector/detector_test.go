package detector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocv.io/x/gocv"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"detector.runtime.intra_op_threads", func(c *Config) { c.Runtime.IntraOpThreads = 0 }},
		{"detector.runtime.provider", func(c *Config) { c.Runtime.Provider = "tpu" }},
		{"detector.models.scene", func(c *Config) { c.Models.Scene = "" }},
		{"detector.models.plate_detector", func(c *Config) { c.Models.PlateDetector = "yolo-plate" }},
		{"detector.models.plate_reader", func(c *Config) { c.Models.PlateReader = "tesseract" }},
		{"detector.models.face", func(c *Config) { c.Models.Face = "retinaface" }},
		{"detector.thresholds.phone", func(c *Config) { c.Thresholds.Phone = 1.5 }},
		{"detector.thresholds.offence.speeding", func(c *Config) { c.Thresholds.Offence["speeding"] = 0.5 }},
		{"detector.windshield.front", func(c *Config) { c.Windshield[pipeline.ViewFront] = Region{X: 0.5, W: 0.9, H: 0.2} }},
		{"detector.driver_side", func(c *Config) { c.DriverSide = "middle" }},
		{"detector.default_view", func(c *Config) { c.DefaultView = "side" }},
		{"detector.max_vehicles", func(c *Config) { c.MaxVehicles = 0 }},
		{"detector.plate_detect_side", func(c *Config) { c.PlateDetectSide = 10 }},
		{"detector.jpeg_quality", func(c *Config) { c.JPEGQuality = 0 }},
		{"detector.face_mask", func(c *Config) { c.FaceMask = "emoji" }},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if assert.Error(t, err, c.field) {
			assert.Contains(t, err.Error(), c.field+":")
		}
	}
}

func TestNewRejectsModelWithoutTheRole(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	cfg := DefaultConfig()
	cfg.Models.Scene = ModelYuNetFace // a face detector has no vehicle class
	_, err := New(cfg, testenv.ModelCache())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "models.scene")

	cfg = DefaultConfig()
	_, err = New(cfg, t.TempDir(), WithLibrary(testenv.ModelFile(t, "libonnxruntime.so.1"))) // no model files: named, not a crash
	require.Error(t, err)
	assert.Contains(t, err.Error(), "yolox")
}

// plateLabels reads the shared plate set's labels.
func plateLabels(t *testing.T) []evalmetrics.PlateLabel {
	dir := testenv.SharedPath(t, "data", "plates")
	txts, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	var out []evalmetrics.PlateLabel
	for _, p := range txts {
		f, err := os.Open(p)
		require.NoError(t, err)
		ls, err := evalmetrics.ParsePlateLabels(f)
		f.Close()
		if err != nil {
			continue // the licence text
		}
		for _, l := range ls {
			l.File = filepath.Join(dir, l.File)
			out = append(out, l)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// The scene model, run by the graph (reduced decode, letterbox, decode, frame mapping), finds
// a vehicle box around the labelled plate of (nearly) every image.
func TestSceneFindsVehicleAroundLabelledPlates(t *testing.T) {
	g := sharedDefaultGraph(t)
	labels := plateLabels(t)
	found := 0
	for _, l := range labels {
		_, d, err := g.AnalyzeDetailed(context.Background(), []View{{Data: readFile(t, l.File)}}, AnalyzeOptions{NoRender: true})
		require.NoError(t, err, l.File)
		cx, cy := l.Box.X+l.Box.W/2, l.Box.Y+l.Box.H/2
		for _, v := range d[0].Vehicles {
			if cx > v.Box.X && cx < v.Box.X+v.Box.W && cy > v.Box.Y && cy < v.Box.Y+v.Box.H {
				found++
				break
			}
		}
	}
	t.Logf("a vehicle box contains the plate centre in %d of %d images", found, len(labels))
	assert.GreaterOrEqual(t, float64(found)/float64(len(labels)), 0.9)
}

// The full default pipeline reads the shared plates (floor below the measured 0.80).
func TestPlatesEndToEnd(t *testing.T) {
	g := sharedDefaultGraph(t)
	ev, err := g.EvalPlates(context.Background(), testenv.SharedPath(t, "data", "plates"), nil)
	require.NoError(t, err)
	for _, r := range ev.Reads {
		if r.Ref != r.Hyp {
			t.Logf("%s: want %s, read %q", filepath.Base(r.File), r.Ref, r.Hyp)
		}
	}
	t.Logf("plates: n %d, exact %.3f, CER %.3f", ev.N, ev.Exact, ev.CER)
	assert.Equal(t, 30, ev.N)
	assert.GreaterOrEqual(t, ev.Exact, 0.7)
	assert.LessOrEqual(t, ev.CER, 0.2)
}

// renderPlate draws text in black on a white plate with a dark border, the way plates are
// printed, at a size the reader sees well (about 40 px characters).
func renderPlate(t *testing.T, text string) gocv.Mat {
	t.Helper()
	ft, err := opentype.Parse(gomonobold.TTF)
	require.NoError(t, err)
	face, err := opentype.NewFace(ft, &opentype.FaceOptions{Size: 56, DPI: 72, Hinting: font.HintingFull})
	require.NoError(t, err)
	defer face.Close()
	adv := font.MeasureString(face, text).Ceil()
	w, h := adv+60, 90
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{30, 30, 30, 255}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(4, 4, w-4, h-4), image.NewUniform(color.White), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face, Dot: fixed.P(30, 66)}
	d.DrawString(text)
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}))
	m, _, err := imgproc.Decode(buf.Bytes(), imgproc.DecodeOptions{})
	require.NoError(t, err)
	return m
}

// The plate reader (the crop path: resize into the model input, OCR, decode, interpret)
// reads plates rendered here with a real font, in several national layouts.
func TestPlateReaderReadsRenderedPlates(t *testing.T) {
	g := sharedDefaultGraph(t)
	for _, text := range []string{"1ABC234", "AB123CD", "ABC1234", "XY12ZW", "7KPR905"} {
		m := renderPlate(t, text)
		res, err := g.ReadPlate(context.Background(), m)
		m.Close()
		require.NoError(t, err)
		assert.Equal(t, text, res.Text, "raw %q conf %.2f", res.Raw, res.Confidence)
		assert.Greater(t, res.Confidence, 0.5)
	}
}

func pngHeader(w, h uint32, depth, ctype byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, ctype
	binary.Write(&b, binary.BigEndian, uint32(13))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	b.WriteString("\x00\x00\x00\x00IEND\xaeB`\x82")
	return b.Bytes()
}

// Bad input gives a typed error (imgproc's kinds, which the worker dead-letters), never a
// panic, and the graph keeps working afterwards.
func TestAnalyzeBadInput(t *testing.T) {
	g := sharedDefaultGraph(t)
	good := readFile(t, testenv.SharedPath(t, "data", "plates", "car1.jpg"))
	corrupt := append([]byte(nil), good...)
	sof := bytes.Index(corrupt, []byte{0xFF, 0xC0})
	require.Greater(t, sof, 0)
	corrupt[sof+5], corrupt[sof+6] = 0, 0 // height 0 in the frame header
	garbled := append([]byte(nil), good...)
	for i := 600; i < len(garbled)-2; i += 7 {
		garbled[i] ^= 0x5A // entropy-coded data scrambled
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"zero bytes", nil, imgproc.ErrEmpty},
		{"text file", []byte("plate,country\n1ABC234,BE\n"), imgproc.ErrUnknownFormat},
		{"truncated jpeg", good[:len(good)/2], imgproc.ErrTruncated},
		{"png bomb", pngHeader(100000, 100000, 8, 2), imgproc.ErrTooLarge},
		{"16-bit png", pngHeader(640, 480, 16, 2), imgproc.ErrUnsupported},
		{"rgba png", pngHeader(640, 480, 8, 6), imgproc.ErrUnsupported},
		{"corrupt jpeg", corrupt, imgproc.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := g.Analyze(context.Background(), []View{{Data: c.data}})
			require.Error(t, err)
			assert.ErrorIs(t, err, c.want)
			assert.NotEmpty(t, imgproc.Reason(err))
		})
	}
	// Scrambled scan data: libjpeg decodes what it can (with a warning); the analysis must
	// end in a result or a typed error, not a panic.
	if _, err := g.Analyze(context.Background(), []View{{Data: garbled}}); err != nil {
		assert.NotEmpty(t, imgproc.Reason(err), "%v", err)
	}
	_, err := g.Analyze(context.Background(), []View{{Data: good}})
	require.NoError(t, err)
}

// An unflagged passage renders nothing (privacy); with Render every view gets an annotated
// frame, a plate crop and a driver crop, each with its SHA-256.
func TestEvidenceRendering(t *testing.T) {
	g := sharedDefaultGraph(t)
	data := readFile(t, testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg"))
	res, err := g.Analyze(context.Background(), []View{{Data: data}})
	require.NoError(t, err)
	require.False(t, res.Detection.Flagged)
	assert.Empty(t, res.Artifacts)

	res, _, err = g.AnalyzeDetailed(context.Background(), []View{{Data: data, Frame: pipeline.Frame{View: pipeline.ViewRear}}}, AnalyzeOptions{Render: true})
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, a := range res.Artifacts {
		kinds[a.Kind]++
		sum := sha256.Sum256(a.Data)
		assert.Equal(t, hex.EncodeToString(sum[:]), a.SHA256)
		assert.Equal(t, "image/jpeg", a.ContentType)
		assert.Equal(t, pipeline.ViewRear, a.View)
		_, err := jpeg.Decode(bytes.NewReader(a.Data))
		assert.NoError(t, err, a.Kind)
	}
	assert.Equal(t, 1, kinds[pipeline.EvidenceAnnotated])
	assert.GreaterOrEqual(t, kinds[pipeline.EvidencePlateCrop], 1)
	assert.GreaterOrEqual(t, kinds[pipeline.EvidenceDriverCrop], 1)
	assert.Greater(t, res.Detection.TimingsMS[StageRender], 0.0)
}

// Faces outside the driver's region are masked in the annotated frame.
func TestFaceMasking(t *testing.T) {
	img := gocv.NewMatWithSize(200, 200, gocv.MatTypeCV8UC3)
	defer img.Close()
	// A checkerboard: pixelation must flatten it.
	for y := 0; y < 200; y++ {
		for x := 0; x < 200; x++ {
			if (x/2+y/2)%2 == 0 {
				img.SetUCharAt(y, x*3, 255)
				img.SetUCharAt(y, x*3+1, 255)
				img.SetUCharAt(y, x*3+2, 255)
			}
		}
	}
	r := image.Rect(50, 50, 150, 150)
	mask(&img, r, "pixelate")
	// Inside: neighbouring pixels of a cell are equal; outside: unchanged.
	assert.Equal(t, img.GetUCharAt(60, 60*3), img.GetUCharAt(60, 61*3))
	assert.Equal(t, img.GetUCharAt(60, 60*3), img.GetUCharAt(61, 60*3))
	assert.NotEqual(t, img.GetUCharAt(10, 10*3), img.GetUCharAt(10, 12*3))
	mask(&img, r, "fill")
	assert.Equal(t, uint8(colMask.B), img.GetUCharAt(100, 100*3))
}

// Every Detection names its models with versions and carries every stage's timing.
func TestDetectionFields(t *testing.T) {
	g := sharedDefaultGraph(t)
	data := readFile(t, testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg"))
	fr := pipeline.Frame{Bucket: "frames", Key: "cam1/a.jpg", ETag: "e1", PassageID: "p1", Camera: "cam1", View: pipeline.ViewRear}
	res, err := g.Analyze(context.Background(), []View{{Frame: fr, Data: data}})
	require.NoError(t, err)
	d := res.Detection
	assert.Equal(t, pipeline.Version, d.V)
	assert.Equal(t, "p1", d.PassageID)
	require.Len(t, d.Frames, 1)
	assert.Equal(t, pipeline.FrameRef{Bucket: "frames", Key: "cam1/a.jpg", ETag: "e1", View: pipeline.ViewRear, Width: 1280, Height: 720}, d.Frames[0])
	roles := map[string]string{}
	for _, m := range d.Models {
		assert.NotEmpty(t, m.Version, m.Name)
		roles[m.Role] = m.Name
	}
	assert.Equal(t, map[string]string{RoleScene: ModelYOLOXNano, RolePhone: ModelOccupant, RoleSeatbelt: ModelOccupant,
		RolePlateDetector: ModelPaddleDet, RolePlateReader: ModelFastPlateOCR, RoleFace: ModelYuNetFace}, roles)
	for _, k := range []string{StageDecode, StageScene, StagePhone, StageSeatbelt, StageOccupant, StagePlateDetect, StagePlateOCR, StageFace, StageRender, StageTotal} {
		assert.Contains(t, d.TimingsMS, k)
	}
	assert.Greater(t, d.TimingsMS[StageScene], 0.0)
	require.NotEmpty(t, d.Vehicles)
	v := d.Vehicles[0]
	assert.Contains(t, []string{pipeline.SeatbeltWorn, pipeline.SeatbeltNotWorn, pipeline.StateUnknown}, v.Seatbelt.State)
	assert.Greater(t, d.TimingsMS[StageOccupant], 0.0, "the occupant classifier judged the driver")
	require.NotNil(t, v.Plate)
	assert.Equal(t, "7AHN739", v.Plate.Text)
	assert.Len(t, v.Plate.Corners, 4)
	assert.Equal(t, len(v.Plate.Text), len(v.Plate.CharConfidence))
	// The driver of a rear view sits on the image's left for left-hand drive.
	require.NotNil(t, v.Driver)
	require.NotNil(t, v.Passenger)
	assert.Less(t, v.Driver.X, v.Passenger.X)
	_, err = pipeline.Decode[pipeline.Detection](mustJSON(t, d))
	assert.NoError(t, err)
}

// Front view of an oncoming left-hand-drive car: the driver is on the image's right;
// Frame.DriverSide "right" (a camera seeing right-hand-drive cars) mirrors it.
func TestDriverSide(t *testing.T) {
	g := sharedDefaultGraph(t)
	data := readFile(t, testenv.SharedPath(t, "data", "seatbelt-phone", "images", "1_CAR_08-02-24-365.jpg"))
	for _, c := range []struct {
		side        string
		driverRight bool
	}{{"", true}, {"left", true}, {"right", false}} {
		res, err := g.Analyze(context.Background(), []View{{Data: data, Frame: pipeline.Frame{View: pipeline.ViewFront, DriverSide: c.side}}})
		require.NoError(t, err)
		require.NotEmpty(t, res.Detection.Vehicles)
		v := res.Detection.Vehicles[0]
		assert.Equal(t, c.driverRight, v.Driver.X > v.Passenger.X, "driver side %q", c.side)
	}
}

// Graphs from one factory run at once without sharing state: the same images give the same
// reads concurrently as one after the other.
func TestFactoryConcurrentGraphs(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	factory, err := NewFactory(DefaultConfig(), testenv.ModelCache())
	require.NoError(t, err)
	files := sharedImages(t, "data", "plates")[:6]
	want := map[string]string{}
	a0, err := factory()
	require.NoError(t, err)
	defer a0.(*Graph).Close()
	plateOf := func(a Analyzer, p string) string {
		res, err := a.Analyze(context.Background(), []View{{Data: readFile(t, p)}})
		require.NoError(t, err)
		for _, v := range res.Detection.Vehicles {
			if v.Plate != nil {
				return v.Plate.Text
			}
		}
		return ""
	}
	for _, p := range files {
		want[p] = plateOf(a0, p)
	}
	var wg sync.WaitGroup
	got := make([]map[string]string, 2)
	for i := range got {
		a, err := factory()
		require.NoError(t, err)
		defer a.(*Graph).Close()
		got[i] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range files {
				res, err := a.Analyze(context.Background(), []View{{Data: readFile(t, p)}})
				if err != nil {
					t.Error(err)
					return
				}
				for _, v := range res.Detection.Vehicles {
					if v.Plate != nil {
						got[i][p] = v.Plate.Text
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, gm := range got {
		for p, w := range want {
			assert.Equal(t, w, gm[p], p)
		}
	}
}

// Two views of one passage: the plate of the better view is the passage's plate.
func TestBestPlateAcrossViews(t *testing.T) {
	g := sharedDefaultGraph(t)
	good := readFile(t, testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg"))
	other := readFile(t, testenv.SharedPath(t, "data", "seatbelt-phone", "images", "1_CAR_08-02-24-365.jpg"))
	res, err := g.Analyze(context.Background(), []View{
		{Data: other, Frame: pipeline.Frame{View: pipeline.ViewFront}},
		{Data: good, Frame: pipeline.Frame{View: pipeline.ViewRear}},
	})
	require.NoError(t, err)
	require.Len(t, res.Detection.Frames, 2)
	var mains []pipeline.Vehicle
	seen := map[string]bool{}
	for _, v := range res.Detection.Vehicles {
		if !seen[v.View] {
			seen[v.View] = true
			mains = append(mains, v)
		}
	}
	require.Len(t, mains, 2)
	for _, v := range mains {
		require.NotNil(t, v.Plate, v.View)
		assert.Equal(t, "7AHN739", v.Plate.Text, v.View)
		assert.Equal(t, pipeline.ViewRear, v.Plate.View)
	}
}

func mustJSON(t *testing.T, d pipeline.Detection) []byte {
	b, err := d.MarshalJSON()
	require.NoError(t, err)
	return b
}

var _ = strings.Contains
var _ = errors.Is

// A 1-channel (IR) JPEG goes through the same graph: decoded to 3 channels, plate read.
func TestGreyscaleIRFrame(t *testing.T) {
	g := sharedDefaultGraph(t)
	m, _, err := imgproc.Decode(readFile(t, testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg")), imgproc.DecodeOptions{})
	require.NoError(t, err)
	grey := imgproc.ToGray(m)
	m.Close()
	data, err := imgproc.EncodeJPEG(grey, 95)
	grey.Close()
	require.NoError(t, err)
	info, err := imgproc.Header(data)
	require.NoError(t, err)
	require.Equal(t, 1, info.Channels)
	res, err := g.Analyze(context.Background(), []View{{Data: data, Frame: pipeline.Frame{View: pipeline.ViewRear}}})
	require.NoError(t, err)
	require.NotEmpty(t, res.Detection.Vehicles)
	require.NotNil(t, res.Detection.Vehicles[0].Plate)
	assert.Equal(t, "7AHN739", res.Detection.Vehicles[0].Plate.Text)
}

func TestMergeLines(t *testing.T) {
	box := func(x1, y1, x2, y2 float64) textLine {
		return textLine{quad: [4]imgproc.Point{{X: x1, Y: y1}, {X: x2, Y: y1}, {X: x2, Y: y2}, {X: x1, Y: y2}}, score: 0.8}
	}
	// "B MW" and "1234" of a German plate, 20 px high, 14 px apart: joined.
	got := mergeLines([]textLine{box(140, 100, 200, 120), box(100, 100, 126, 120), box(300, 300, 360, 320)})
	require.Len(t, got, 1)
	assert.Equal(t, imgproc.Point{X: 100, Y: 100}, got[0].quad[0])
	assert.Equal(t, imgproc.Point{X: 200, Y: 120}, got[0].quad[2])
	// Far apart, or on different lines, or of different heights: not joined.
	assert.Empty(t, mergeLines([]textLine{box(100, 100, 126, 120), box(200, 100, 260, 120)}))
	assert.Empty(t, mergeLines([]textLine{box(100, 100, 126, 120), box(130, 115, 190, 135)}))
	assert.Empty(t, mergeLines([]textLine{box(100, 100, 126, 120), box(130, 100, 190, 150)}))
}

// euPlate draws a European plate: white, the blue EU band with the country code at the
// left, the registration in colour.
func euPlate(t *testing.T, band, text string, ink color.RGBA) image.Image {
	ft, err := opentype.Parse(gomonobold.TTF)
	require.NoError(t, err)
	face, err := opentype.NewFace(ft, &opentype.FaceOptions{Size: 80, DPI: 72, Hinting: font.HintingFull})
	require.NoError(t, err)
	defer face.Close()
	small, err := opentype.NewFace(ft, &opentype.FaceOptions{Size: 30, DPI: 72})
	require.NoError(t, err)
	defer small.Close()
	w, h := 520, 110
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{20, 20, 20, 255}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(3, 3, w-3, h-3), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(3, 3, 48, h-3), image.NewUniform(color.RGBA{0, 51, 153, 255}), image.Point{}, draw.Src)
	(&font.Drawer{Dst: img, Src: image.NewUniform(color.White), Face: small, Dot: fixed.P(14, 95)}).DrawString(band)
	adv := font.MeasureString(face, text).Ceil()
	(&font.Drawer{Dst: img, Src: image.NewUniform(ink), Face: face, Dot: fixed.P(48+(w-48-adv)/2, 84)}).DrawString(text)
	return img
}

// A European plate (rendered, pasted over the plate of a real car photo) goes through the
// whole default graph: the band's code is not glued into the text, and a registration that
// begins like a band code keeps its first letter.
func TestEuropeanPlateOnRealCar(t *testing.T) {
	g := sharedDefaultGraph(t)
	f, err := os.Open(testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg"))
	require.NoError(t, err)
	car, err := jpeg.Decode(f)
	f.Close()
	require.NoError(t, err)
	// The labelled plate is at 785,131 (80x40): cover it with a 4.7:1 plate of the same
	// centre, wider as European plates are.
	const cx, cy, pw = 825.0, 151.0, 140
	ph := pw * 110 / 520
	for _, c := range []struct {
		band, text, want, country string
		ink                       color.RGBA
	}{
		{"B", "1-ABC-234", "1ABC234", "BE", color.RGBA{170, 20, 30, 255}},
		{"NL", "GB-123-K", "GB123K", "NL", color.RGBA{10, 10, 10, 255}},
		{"F", "AB-123-CD", "AB123CD", "FR", color.RGBA{10, 10, 10, 255}},
		{"D", "K AB 1234", "KAB1234", "DE", color.RGBA{10, 10, 10, 255}},
		{"D", "B AB 1234", "BAB1234", "DE", color.RGBA{10, 10, 10, 255}}, // Berlin: B is the district
		// Bucharest: the B is the registration's, not Belgium's band (no Romanian layout here).
		{"RO", "B 123 ABC", "B123ABC", "", color.RGBA{10, 10, 10, 255}},
	} {
		t.Run(c.want, func(t *testing.T) {
			img := image.NewRGBA(car.Bounds())
			draw.Draw(img, img.Bounds(), car, image.Point{}, draw.Src)
			r := image.Rect(int(cx-pw/2), int(cy-float64(ph)/2), int(cx+pw/2), int(cy+float64(ph)/2))
			xdraw.CatmullRom.Scale(img, r, euPlate(t, c.band, c.text, c.ink), image.Rect(0, 0, 520, 110), xdraw.Src, nil)
			var buf bytes.Buffer
			require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}))
			res, det, err := g.AnalyzeDetailed(context.Background(), []View{{Data: buf.Bytes(), Frame: pipeline.Frame{View: pipeline.ViewRear}}}, AnalyzeOptions{NoRender: true})
			require.NoError(t, err)
			for _, p := range det[0].Plates {
				t.Logf("candidate read %q %.2f at %+v", p.Text, p.Confidence, *p.Box)
			}
			require.NotEmpty(t, res.Detection.Vehicles)
			p := res.Detection.Vehicles[0].Plate
			require.NotNil(t, p)
			t.Logf("read %q raw %q country %s from %s conf %.2f", p.Text, p.Raw, p.Country, p.CountryFrom, p.Confidence)
			assert.Equal(t, c.want, p.Text)
			assert.Equal(t, c.country, p.Country)
		})
	}
}

// standInCatalog is the builtin catalogue plus yolox-nano under another name with its
// "person" class given the role role: a stand-in for the phone or seatbelt models the
// reference pack lacks, so the stages, offence rules and flagged-passage evidence run on
// real detections.
func standInCatalog(t *testing.T, name, role string) models.Catalog {
	cat, err := models.Builtin()
	require.NoError(t, err)
	m := *cat[ModelYOLOXNano]
	m.Name = name
	m.Classes = []models.Class{{ID: 0, Name: role, Role: role}}
	cat[name] = &m
	return cat
}

func TestSeatbeltDetectorFlagsPassage(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	cfg := DefaultConfig()
	cfg.Models.Seatbelt = "belt-standin"
	cfg.Thresholds.Seatbelt = 0.2
	cfg.Thresholds.Offence[pipeline.OffenceSeatbelt] = 0.2
	g, err := New(cfg, testenv.ModelCache(), WithCatalog(standInCatalog(t, "belt-standin", models.RoleNoSeatbelt)))
	require.NoError(t, err)
	defer g.Close()
	flagged := 0
	for _, p := range sharedImages(t, "data", "seatbelt-phone", "images")[:12] {
		res, err := g.Analyze(context.Background(), []View{{Data: readFile(t, p), Frame: pipeline.Frame{View: pipeline.ViewFront, PassageID: p}}})
		require.NoError(t, err)
		d := res.Detection
		if !d.Flagged {
			assert.Empty(t, res.Artifacts, "unflagged passages render nothing")
			continue
		}
		// The phone role stays the occupant classifier's: only the seatbelt offence is the
		// stand-in detector's.
		o, ok := offenceOf(d, pipeline.OffenceSeatbelt)
		if !ok {
			continue
		}
		flagged++
		v := d.Vehicles[o.Vehicle]
		assert.Equal(t, pipeline.SeatbeltNotWorn, v.Seatbelt.State)
		assert.GreaterOrEqual(t, o.Score, 0.2)
		require.NotNil(t, v.Seatbelt.Box)
		// The finding lies in or near the driver's half of the windshield.
		cx := v.Seatbelt.Box.X + v.Seatbelt.Box.W/2
		assert.Greater(t, cx, v.Driver.X-v.Driver.W*0.2)
		kinds := map[string]bool{}
		for _, a := range res.Artifacts {
			kinds[a.Kind] = true
		}
		assert.True(t, kinds[pipeline.EvidenceAnnotated] && kinds[pipeline.EvidenceDriverCrop], "%v", kinds)
		assert.Greater(t, d.TimingsMS[StageFace], 0.0, "faces are looked for before rendering")
		assert.Contains(t, d.Models, pipeline.ModelRef{Name: "belt-standin", Version: "0.1.1rc0-coco", Role: RoleSeatbelt})
	}
	t.Logf("%d of 12 passages flagged by the stand-in", flagged)
	assert.Greater(t, flagged, 0)
}

// offenceOf is d's offence of kind k.
func offenceOf(d pipeline.Detection, k string) (pipeline.Offence, bool) {
	for _, o := range d.Offences {
		if o.Kind == k {
			return o, true
		}
	}
	return pipeline.Offence{}, false
}

func TestPhoneModelFlagsPassage(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	cfg := DefaultConfig()
	cfg.Models.Phone = "phone-standin"
	cfg.PhoneRefine = true
	cfg.Thresholds.Phone = 0.2
	cfg.Thresholds.Offence[pipeline.OffencePhone] = 0.2
	g, err := New(cfg, testenv.ModelCache(), WithCatalog(standInCatalog(t, "phone-standin", models.RolePhone)))
	require.NoError(t, err)
	defer g.Close()
	flagged := 0
	for _, p := range sharedImages(t, "data", "seatbelt-phone", "images")[:12] {
		res, err := g.Analyze(context.Background(), []View{{Data: readFile(t, p), Frame: pipeline.Frame{View: pipeline.ViewFront}}})
		require.NoError(t, err)
		o, ok := offenceOf(res.Detection, pipeline.OffencePhone)
		if !ok {
			continue // unflagged, or flagged for the belt by the occupant classifier
		}
		flagged++
		assert.Equal(t, pipeline.PhoneHeld, res.Detection.Vehicles[o.Vehicle].Phone.State)
		assert.NotEmpty(t, res.Artifacts)
		assert.Greater(t, res.Detection.TimingsMS[StagePhone], 0.0)
	}
	assert.Greater(t, flagged, 0)
}

// provider cuda on a box without the CUDA build (this one) runs on the CPU, not fails.
func TestCUDAConfigFallsBackToCPU(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	if _, err := os.Stat(filepath.Join(testenv.ModelCache(), "libonnxruntime_providers_cuda.so")); err == nil {
		t.Skip("the CUDA build is in the cache: this box may run CUDA")
	}
	cfg := DefaultConfig()
	cfg.Runtime.Provider = "cuda:0"
	g := newTestGraph(t, cfg)
	res, err := g.Analyze(context.Background(), []View{{Data: readFile(t, testenv.SharedPath(t, "data", "plates", "wts-lg-000132.jpg")), Frame: pipeline.Frame{View: pipeline.ViewRear}}})
	require.NoError(t, err)
	require.NotEmpty(t, res.Detection.Vehicles)
	require.NotNil(t, res.Detection.Vehicles[0].Plate)
	assert.Equal(t, "7AHN739", res.Detection.Vehicles[0].Plate.Text)
	assert.Equal(t, "cpu", g.scene.s.Provider())
}

// A close-up where the scene model sees no vehicle: the frame stands in for the vehicle, the
// plate is read, the occupants are unknown (never an offence).
func TestWholeFrameStandIn(t *testing.T) {
	g := sharedDefaultGraph(t)
	res, _, err := g.AnalyzeDetailed(context.Background(), []View{{Data: readFile(t, testenv.SharedPath(t, "data", "plates", "car1.jpg"))}}, AnalyzeOptions{Render: true})
	require.NoError(t, err)
	require.Len(t, res.Detection.Vehicles, 1)
	v := res.Detection.Vehicles[0]
	assert.Equal(t, "unknown", v.Class)
	assert.Equal(t, pipeline.StateUnknown, v.Phone.State)
	assert.Equal(t, pipeline.StateUnknown, v.Seatbelt.State)
	assert.Nil(t, v.Driver)
	require.NotNil(t, v.Plate)
	assert.Equal(t, "627WW", v.Plate.Text[:5])
	assert.False(t, res.Detection.Flagged)
	for _, a := range res.Artifacts {
		assert.NotEqual(t, pipeline.EvidenceDriverCrop, a.Kind)
	}
}
