package detector

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/decode"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/detector/platetext"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// plateCand is a plate candidate: a quadrilateral in frame pixels (clockwise from top-left).
type plateCand struct {
	quad  [4]imgproc.Point
	score float64
	whole bool // joined from several text boxes of one line
}

// Text-line to plate margins: PP-OCR's DB box hugs the characters, fast-plate-ocr was
// trained on whole plates with their border.
const (
	plateGrowX = 0.08
	plateGrowY = 0.25
)

// plateStage finds plate candidates in the vehicle, reads each and keeps the best read.
func (g *Graph) plateStage(ctx context.Context, v *view, veh *vehicle, tm timer) error {
	full, err := g.fullMat(v, tm)
	if err != nil {
		return err
	}
	// PP-OCR det responds to text of a certain pixel height only, and a plate may fall
	// outside it at the configured scale: when no candidate there reads, once more at 1.5×.
	for _, side := range []int{g.cfg.PlateDetectSide, g.cfg.PlateDetectSide * 3 / 2} {
		found, err := g.plateAtScale(ctx, full, v, veh, side, tm)
		if err != nil || found || g.plateDet.m.Decoder.Type != models.DecoderPaddleDB {
			return err
		}
	}
	return nil
}

func (g *Graph) plateAtScale(ctx context.Context, full gocv.Mat, v *view, veh *vehicle, side int, tm timer) (bool, error) {
	t0 := time.Now()
	cands, err := g.plateCandidates(ctx, full, v, veh, side)
	tm.since(StagePlateDetect, t0)
	if err != nil || len(cands) == 0 {
		return false, err
	}
	t0 = time.Now()
	defer tm.since(StagePlateOCR, t0)
	type read struct {
		res  platetext.Result
		cand plateCand
	}
	var reads []read
	for _, c := range cands {
		res, ok, err := g.readPlate(ctx, full, c.quad)
		if err != nil {
			return false, err
		}
		if ok {
			reads = append(reads, read{res, c})
			v.detail.Plates = append(v.detail.Plates, plateOut(res, c.quad, v.name))
		}
	}
	best := -1
	for i, r := range reads {
		if best < 0 || plateRank(r.res, r.cand) > plateRank(reads[best].res, reads[best].cand) {
			best = i
		}
	}
	if best < 0 {
		return false, nil
	}
	// A read that contains the best one and is as sure of it is the whole plate of which
	// the best is a fragment (the district letter before the seals of a German plate is
	// small text apart, and text detection may miss it).
	for i, r := range reads {
		b := reads[best].res
		if i != best && r.res.Valid() && len(r.res.Text) > len(b.Text) && strings.Contains(r.res.Text, b.Text) && r.res.Confidence >= b.Confidence-0.05 {
			best = i
		}
	}
	p := plateOut(reads[best].res, reads[best].cand.quad, v.name)
	veh.out.Plate = &p
	veh.plateQuad, veh.hasPlate = reads[best].cand.quad, true
	return true, nil
}

// plateRank orders the reads of one vehicle's candidates: OCR confidence first, a national
// format's acceptance as a bonus. Not platetext.Best's strict "valid first": on the lower
// half of a car, dealer stickers and bumper text are also read, and a 0.4-confidence read of
// one that happens to fit a format must not beat a 1.0 read of the plate (measured on
// ../shared/data/plates: 4 plates lost that way).
//
// A joined line gets a small bonus: a fragment of a split plate ("AB1234" of "K AB 1234")
// can itself fit some format, and the whole line explains more of the plate.
func plateRank(r platetext.Result, c plateCand) float64 {
	rank := r.Confidence + 0.1*min(1, c.score)
	if c.whole {
		rank += 0.05
	}
	if r.Valid() {
		rank += 0.15
	}
	return rank
}

func plateOut(r platetext.Result, q [4]imgproc.Point, viewName string) pipeline.Plate {
	p := pipeline.Plate{
		Text: r.Text, Raw: r.Raw, Country: r.Country, CountryFrom: r.CountryFrom,
		Confidence: round3(r.Confidence), View: viewName,
	}
	for _, c := range r.CharConf {
		p.CharConfidence = append(p.CharConfidence, round3(c))
	}
	x1, y1, x2, y2 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range q {
		p.Corners = append(p.Corners, pipeline.Point{X: round1(c.X), Y: round1(c.Y)})
		x1, y1, x2, y2 = min(x1, c.X), min(y1, c.Y), max(x2, c.X), max(y2, c.Y)
	}
	p.Box = ptr(pbox(imgproc.Box{X1: x1, Y1: y1, X2: x2, Y2: y2}))
	return p
}

// plateCandidates runs the plate detector on the vehicle (a plate detector on the whole
// vehicle box, text detection on its lower part) and returns the best few candidates.
func (g *Graph) plateCandidates(ctx context.Context, full gocv.Mat, v *view, veh *vehicle, side int) ([]plateCand, error) {
	pd := g.plateDet
	region := veh.det.Box
	// A vehicle cut by the top of the frame may show its plate anywhere in the box.
	if pd.m.Decoder.Type == models.DecoderPaddleDB && region.Y1 > 2 {
		region = sub(veh.det.Box, g.cfg.PlateRegion)
	}
	region = region.Clamp(v.info.Width, v.info.Height)
	crop, used, err := imgproc.Crop(full, imgproc.BoxRect(region, 0.02))
	if err != nil {
		return nil, nil
	}
	defer crop.Close()
	ox, oy := float64(used.Min.X), float64(used.Min.Y)
	var cands []plateCand
	switch pd.m.Decoder.Type {
	case models.DecoderPaddleDB:
		w, h := dbInputSize(crop.Cols(), crop.Rows(), side, pd.m.Input.Multiple)
		t, err := pd.feedAt(crop, w, h)
		if err != nil {
			return nil, err
		}
		if err := pd.s.Run(ctx); err != nil {
			return nil, err
		}
		prob, shape := pd.s.Output(0)
		if len(shape) != 4 {
			return nil, fmt.Errorf("model %s: output shape %v: %w", pd.m.Name, shape, decode.ErrShape)
		}
		p := pd.m.Decoder.Params
		boxes, err := decode.PaddleDB(prob, int(shape[2]), int(shape[3]),
			floatParam(p, "thresh", decode.DBThresh), floatParam(p, "box_thresh", decode.DBBoxThresh),
			floatParam(p, "unclip_ratio", decode.DBUnclipRatio), int(floatParam(p, "max_candidates", decode.DBMaxCandidates)))
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", pd.m.Name, err)
		}
		t = t.WithOffset(ox, oy)
		vw := veh.det.Box.W()
		lines := make([]textLine, 0, len(boxes))
		for _, b := range boxes {
			var q [4]imgproc.Point
			for i, c := range b.Corners {
				q[i] = t.PointToFrame(imgproc.Point{X: c.X, Y: c.Y})
			}
			lines = append(lines, textLine{quad: q, score: b.Score})
		}
		for _, l := range append(lines, mergeLines(lines)...) {
			q := l.quad
			w, h := quadSize(q)
			if h < 6 || w < 1.5*h || w > 12*h || w > 0.8*vw {
				continue // not a plate's text line: too small, too square, too long
			}
			// Plates sit near the vehicle's vertical axis; favour central, plate-shaped lines.
			cx := (q[0].X + q[1].X + q[2].X + q[3].X) / 4
			centre := 1 - math.Abs(cx-(veh.det.Box.X1+veh.det.Box.X2)/2)/(vw/2)
			aspect := w / h
			shape := 1.0
			if aspect < 2 || aspect > 7 {
				shape = 0.7
			}
			cands = append(cands, plateCand{quad: growQuad(q, plateGrowX, plateGrowY), score: l.score * (0.5 + 0.5*max(0, centre)) * shape, whole: l.joined})
		}
	case models.DecoderLPDYuNet:
		off := func(t imgproc.Transform) imgproc.Transform { return t.WithOffset(ox, oy) }
		dets, err := pd.detect(ctx, crop, pd.scoreThreshold(0.5), pd.nmsThreshold(0.3), off)
		if err != nil {
			return nil, err
		}
		for _, d := range dets {
			q := d.Corners
			if !d.HasCorners {
				q = [4]imgproc.Point{{X: d.Box.X1, Y: d.Box.Y1}, {X: d.Box.X2, Y: d.Box.Y1}, {X: d.Box.X2, Y: d.Box.Y2}, {X: d.Box.X1, Y: d.Box.Y2}}
			}
			cands = append(cands, plateCand{quad: q, score: d.Score})
		}
	default:
		return nil, fmt.Errorf("model %s: decoder %s cannot detect plates", pd.m.Name, pd.m.Decoder.Type)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	if len(cands) > g.cfg.PlateCandidates {
		cands = cands[:g.cfg.PlateCandidates]
	}
	return cands, nil
}

// dbInputSize scales a w×h region so its longer side is side (up or down), each side a
// multiple of `multiple`.
func dbInputSize(w, h, side, multiple int) (int, int) {
	if multiple <= 0 {
		multiple = 32
	}
	r := float64(side) / float64(max(w, h))
	rw := max(multiple, int(math.Round(float64(w)*r/float64(multiple)))*multiple)
	rh := max(multiple, int(math.Round(float64(h)*r/float64(multiple)))*multiple)
	return rw, rh
}

// textLine is a text box in frame pixels with its detection score.
type textLine struct {
	quad   [4]imgproc.Point
	score  float64
	joined bool
}

// mergeLines joins text boxes that continue each other on one line: DB may split a plate at
// the wide gaps of some layouts (German "B MW 1234" around the seals, French "AB-123-CD"),
// and each fragment alone reads as a partial plate. The joined lines are extra candidates;
// the fragments stay, and the reads decide.
func mergeLines(lines []textLine) []textLine {
	sorted := append([]textLine(nil), lines...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].quad[0].X < sorted[j].quad[0].X })
	used := make([]bool, len(sorted))
	var out []textLine
	for i := range sorted {
		if used[i] {
			continue
		}
		group := []textLine{sorted[i]}
		last := sorted[i]
		for j := i + 1; j < len(sorted); j++ {
			if !used[j] && continues(last, sorted[j]) {
				group = append(group, sorted[j])
				used[j] = true
				last = sorted[j]
			}
		}
		if len(group) < 2 {
			continue
		}
		first := group[0]
		m := textLine{quad: [4]imgproc.Point{first.quad[0], last.quad[1], last.quad[2], first.quad[3]}, joined: true}
		for _, g := range group {
			m.score += g.score / float64(len(group))
		}
		out = append(out, m)
	}
	return out
}

// continues reports whether b follows a on the same text line: similar height, overlapping
// vertically, starting within two character heights after a ends (German plates leave
// that much room for the seals between district and letters).
func continues(a, b textLine) bool {
	_, ha := quadSize(a.quad)
	_, hb := quadSize(b.quad)
	if ha <= 0 || hb <= 0 || hb/ha < 0.7 || hb/ha > 1.4 {
		return false
	}
	ay1, ay2 := (a.quad[0].Y+a.quad[1].Y)/2, (a.quad[3].Y+a.quad[2].Y)/2
	by1, by2 := (b.quad[0].Y+b.quad[1].Y)/2, (b.quad[3].Y+b.quad[2].Y)/2
	overlap := min(ay2, by2) - max(ay1, by1)
	if overlap < 0.6*min(ha, hb) {
		return false
	}
	gap := (b.quad[0].X+b.quad[3].X)/2 - (a.quad[1].X+a.quad[2].X)/2
	h := max(ha, hb)
	return gap > -0.2*h && gap < 2*h
}

// readPlate rectifies the quadrilateral out of full and reads it.
func (g *Graph) readPlate(ctx context.Context, full gocv.Mat, q [4]imgproc.Point) (platetext.Result, bool, error) {
	w, h := quadSize(q)
	ow, oh := int(math.Round(w)), int(math.Round(h))
	if ow < 8 || oh < 4 {
		return platetext.Result{}, false, nil
	}
	// A reader that stretches its input to a fixed size gets the plate warped straight to
	// that size: one perspective warp of its few pixels instead of a warp of the plate at
	// frame resolution (up to several times more pixels) and a resize.
	if g.plateRead.m.Input.Resize == imgproc.ResizeStretch {
		if iw, ih, err := g.plateRead.inputSize(ow, oh); err == nil {
			ow, oh = iw, ih
		}
	}
	crop, err := imgproc.Rectify(full, q, ow, oh)
	if err != nil {
		return platetext.Result{}, false, nil // degenerate corners: no read
	}
	defer crop.Close()
	text, conf, err := g.readCrop(ctx, crop)
	if err != nil {
		return platetext.Result{}, false, err
	}
	res := platetext.InterpretWith(text, conf, platetext.Options{PreferCountry: g.cfg.PlateCountry})
	if res.Text == "" || res.Confidence < g.cfg.Thresholds.PlateConfidence {
		return res, false, nil
	}
	return res, true, nil
}

// ReadPlate reads an already cropped plate image (BGR) with the plate reader and interprets
// it: the crop path of the graph, for tests and tools.
func (g *Graph) ReadPlate(ctx context.Context, crop gocv.Mat) (platetext.Result, error) {
	if g.plateRead == nil {
		return platetext.Result{}, fmt.Errorf("detector: no plate reader configured")
	}
	text, conf, err := g.readCrop(ctx, crop)
	if err != nil {
		return platetext.Result{}, err
	}
	return platetext.InterpretWith(text, conf, platetext.Options{PreferCountry: g.cfg.PlateCountry}), nil
}

func (g *Graph) readCrop(ctx context.Context, crop gocv.Mat) (string, []float32, error) {
	pr := g.plateRead
	if _, err := pr.feed(crop); err != nil {
		return "", nil, err
	}
	if err := pr.s.Run(ctx); err != nil {
		return "", nil, err
	}
	out, shape := pr.s.Output(0)
	switch pr.m.Decoder.Type {
	case models.DecoderFastPlate:
		reads, err := decode.FastPlateOCR(out, shape, pr.alphabet, pr.pad)
		if err != nil || len(reads) == 0 {
			return "", nil, fmt.Errorf("model %s: %w", pr.m.Name, err)
		}
		return reads[0].Text, reads[0].CharConf, nil
	case models.DecoderCTC:
		blank := int(floatParam(pr.m.Decoder.Params, "blank", 0))
		text, conf, _, err := decode.CTCOutput(out, shape, pr.dict, blank)
		if err != nil {
			return "", nil, fmt.Errorf("model %s: %w", pr.m.Name, err)
		}
		return text, conf, nil
	}
	return "", nil, fmt.Errorf("model %s: decoder %s cannot read plates", pr.m.Name, pr.m.Decoder.Type)
}

// quadSize is the mean width (top and bottom edges) and height (left and right edges).
func quadSize(q [4]imgproc.Point) (w, h float64) {
	d := func(a, b imgproc.Point) float64 { return math.Hypot(a.X-b.X, a.Y-b.Y) }
	return (d(q[0], q[1]) + d(q[3], q[2])) / 2, (d(q[0], q[3]) + d(q[1], q[2])) / 2
}

// growQuad grows a quadrilateral about its centre by fx of its width on each side and fy of
// its height on each side, along its own axes.
func growQuad(q [4]imgproc.Point, fx, fy float64) [4]imgproc.Point {
	// Axis vectors from the edges.
	ux, uy := (q[1].X-q[0].X+q[2].X-q[3].X)/2, (q[1].Y-q[0].Y+q[2].Y-q[3].Y)/2
	vx, vy := (q[3].X-q[0].X+q[2].X-q[1].X)/2, (q[3].Y-q[0].Y+q[2].Y-q[1].Y)/2
	signs := [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}}
	var out [4]imgproc.Point
	for i, p := range q {
		out[i] = imgproc.Point{
			X: p.X + signs[i][0]*fx*ux + signs[i][1]*fy*vx,
			Y: p.Y + signs[i][0]*fx*uy + signs[i][1]*fy*vy,
		}
	}
	return out
}

func floatParam(p map[string]any, k string, def float64) float64 {
	switch v := p[k].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	}
	return def
}
