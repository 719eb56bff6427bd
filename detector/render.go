package detector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/pipeline"
)

var (
	colVehicle = color.RGBA{R: 0, G: 200, B: 255, A: 0}   // azure
	colDriver  = color.RGBA{R: 0, G: 255, B: 0, A: 0}     // green
	colPass    = color.RGBA{R: 255, G: 200, B: 0, A: 0}   // orange
	colPhone   = color.RGBA{R: 255, G: 0, B: 0, A: 0}     // red: the offence
	colPlate   = color.RGBA{R: 255, G: 0, B: 255, A: 0}   // magenta
	colMask    = color.RGBA{R: 40, G: 40, B: 40, A: 0}    // solid mask
	colText    = color.RGBA{R: 255, G: 255, B: 255, A: 0} // white
)

func newArtifact(kind, view string, data []byte) Artifact {
	sum := sha256.Sum256(data)
	return Artifact{Kind: kind, View: view, ContentType: "image/jpeg", Data: data, SHA256: hex.EncodeToString(sum[:])}
}

// render draws the evidence of the views that show an offence (all views when all is set):
// the annotated frame with bystanders' faces masked, the plate crop and the driver crop.
func (g *Graph) render(ctx context.Context, vs []*view, det *pipeline.Detection, tm timer, all bool) ([]Artifact, error) {
	offending := map[int]bool{}
	for _, o := range det.Offences {
		offending[o.Vehicle] = true
	}
	var arts []Artifact
	idx := 0
	for _, v := range vs {
		first := idx
		idx += len(v.vehicles)
		var show []int // vehicle indices (within the view) whose driver is evidence
		for i := range v.vehicles {
			if offending[first+i] {
				show = append(show, i)
			}
		}
		if len(show) == 0 && !all {
			continue
		}
		if len(show) == 0 {
			for i := range v.vehicles {
				show = append(show, i)
			}
		}
		a, err := g.renderView(ctx, v, show, tm)
		if err != nil {
			return nil, err
		}
		arts = append(arts, a...)
	}
	return arts, nil
}

func (g *Graph) renderView(ctx context.Context, v *view, show []int, tm timer) ([]Artifact, error) {
	full, err := g.fullMat(v, tm)
	if err != nil {
		return nil, err
	}
	// Faces: every face except the shown drivers' is masked.
	var faces []fdet
	if g.face != nil {
		t0 := time.Now()
		toFrame := func(t imgproc.Transform) imgproc.Transform { return t.WithFrame(v.info.Width, v.info.Height) }
		faces, err = g.face.detect(ctx, v.small, g.cfg.Thresholds.Face, g.face.nmsThreshold(0.3), toFrame)
		tm.since(StageFace, t0)
		if err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	defer tm.since(StageRender, t0)
	img := full.Clone()
	defer img.Close()
	W, H := v.info.Width, v.info.Height
	for _, f := range faces {
		b := f.Box.Clamp(W, H)
		v.detail.Faces = append(v.detail.Faces, scored(f, "face"))
		cx, cy := (b.X1+b.X2)/2, (b.Y1+b.Y2)/2
		keep := false
		for _, i := range show {
			if inside(v.vehicles[i].driver, cx, cy) {
				keep = true
			}
		}
		if !keep {
			mask(&img, imgproc.BoxRect(grow(b, 0.15), 0), g.cfg.FaceMask)
		}
	}
	// Driver crops are cut now, from the masked image before anything is drawn on it: the
	// reviewer judges the driver's own pixels (at full resolution), and an exported training
	// crop must carry no boxes or labels. A passenger's face at the edge stays hidden.
	driverCrops := make([][]byte, len(show))
	for k, i := range show {
		veh := v.vehicles[i]
		if veh.det.Class < 0 {
			continue
		}
		if dc, _, err := imgproc.Crop(img, imgproc.BoxRect(veh.driver, 0.1)); err == nil {
			b, err := imgproc.EncodeJPEG(dc, g.cfg.JPEGQuality)
			dc.Close()
			if err != nil {
				return nil, err
			}
			driverCrops[k] = b
		}
	}
	thick := max(1, int(math.Round(float64(max(W, H))/640)))
	fs := float64(thick) * 0.5
	label := func(b imgproc.Box, text string, c color.RGBA) {
		r := rectOf(b)
		gocv.Rectangle(&img, r, c, thick)
		if text == "" {
			return
		}
		sz := gocv.GetTextSize(text, gocv.FontHersheySimplex, fs, thick)
		y := r.Min.Y - 3
		if y-sz.Y < 0 {
			y = r.Max.Y + sz.Y + 3
		}
		bg := image.Rect(r.Min.X, y-sz.Y-2, r.Min.X+sz.X+2, y+3)
		gocv.Rectangle(&img, bg, c, -1)
		gocv.PutText(&img, text, image.Pt(r.Min.X+1, y), gocv.FontHersheySimplex, fs, colText, thick)
	}
	for _, veh := range v.vehicles {
		o := veh.out
		// A classifier's findings are about the driver's crop itself: they go on the driver's
		// label (red when an offence) instead of a second box on the same rectangle.
		driverText, driverCol := "driver", colDriver
		onDriver := func(f pipeline.Finding) bool { return f.Box != nil && *f.Box == pbox(veh.driver) }
		if veh.det.Class >= 0 && g.occupant != nil {
			if o.Phone.State == pipeline.PhoneHeld && onDriver(o.Phone) {
				driverText, driverCol = driverText+fmt.Sprintf(" phone %.2f", o.Phone.Score), colPhone
			}
			if o.Seatbelt.State == pipeline.SeatbeltNotWorn && onDriver(o.Seatbelt) {
				driverText, driverCol = driverText+fmt.Sprintf(" no belt %.2f", o.Seatbelt.Score), colPhone
			}
		}
		if veh.det.Class >= 0 { // not the whole-frame stand-in
			label(veh.det.Box, fmt.Sprintf("%s %.2f", o.Class, o.Score), colVehicle)
			label(veh.driver, driverText, driverCol)
			gocv.Rectangle(&img, rectOf(veh.passenger), colPass, max(1, thick/2))
		}
		if o.Phone.State == pipeline.PhoneHeld && o.Phone.Box != nil && !onDriver(o.Phone) {
			label(fromPBox(*o.Phone.Box), fmt.Sprintf("phone %.2f", o.Phone.Score), colPhone)
		}
		if o.Seatbelt.State != pipeline.StateUnknown && o.Seatbelt.Box != nil && !onDriver(o.Seatbelt) {
			label(fromPBox(*o.Seatbelt.Box), fmt.Sprintf("belt %s %.2f", o.Seatbelt.State, o.Seatbelt.Score), colPhone)
		}
		if o.Plate != nil && o.Plate.Box != nil {
			txt := o.Plate.Text
			if o.Plate.Country != "" {
				txt = o.Plate.Country + " " + txt
			}
			label(fromPBox(*o.Plate.Box), fmt.Sprintf("%s %.2f", txt, o.Plate.Confidence), colPlate)
		}
	}
	q := g.cfg.JPEGQuality
	ann, err := imgproc.EncodeJPEG(img, q)
	if err != nil {
		return nil, err
	}
	arts := []Artifact{newArtifact(pipeline.EvidenceAnnotated, v.name, ann)}
	for k, i := range show {
		veh := v.vehicles[i]
		if veh.hasPlate {
			w, h := quadSize(veh.plateQuad)
			if pc, err := imgproc.Rectify(full, veh.plateQuad, max(8, int(w)), max(4, int(h))); err == nil {
				b, err := imgproc.EncodeJPEG(pc, q)
				pc.Close()
				if err != nil {
					return nil, err
				}
				arts = append(arts, newArtifact(pipeline.EvidencePlateCrop, v.name, b))
			}
		}
		if driverCrops[k] != nil {
			arts = append(arts, newArtifact(pipeline.EvidenceDriverCrop, v.name, driverCrops[k]))
		}
	}
	return arts, nil
}

// mask hides r in img: pixelated to a coarse grid, or a solid fill.
func mask(img *gocv.Mat, r image.Rectangle, mode string) {
	r = r.Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	if r.Empty() {
		return
	}
	if mode == "fill" || r.Dx() < 8 || r.Dy() < 8 {
		gocv.Rectangle(img, r, colMask, -1)
		return
	}
	region := img.Region(r)
	defer region.Close()
	small := gocv.NewMat()
	defer small.Close()
	// 6 cells across: no feature of a face survives.
	cw := max(1, r.Dx()/6)
	gocv.Resize(region, &small, image.Pt(max(1, r.Dx()/cw), max(1, r.Dy()/cw)), 0, 0, gocv.InterpolationArea)
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(small, &big, image.Pt(r.Dx(), r.Dy()), 0, 0, gocv.InterpolationNearestNeighbor)
	big.CopyTo(&region)
}

func fromPBox(b pipeline.Box) imgproc.Box {
	return imgproc.Box{X1: b.X, Y1: b.Y, X2: b.X + b.W, Y2: b.Y + b.H}
}
