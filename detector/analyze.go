package detector

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"time"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/decode"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/detector/platetext"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// Stage names of Detection.TimingsMS.
const (
	StageDecode      = "decode"
	StageScene       = "scene"
	StagePhone       = "phone"
	StageSeatbelt    = "seatbelt"
	StageOccupant    = "occupant"
	StagePlateDetect = "plate_detect"
	StagePlateOCR    = "plate_ocr"
	StageFace        = "face"
	StageRender      = "render"
	StageTotal       = "total"
)

// Scored is a box with a score and a label, in frame pixels.
type Scored struct {
	Box   pipeline.Box `json:"box"`
	Score float64      `json:"score"`
	Label string       `json:"label,omitempty"`
}

// ViewDetail is what the graph saw in one view beyond the Detection: every phone, windshield
// and seatbelt box with its score (what `offencecam eval` scores), and every plate read.
type ViewDetail struct {
	View        string
	Width       int
	Height      int
	Vehicles    []Scored
	Phones      []Scored
	Windshields []Scored
	Seatbelts   []Scored // label "seatbelt" or "no_seatbelt"
	// Occupants are the occupant classifier's scores, driver then passenger of each examined
	// vehicle, largest vehicle first.
	Occupants []OccupantScores
	Plates    []pipeline.Plate
	Faces     []Scored
}

// OccupantScores are a classifier's outputs for one seat: joint probabilities (phone held and
// the hands visible; belt not worn and the chest visible) and the visibilities.
type OccupantScores struct {
	Seat            string       `json:"seat"` // "driver" or "passenger"
	Vehicle         int          `json:"vehicle"`
	Box             pipeline.Box `json:"box"`
	Phone           float64      `json:"phone"`
	PhoneVisible    float64      `json:"phone_visible"`
	NoSeatbelt      float64      `json:"no_seatbelt"`
	SeatbeltVisible float64      `json:"seatbelt_visible"`
}

// AnalyzeOptions adjust one analysis.
type AnalyzeOptions struct {
	// Render renders evidence for every view, flagged or not (`analyze --annotate`).
	Render bool
	// NoRender renders nothing even for flagged passages (eval, bench of the models alone).
	NoRender bool
}

// Analyze implements Analyzer: evidence is rendered only for flagged passages (privacy and
// speed).
func (g *Graph) Analyze(ctx context.Context, views []View) (Result, error) {
	res, _, err := g.AnalyzeDetailed(ctx, views, AnalyzeOptions{})
	return res, err
}

// view is the state of one view during an analysis.
type view struct {
	v      View
	name   string
	info   imgproc.Info
	reduce int
	small  gocv.Mat // the scene model's image (reduced decode when the frame is large)
	full   gocv.Mat // full resolution, decoded on first need
	fullOK bool
	driver string // side of the image the driver sits on: "left" or "right"

	vehicles []vehicle
	detail   ViewDetail
}

type vehicle struct {
	det        fdet
	windshield imgproc.Box
	driver     imgproc.Box
	passenger  imgproc.Box
	out        pipeline.Vehicle
	plateQuad  [4]imgproc.Point
	hasPlate   bool
	shadow     *shadowFindings // detector.shadow's candidates on the same seats; nil without
}

func (v *view) close() {
	if v.fullOK && v.reduce > 1 {
		v.full.Close()
	}
	// small is the graph's frame buffer (Graph.frames), kept for the next analysis.
}

// timer accumulates stage times in milliseconds.
type timer map[string]float64

func (t timer) since(stage string, start time.Time) {
	t[stage] += float64(time.Since(start).Microseconds()) / 1000
}

// AnalyzeDetailed is Analyze that also returns what each view showed, for eval.
func (g *Graph) AnalyzeDetailed(ctx context.Context, views []View, opt AnalyzeOptions) (res Result, details []ViewDetail, err error) {
	if len(views) == 0 {
		return Result{}, nil, errors.New("detector: analyze: no views")
	}
	start := time.Now()
	tm := timer{}
	for _, k := range []string{StageDecode, StageScene, StagePhone, StageSeatbelt, StageOccupant, StagePlateDetect, StagePlateOCR, StageFace, StageRender} {
		tm[k] = 0
	}
	vs := make([]*view, 0, len(views))
	defer func() {
		for _, v := range vs {
			v.close()
		}
	}()
	for i, in := range views {
		v, err := g.analyzeView(ctx, i, in, tm)
		if v != nil {
			vs = append(vs, v)
		}
		if err != nil {
			return Result{}, nil, fmt.Errorf("detector: view %d (%s): %w", i, in.Frame.Key, err)
		}
	}
	det := g.assemble(views, vs)
	g.assembleShadow(&det, vs) // after assemble: never an offence, never Flagged
	flagged := det.Flagged
	if !opt.NoRender && (flagged || opt.Render) {
		res.Artifacts, err = g.render(ctx, vs, &det, tm, opt.Render)
		if err != nil {
			return Result{}, nil, err
		}
	}
	tm.since(StageTotal, start)
	det.TimingsMS = tm
	g.metrics.observe(tm)
	res.Detection = det
	for _, v := range vs {
		details = append(details, v.detail)
	}
	return res, details, nil
}

// fullMat is the full-resolution image, decoded on first need.
func (g *Graph) fullMat(v *view, tm timer) (gocv.Mat, error) {
	if v.fullOK {
		return v.full, nil
	}
	if v.reduce <= 1 {
		v.full, v.fullOK = v.small, true
		return v.full, nil
	}
	t0 := time.Now()
	m, _, err := imgproc.Decode(v.v.Data, imgproc.DecodeOptions{MaxPixels: g.cfg.MaxPixels})
	tm.since(StageDecode, t0)
	if err != nil {
		return gocv.Mat{}, err
	}
	v.full, v.fullOK = m, true
	return m, nil
}

func (g *Graph) analyzeView(ctx context.Context, idx int, in View, tm timer) (*view, error) {
	t0 := time.Now()
	info, err := imgproc.HeaderLimit(in.Data, g.cfg.MaxPixels)
	if err != nil {
		return nil, err
	}
	sw, sh, err := g.scene.inputSize(info.Width, info.Height)
	if err != nil {
		return nil, err
	}
	reduce := imgproc.ChooseReduce(info, sw, sh)
	if reduce < g.cfg.ReducedDecodeMin {
		reduce = 1
	}
	for len(g.frames) <= idx {
		g.frames = append(g.frames, gocv.Mat{})
	}
	_, err = imgproc.DecodeInto(in.Data, imgproc.DecodeOptions{MaxPixels: g.cfg.MaxPixels, Reduce: reduce}, &g.frames[idx])
	tm.since(StageDecode, t0)
	if err != nil {
		return nil, err
	}
	small := g.frames[idx]
	v := &view{v: in, info: info, reduce: reduce, small: small}
	v.name = in.Frame.View
	if v.name == "" {
		v.name = g.cfg.DefaultView
	}
	side := in.Frame.DriverSide
	if side != "left" && side != "right" {
		side = g.cfg.DriverSide
	}
	// Facing an oncoming car (front and overhead cameras), its left is the image's right.
	v.driver = side
	if v.name != pipeline.ViewRear {
		v.driver = map[string]string{"left": "right", "right": "left"}[side]
	}
	v.detail = ViewDetail{View: v.name, Width: info.Width, Height: info.Height}

	// Scene.
	t0 = time.Now()
	thr := g.cfg.Thresholds.Scene
	if g.phone == nil {
		thr = min(thr, g.phoneThr)
	}
	toFrame := func(t imgproc.Transform) imgproc.Transform { return t.WithFrame(info.Width, info.Height) }
	dets, err := g.scene.detect(ctx, small, thr, g.cfg.Thresholds.NMS, toFrame)
	tm.since(StageScene, t0)
	if err != nil {
		return v, err
	}
	var vehicles, phones, windshields []fdet
	for _, d := range dets {
		d.Box = d.Box.Clamp(info.Width, info.Height)
		switch d.Role {
		case models.RoleVehicle:
			if d.Score >= g.cfg.Thresholds.Scene {
				vehicles = append(vehicles, d)
				v.detail.Vehicles = append(v.detail.Vehicles, scored(d, "vehicle"))
			}
		case models.RolePhone:
			if g.phone == nil && d.Score >= g.phoneThr {
				phones = append(phones, d)
			}
		case models.RoleWindshield:
			if d.Score >= g.cfg.Thresholds.Scene {
				windshields = append(windshields, d)
			}
		}
	}
	if g.phone != nil && isDetector(g.phone) {
		t0 = time.Now()
		pd, err := g.phone.detect(ctx, small, g.phoneThr, g.cfg.Thresholds.NMS, toFrame)
		tm.since(StagePhone, t0)
		if err != nil {
			return v, err
		}
		for _, d := range pd {
			if d.Role == models.RolePhone {
				phones = append(phones, d)
			}
		}
	}
	// Largest vehicles first: the one the camera was triggered by.
	sort.SliceStable(vehicles, func(i, j int) bool { return area(vehicles[i].Box) > area(vehicles[j].Box) })
	for _, d := range vehicles {
		if len(v.vehicles) >= g.cfg.MaxVehicles {
			break
		}
		floor := max(float64(g.cfg.MinVehiclePx), g.cfg.MinVehicleFrac*float64(min(info.Width, info.Height)))
		if min(d.Box.W(), d.Box.H()) < floor {
			continue
		}
		// A truck box around a car box is the same vehicle twice (YOLOX labels class per cell).
		dup := false
		for _, o := range v.vehicles {
			if decode.IoU(toRect(o.det.Box), toRect(d.Box)) > 0.7 {
				dup = true
			}
		}
		if !dup {
			v.vehicles = append(v.vehicles, vehicle{det: d})
		}
	}
	if len(v.vehicles) == 0 && g.cfg.WholeFrameVehicle {
		// Cameras are framed on the vehicle: when the scene model sees none (a close-up
		// fills the frame), the frame itself is searched for the plate.
		v.vehicles = append(v.vehicles, vehicle{det: fdet{Box: imgproc.Box{X2: float64(info.Width), Y2: float64(info.Height)}, Class: -1}})
	}
	for i := range v.vehicles {
		if err := g.analyzeVehicle(ctx, v, &v.vehicles[i], i, phones, windshields, tm); err != nil {
			return v, err
		}
	}
	for _, p := range phones {
		v.detail.Phones = append(v.detail.Phones, scored(p, "phone"))
	}
	return v, nil
}

func (g *Graph) analyzeVehicle(ctx context.Context, v *view, veh *vehicle, idx int, phones, windshields []fdet, tm timer) error {
	main := idx == 0
	b := veh.det.Box
	W, H := v.info.Width, v.info.Height
	if veh.det.Class < 0 {
		// The whole-frame stand-in: no vehicle was seen, so there is no windshield or
		// driver to judge (a pedestrian's phone must not become a driver's); plate only.
		veh.out = pipeline.Vehicle{
			Class: "unknown", Box: pbox(b), View: v.name,
			Phone:    pipeline.Finding{State: pipeline.StateUnknown, View: v.name},
			Seatbelt: pipeline.Finding{State: pipeline.StateUnknown, View: v.name},
		}
		if g.plateDet != nil && g.plateRead != nil {
			return g.plateStage(ctx, v, veh, tm)
		}
		return nil
	}
	// Windshield: the model's class when it has one, else the geometric prior of the view.
	ws, wsScore, found := imgproc.Box{}, 0.0, false
	for _, w := range windshields {
		cx, cy := (w.Box.X1+w.Box.X2)/2, (w.Box.Y1+w.Box.Y2)/2
		if inside(b, cx, cy) && w.Score > wsScore {
			ws, wsScore, found = w.Box, w.Score, true
		}
	}
	if !found {
		r, ok := g.cfg.Windshield[v.name]
		if !ok {
			r = DefaultConfig().Windshield[pipeline.ViewFront]
		}
		ws, wsScore = sub(b, r).Clamp(W, H), veh.det.Score
	}
	veh.windshield = ws
	v.detail.Windshields = append(v.detail.Windshields, Scored{Box: pbox(ws), Score: wsScore, Label: "windshield"})
	mid := (ws.X1 + ws.X2) / 2
	left := imgproc.Box{X1: ws.X1, Y1: ws.Y1, X2: mid, Y2: ws.Y2}
	right := imgproc.Box{X1: mid, Y1: ws.Y1, X2: ws.X2, Y2: ws.Y2}
	veh.driver, veh.passenger = left, right
	if v.driver == "right" {
		veh.driver, veh.passenger = right, left
	}
	if g.occupant != nil {
		// The seats as the occupant model was trained to see them.
		veh.driver = seatBox(ws, g.occupant.crop, v.driver == "right").Clamp(W, H)
		veh.passenger = seatBox(ws, g.occupant.crop, v.driver != "right").Clamp(W, H)
	}
	veh.out = pipeline.Vehicle{
		Class: g.scene.className(veh.det.Class), Score: round3(veh.det.Score), Box: pbox(b), View: v.name,
		Windshield: ptr(pbox(ws)), Driver: ptr(pbox(veh.driver)), Passenger: ptr(pbox(veh.passenger)),
		Phone:    pipeline.Finding{State: pipeline.PhoneNone, View: v.name},
		Seatbelt: pipeline.Finding{State: pipeline.StateUnknown, View: v.name},
	}
	if g.classifies(g.phone) {
		// A seat the classifier cannot judge (outside the frame, too small) stays unknown.
		veh.out.Phone.State = pipeline.StateUnknown
	}

	if g.occupant != nil {
		t0 := time.Now()
		if err := g.occupantStage(ctx, v, veh, idx, tm); err != nil {
			return err
		}
		tm.since(StageOccupant, t0)
	}
	if g.shadow != nil {
		if err := g.shadowStage(ctx, v, veh, tm); err != nil {
			return err
		}
	}
	if err := g.phoneDetections(ctx, v, veh, phones, tm); err != nil {
		return err
	}

	// Seatbelt.
	if g.seatbelt != nil && !g.classifies(g.seatbelt) {
		t0 := time.Now()
		if err := g.seatbeltStage(ctx, v, veh, tm); err != nil {
			return err
		}
		tm.since(StageSeatbelt, t0)
	}

	// Plate: text detection is the costliest stage, so it runs for the vehicle the camera
	// is aimed at (the largest) and for any other vehicle only when it shows an offence.
	if g.plateDet != nil && g.plateRead != nil && (main || g.offending(veh.out)) {
		if err := g.plateStage(ctx, v, veh, tm); err != nil {
			return err
		}
	}
	return nil
}

// phoneDetections judges the driver's phone from detector boxes (the scene model's phone
// class or a phone detector): a phone in or near the driver region. Phones are a few pixels
// in the whole frame, so the phone model can look again at the full-resolution windshield.
// With an occupant classifier for the phone role it does nothing.
func (g *Graph) phoneDetections(ctx context.Context, v *view, veh *vehicle, phones []fdet, tm timer) error {
	if g.phone != nil && !isDetector(g.phone) {
		return nil
	}
	W, H := v.info.Width, v.info.Height
	ws := veh.windshield
	t0 := time.Now()
	cands := append([]fdet(nil), phones...)
	if g.cfg.PhoneRefine {
		pm := g.phone
		if pm == nil {
			pm = g.scene
		}
		full, err := g.fullMat(v, tm)
		if err != nil {
			return err
		}
		t0 = time.Now()
		rect := imgproc.BoxRect(ws, 0.1)
		crop, used, err := imgproc.Crop(full, rect)
		if err == nil {
			off := func(t imgproc.Transform) imgproc.Transform {
				return t.WithOffset(float64(used.Min.X), float64(used.Min.Y))
			}
			dets, err := pm.detect(ctx, crop, g.phoneThr, g.cfg.Thresholds.NMS, off)
			crop.Close()
			if err != nil {
				return err
			}
			for _, d := range dets {
				if d.Role == models.RolePhone {
					d.Box = d.Box.Clamp(W, H)
					cands = append(cands, d)
				}
			}
		}
	}
	near := grow(veh.driver, 0.25)
	best := -1
	for i, p := range cands {
		cx, cy := (p.Box.X1+p.Box.X2)/2, (p.Box.Y1+p.Box.Y2)/2
		if inside(near, cx, cy) && (best < 0 || p.Score > cands[best].Score) {
			best = i
		}
	}
	if g.cfg.PhoneRefine {
		// Phones seen by the refine pass join the view's list (deduplicated) for eval.
		for _, p := range cands[len(phones):] {
			v.detail.Phones = append(v.detail.Phones, scored(p, "phone"))
		}
	}
	if best >= 0 {
		p := cands[best]
		veh.out.Phone = pipeline.Finding{State: pipeline.PhoneHeld, Score: round3(p.Score), Box: ptr(pbox(p.Box)), View: v.name}
	}
	tm.since(StagePhone, t0)
	return nil
}

func (g *Graph) seatbeltStage(ctx context.Context, v *view, veh *vehicle, tm timer) error {
	full, err := g.fullMat(v, tm)
	if err != nil {
		return err
	}
	sm := g.seatbelt
	if sm.m.Decoder.Type == models.DecoderSoftmax {
		crop, _, err := imgproc.Crop(full, imgproc.BoxRect(veh.driver, 0.1))
		if err != nil {
			return nil // driver region outside the image: state stays unknown
		}
		defer crop.Close()
		if _, err := sm.feed(crop); err != nil {
			return err
		}
		if err := sm.s.Run(ctx); err != nil {
			return err
		}
		out, shape := sm.s.Output(0)
		cls, score, err := decode.Classify(out, shape)
		if err != nil {
			return fmt.Errorf("model %s: %w", sm.m.Name, err)
		}
		switch sm.classes[cls] {
		case models.RoleSeatbelt:
			veh.out.Seatbelt = pipeline.Finding{State: pipeline.SeatbeltWorn, Score: round3(score), Box: ptr(pbox(veh.driver)), View: v.name}
		case models.RoleNoSeatbelt:
			veh.out.Seatbelt = pipeline.Finding{State: pipeline.SeatbeltNotWorn, Score: round3(score), Box: ptr(pbox(veh.driver)), View: v.name}
		}
		v.detail.Seatbelts = append(v.detail.Seatbelts, Scored{Box: pbox(veh.driver), Score: score, Label: sm.classes[cls]})
		return nil
	}
	crop, used, err := imgproc.Crop(full, imgproc.BoxRect(veh.windshield, 0.15))
	if err != nil {
		return nil
	}
	defer crop.Close()
	off := func(t imgproc.Transform) imgproc.Transform {
		return t.WithOffset(float64(used.Min.X), float64(used.Min.Y))
	}
	dets, err := sm.detect(ctx, crop, g.seatbeltThr, g.cfg.Thresholds.NMS, off)
	if err != nil {
		return err
	}
	near := grow(veh.driver, 0.15)
	var best *fdet
	for i, d := range dets {
		if d.Role != models.RoleSeatbelt && d.Role != models.RoleNoSeatbelt {
			continue
		}
		v.detail.Seatbelts = append(v.detail.Seatbelts, scored(d, d.Role))
		cx, cy := (d.Box.X1+d.Box.X2)/2, (d.Box.Y1+d.Box.Y2)/2
		if inside(near, cx, cy) && (best == nil || d.Score > best.Score) {
			best = &dets[i]
		}
	}
	if best != nil {
		state := pipeline.SeatbeltWorn
		if best.Role == models.RoleNoSeatbelt {
			state = pipeline.SeatbeltNotWorn
		}
		veh.out.Seatbelt = pipeline.Finding{State: state, Score: round3(best.Score), Box: ptr(pbox(best.Box)), View: v.name}
	}
	return nil
}

// offending reports whether a vehicle's findings make an offence.
func (g *Graph) offending(v pipeline.Vehicle) bool {
	return len(g.vehicleOffences(v)) > 0
}

// vehicleOffences are the offences a vehicle's findings make, with their scores: a phone
// held by the driver, the driver's belt not worn, and the passenger's when the configuration
// fines that too.
func (g *Graph) vehicleOffences(v pipeline.Vehicle) []pipeline.Offence {
	var out []pipeline.Offence
	if v.Phone.State == pipeline.PhoneHeld && v.Phone.Score >= g.offenceThr[pipeline.OffencePhone] {
		out = append(out, pipeline.Offence{Kind: pipeline.OffencePhone, Score: v.Phone.Score})
	}
	belt := 0.0
	if v.Seatbelt.State == pipeline.SeatbeltNotWorn && v.Seatbelt.Score >= g.offenceThr[pipeline.OffenceSeatbelt] {
		belt = v.Seatbelt.Score
	}
	if p := v.PassengerSeatbelt; g.cfg.PassengerSeatbeltOffence && p != nil && p.State == pipeline.SeatbeltNotWorn &&
		p.Score >= g.offenceThr[pipeline.OffenceSeatbelt] {
		belt = max(belt, p.Score)
	}
	if belt > 0 {
		out = append(out, pipeline.Offence{Kind: pipeline.OffenceSeatbelt, Score: belt})
	}
	return out
}

// assemble builds the Detection from the analysed views.
func (g *Graph) assemble(views []View, vs []*view) pipeline.Detection {
	f0 := views[0].Frame
	det := pipeline.Detection{
		V: pipeline.Version, PassageID: f0.PassageID, Camera: f0.Camera, Site: f0.Site, Location: f0.Location,
		CapturedAt: f0.CapturedAt, DetectedAt: time.Now().UTC(),
		Frames: []pipeline.FrameRef{}, Vehicles: []pipeline.Vehicle{}, Offences: []pipeline.Offence{},
		Models: g.Models(),
	}
	// The plate of the vehicle that triggered the camera (the largest of each view) is the
	// best read across the views: a Belgian front plate is owner-made and may not read.
	var mains []*vehicle
	var reads []platetext.Result
	for _, v := range vs {
		if len(v.vehicles) > 0 {
			mains = append(mains, &v.vehicles[0])
			if p := v.vehicles[0].out.Plate; p != nil {
				reads = append(reads, plateResult(p))
			}
		}
	}
	if len(reads) > 1 {
		best := platetext.Best(reads)
		var bestPlate *pipeline.Plate
		for _, m := range mains {
			if p := m.out.Plate; p != nil && p.Text == best.Text && p.Confidence == round3(best.Confidence) {
				bestPlate = p
			}
		}
		if bestPlate != nil {
			for _, m := range mains {
				if m.out.Plate == nil || m.out.Plate != bestPlate {
					cp := *bestPlate
					m.out.Plate = &cp
				}
			}
		}
	}
	offences := map[string]pipeline.Offence{}
	for i, v := range vs {
		fr := views[i].Frame
		det.Frames = append(det.Frames, pipeline.FrameRef{Bucket: fr.Bucket, Key: fr.Key, ETag: fr.ETag, View: v.name, Width: v.info.Width, Height: v.info.Height})
		for _, veh := range v.vehicles {
			idx := len(det.Vehicles)
			det.Vehicles = append(det.Vehicles, veh.out)
			for _, o := range g.vehicleOffences(veh.out) {
				o.Vehicle = idx
				addOffence(offences, o)
			}
		}
	}
	for _, k := range pipeline.OffenceKinds {
		if o, ok := offences[k]; ok {
			det.Offences = append(det.Offences, o)
		}
	}
	det.Flagged = len(det.Offences) > 0
	return det
}

// addOffence keeps the highest-scoring vehicle per offence kind: several views of one
// passage show the same driver, and one passage is one case.
func addOffence(m map[string]pipeline.Offence, o pipeline.Offence) {
	if cur, ok := m[o.Kind]; !ok || o.Score > cur.Score {
		m[o.Kind] = o
	}
}

func plateResult(p *pipeline.Plate) platetext.Result {
	r := platetext.Result{Text: p.Text, Raw: p.Raw, Country: p.Country, CountryFrom: p.CountryFrom, Confidence: p.Confidence, CharConf: p.CharConfidence}
	if p.Country != "" {
		r.Format = p.Country // Valid() only tests for a format
	}
	return r
}

func (md *model) className(id int) string {
	if id < 0 {
		return "unknown"
	}
	for _, c := range md.m.Classes {
		if c.ID == id {
			return c.Name
		}
	}
	return fmt.Sprint(id)
}

func scored(d fdet, label string) Scored {
	return Scored{Box: pbox(d.Box), Score: d.Score, Label: label}
}

func pbox(b imgproc.Box) pipeline.Box {
	return pipeline.Box{X: round1(b.X1), Y: round1(b.Y1), W: round1(b.W()), H: round1(b.H())}
}

func toRect(b imgproc.Box) decode.Rect { return decode.Rect{X: b.X1, Y: b.Y1, W: b.W(), H: b.H()} }

func area(b imgproc.Box) float64 { return max(0, b.W()) * max(0, b.H()) }

func inside(b imgproc.Box, x, y float64) bool {
	return x >= b.X1 && x <= b.X2 && y >= b.Y1 && y <= b.Y2
}

// sub is the region r (fractions) of box b.
func sub(b imgproc.Box, r Region) imgproc.Box {
	return imgproc.Box{X1: b.X1 + r.X*b.W(), Y1: b.Y1 + r.Y*b.H(), X2: b.X1 + (r.X+r.W)*b.W(), Y2: b.Y1 + (r.Y+r.H)*b.H()}
}

// grow enlarges b by f of its size on every side.
func grow(b imgproc.Box, f float64) imgproc.Box {
	dx, dy := b.W()*f, b.H()*f
	return imgproc.Box{X1: b.X1 - dx, Y1: b.Y1 - dy, X2: b.X2 + dx, Y2: b.Y2 + dy}
}

func ptr[T any](v T) *T { return &v }

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func rectOf(b imgproc.Box) image.Rectangle { return imgproc.BoxRect(b, 0) }
