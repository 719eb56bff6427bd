package detector

import (
	"context"
	"fmt"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// Seats of OccupantScores.
const (
	SeatDriver    = "driver"
	SeatPassenger = "passenger"
)

// minSeatPx is the smallest seat crop (shorter side, frame pixels) the classifier judges: the
// labelled crops are 150–400 px, and a hand or a strap in fewer than ~32 px is guesswork.
const minSeatPx = 32

// occupantModel is a classifier (decoder "sigmoid") that judges the phone and the belt of
// one seat from its crop.
type occupantModel struct {
	*model
	// crop is the seat's region as fractions of the windshield box, for a seat on the
	// image's right (the door side to the right); a seat on the left uses its mirror image,
	// and its crop is flipped so the model always sees the door side on the right.
	crop  Region
	index map[string]int // role -> output index
}

func newOccupantModel(md *model) (*occupantModel, error) {
	om := &occupantModel{model: md, index: map[string]int{}}
	for id, role := range md.classes {
		om.index[role] = id
	}
	for _, r := range []string{models.RolePhone, models.RolePhoneVisible, models.RoleNoSeatbelt, models.RoleSeatbeltVisible} {
		if _, ok := om.index[r]; !ok {
			return nil, fmt.Errorf("detector: occupant model %s has no %q class", md.m.Name, r)
		}
	}
	c, ok := md.m.Decoder.Params["crop"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("detector: occupant model %s: decoder params need crop {x, y, w, h}", md.m.Name)
	}
	num := func(k string) (float64, error) {
		switch v := c[k].(type) {
		case float64:
			return v, nil
		case int:
			return float64(v), nil
		}
		return 0, fmt.Errorf("detector: occupant model %s: crop.%s is not a number", md.m.Name, k)
	}
	var err error
	for k, dst := range map[string]*float64{"x": &om.crop.X, "y": &om.crop.Y, "w": &om.crop.W, "h": &om.crop.H} {
		if *dst, err = num(k); err != nil {
			return nil, err
		}
	}
	if om.crop.W <= 0 || om.crop.H <= 0 {
		return nil, fmt.Errorf("detector: occupant model %s: crop has no area", md.m.Name)
	}
	return om, nil
}

// seatBox is the crop of the seat on the image's right (right) or left of windshield ws.
func seatBox(ws imgproc.Box, r Region, right bool) imgproc.Box {
	if !right {
		r.X = 1 - r.X - r.W
	}
	return sub(ws, r)
}

// classify runs the classifier on box of img (flipped when the seat is on the image's left)
// and returns its outputs by role.
func (om *occupantModel) classify(ctx context.Context, img gocv.Mat, box imgproc.Box, flip bool) (map[string]float64, error) {
	crop, _, err := imgproc.Crop(img, imgproc.BoxRect(box, 0))
	if err != nil {
		return nil, nil // the seat is outside the image: nothing to judge
	}
	defer crop.Close()
	in := crop
	if flip {
		flipped := gocv.NewMat()
		defer flipped.Close()
		gocv.Flip(crop, &flipped, 1)
		in = flipped
	}
	if _, err := om.feed(in); err != nil {
		return nil, err
	}
	if err := om.s.Run(ctx); err != nil {
		return nil, err
	}
	out, _ := om.s.Output(0)
	p := make(map[string]float64, len(om.index))
	for role, i := range om.index {
		if i < 0 || i >= len(out) {
			return nil, fmt.Errorf("model %s: output has %d values, class %s is %d", om.m.Name, len(out), role, i)
		}
		p[role] = float64(out[i])
	}
	return p, nil
}

// occupantStage judges the driver (phone and belt) and the passenger (belt) of a vehicle with
// the occupant classifier. A state is judged only where its visibility reaches the gate (a
// dark cabin, dark clothing, glare stay unknown and are never an offence); then the
// condition's probability against its threshold gives held/none, not_worn/worn.
func (g *Graph) occupantStage(ctx context.Context, v *view, veh *vehicle, idx int, tm timer) error {
	full, err := g.fullMat(v, tm)
	if err != nil {
		return err
	}
	seats := []struct {
		name string
		box  imgproc.Box
	}{{SeatDriver, veh.driver}, {SeatPassenger, veh.passenger}}
	if !g.cfg.JudgePassenger {
		seats = seats[:1]
	}
	for _, seat := range seats {
		if min(seat.box.W(), seat.box.H()) < minSeatPx {
			continue // a far-away vehicle: too few pixels to judge, the state stays unknown
		}
		right := (seat.name == SeatDriver) == (v.driver == "right")
		p, err := g.occupant.classify(ctx, full, seat.box, !right)
		if err != nil {
			return err
		}
		if p == nil {
			continue
		}
		v.detail.Occupants = append(v.detail.Occupants, OccupantScores{
			Seat: seat.name, Vehicle: idx, Box: pbox(seat.box),
			Phone: p[models.RolePhone], PhoneVisible: p[models.RolePhoneVisible],
			NoSeatbelt: p[models.RoleNoSeatbelt], SeatbeltVisible: p[models.RoleSeatbeltVisible],
		})
		belt := g.beltFinding(p, v.name, seat.box)
		if seat.name == SeatPassenger {
			if g.classifies(g.seatbelt) {
				veh.out.PassengerSeatbelt = &belt
			}
			continue
		}
		if g.classifies(g.phone) {
			veh.out.Phone = g.phoneFinding(p, v.name, seat.box)
		}
		if g.classifies(g.seatbelt) {
			veh.out.Seatbelt = belt
		}
	}
	return nil
}

func (g *Graph) phoneFinding(p map[string]float64, view string, box imgproc.Box) pipeline.Finding {
	return gatedFinding(p[models.RolePhone], p[models.RolePhoneVisible], g.phoneGate, g.phoneThr,
		pipeline.PhoneHeld, pipeline.PhoneNone, view, box)
}

func (g *Graph) beltFinding(p map[string]float64, view string, box imgproc.Box) pipeline.Finding {
	return gatedFinding(p[models.RoleNoSeatbelt], p[models.RoleSeatbeltVisible], g.seatbeltGate, g.seatbeltThr,
		pipeline.SeatbeltNotWorn, pipeline.SeatbeltWorn, view, box)
}

// gatedFinding is the state of one condition: unknown below the visibility gate, else yes
// (score = the probability) or no (score = its complement) at thr.
func gatedFinding(prob, visible, gate, thr float64, yes, no, view string, box imgproc.Box) pipeline.Finding {
	f := pipeline.Finding{State: pipeline.StateUnknown, Score: round3(prob), Box: ptr(pbox(box)), View: view}
	switch {
	case visible < gate:
	case prob >= thr:
		f.State = yes
	default:
		f.State, f.Score = no, round3(1-prob)
	}
	return f
}

// resolveThresholds fills the thresholds the configuration leaves at 0 from the models'
// manifests: a classifier's per-role threshold, a detector's score threshold. An offence
// kind without a threshold of its own uses its state's.
func (g *Graph) resolveThresholds() {
	modelThr := func(md *model, role string, fallback float64) float64 {
		if md == nil {
			return fallback
		}
		return manifestThr(md, role, fallback)
	}
	g.phoneThr = g.cfg.Thresholds.Phone
	if g.phoneThr == 0 {
		pm := g.phone
		if pm == nil {
			pm = g.scene
		}
		g.phoneThr = modelThr(pm, models.RolePhone, 0.5)
	}
	g.seatbeltThr = g.cfg.Thresholds.Seatbelt
	if g.seatbeltThr == 0 {
		g.seatbeltThr = modelThr(g.seatbelt, models.RoleNoSeatbelt, 0.5)
	}
	g.phoneGate, g.seatbeltGate = g.cfg.Thresholds.Visible, g.cfg.Thresholds.Visible
	if g.cfg.Thresholds.Visible == 0 && g.occupant != nil {
		g.phoneGate = modelThr(g.occupant.model, models.RolePhoneVisible, 0)
		g.seatbeltGate = modelThr(g.occupant.model, models.RoleSeatbeltVisible, 0)
	}
	g.offenceThr = map[string]float64{pipeline.OffencePhone: g.phoneThr, pipeline.OffenceSeatbelt: g.seatbeltThr}
	for k, v := range g.cfg.Thresholds.Offence {
		g.offenceThr[k] = v
	}
}

// Thresholds are the thresholds the graph runs with, after the models' defaults filled what
// the configuration left at 0: phone and seatbelt state thresholds, and per offence kind.
func (g *Graph) Thresholds() (phone, seatbelt float64, offence map[string]float64) {
	off := make(map[string]float64, len(g.offenceThr))
	for k, v := range g.offenceThr {
		off[k] = v
	}
	return g.phoneThr, g.seatbeltThr, off
}

// classifies reports whether md is the occupant classifier.
func (g *Graph) classifies(md *model) bool { return g.occupant != nil && md == g.occupant.model }
