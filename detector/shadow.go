package detector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// Shadow mode: a candidate occupant classifier per role runs beside the live model on the
// same seat crops. Its verdicts go on Detection.Shadow and into the disagreement metrics,
// never into Detection.Offences or Flagged, so a new model can be judged on live traffic
// (and on the reviewed cases of flagged passages) before it is trusted with fines.

// StageShadow is the time of the candidate models in Detection.TimingsMS (present only when
// detector.shadow names one).
const StageShadow = "shadow"

// ShadowConfig names the candidate model of each role (YAML section `detector.shadow`):
// occupant classifiers (decoder sigmoid) from the catalogue, e.g. from detector.manifests.
// "" runs no candidate for that role.
type ShadowConfig struct {
	Phone    string `yaml:"phone"`
	Seatbelt string `yaml:"seatbelt"`
}

// Enabled reports whether any role has a candidate.
func (s ShadowConfig) Enabled() bool { return s.Phone != "" || s.Seatbelt != "" }

// validate checks what it can without the catalogue (the graph checks each candidate's
// manifest when it loads it): a candidate is not the live model of its role.
func (s ShadowConfig) validate(live ModelsConfig) []error {
	var errs []error
	for _, r := range []struct{ field, cand, live string }{
		{"phone", s.Phone, live.Phone},
		{"seatbelt", s.Seatbelt, live.Seatbelt},
	} {
		if r.cand != "" && r.cand == r.live {
			errs = append(errs, fieldErr("shadow."+r.field, "%q is the live model of that role (models.%s); name another manifest (its own name or version)", r.cand, r.field))
		}
	}
	return errs
}

// withManifestsDir adds the manifests of dir (detector.manifests, relative to the working
// directory: an operator's own models, such as a shadow candidate) to cat. A name already in
// cat is an error, not an override. Their files come into the cache as any model's do
// (`offencecam models fetch --manifests DIR NAME`).
func withManifestsDir(cat models.Catalog, dir string) (models.Catalog, error) {
	if dir == "" {
		return cat, nil
	}
	own, err := models.LoadFS(os.DirFS(dir), ".")
	if err != nil {
		return nil, fieldErr("manifests", "%s: %v", dir, err)
	}
	merged, err := cat.Merge(own)
	if err != nil {
		return nil, fieldErr("manifests", "%s: %v", dir, err)
	}
	return merged, nil
}

// shadowCandidate is one candidate classifier with the thresholds of its own manifest.
type shadowCandidate struct {
	om                  *occupantModel
	ref                 string // name@version, the metrics' label
	phoneThr, phoneGate float64
	beltThr, beltGate   float64
}

// shadowStage is the graph's shadow state: a candidate per role (the same one when a model
// is named for both, so a seat costs one run) and the live models they are compared with.
type shadowStage struct {
	phone, seatbelt         *shadowCandidate
	refs                    []pipeline.ModelRef
	livePhone, liveSeatbelt string // name@version of the live model of the role, "none" without
	passenger               bool   // judge the passenger's belt too (detector.judge_passenger)
}

// shadowFindings are the candidates' findings for one vehicle.
type shadowFindings struct {
	v pipeline.ShadowVehicle
	// phoneJudged and beltJudged say the candidate classified the driver's seat for the role
	// (a verdict to count); passenger is the passenger's belt, when judged.
	phoneJudged, beltJudged bool
	passenger               *pipeline.Finding
}

// newShadow loads the candidates of cfg.Shadow after the live models of g. Their sessions
// join g.all, so that Close releases them and RunStats counts them.
func (sh *shared) newShadow(g *Graph) (*shadowStage, error) {
	sc := sh.cfg.Shadow
	if !sc.Enabled() {
		return nil, nil
	}
	st := &shadowStage{passenger: sh.cfg.JudgePassenger}
	loaded := map[string]*shadowCandidate{}
	candidate := func(field, name string) (*shadowCandidate, error) {
		if name == "" {
			return nil, nil
		}
		if c, ok := loaded[name]; ok {
			return c, nil
		}
		md, err := loadModel(sh.set.catalog, sh.cacheDir, name, cfgPath+".shadow."+field, sh.cfg.Runtime, sh.ortOpts)
		if err != nil {
			return nil, err
		}
		g.all = append(g.all, md)
		if !isClassifier(md) {
			return nil, fieldErr("shadow."+field, "%s is not an occupant classifier (decoder %s, want %s)", name, md.m.Decoder.Type, models.DecoderSigmoid)
		}
		om, err := newOccupantModel(md)
		if err != nil {
			return nil, fieldErr("shadow."+field, "%v", err)
		}
		c := &shadowCandidate{om: om, ref: md.m.Name + "@" + md.m.Version,
			phoneThr: manifestThr(md, models.RolePhone, 0.5), phoneGate: manifestThr(md, models.RolePhoneVisible, 0),
			beltThr: manifestThr(md, models.RoleNoSeatbelt, 0.5), beltGate: manifestThr(md, models.RoleSeatbeltVisible, 0)}
		loaded[name] = c
		return c, nil
	}
	var err error
	if st.phone, err = candidate("phone", sc.Phone); err != nil {
		return nil, err
	}
	if st.seatbelt, err = candidate("seatbelt", sc.Seatbelt); err != nil {
		return nil, err
	}
	for _, r := range []struct {
		role string
		c    *shadowCandidate
	}{{RolePhone, st.phone}, {RoleSeatbelt, st.seatbelt}} {
		if r.c != nil {
			st.refs = append(st.refs, pipeline.ModelRef{Name: r.c.om.m.Name, Version: r.c.om.m.Version, Role: r.role})
		}
	}
	// Without a phone model the scene model's phone class is the live phone judge.
	st.livePhone, st.liveSeatbelt = modelRef(g.phone), modelRef(g.seatbelt)
	if g.phone == nil {
		st.livePhone = modelRef(g.scene)
	}
	return st, nil
}

func modelRef(md *model) string {
	if md == nil {
		return "none"
	}
	return md.m.Name + "@" + md.m.Version
}

// manifestThr is a model's own threshold for role from its manifest: a classifier's per-role
// threshold, else a detector's score threshold. The live graph takes it where the
// configuration leaves a threshold at 0 (resolveThresholds); a candidate always does, since
// the configuration's thresholds are tuned for the live model.
func manifestThr(md *model, role string, fallback float64) float64 {
	if t := md.m.Thresholds; t != nil {
		if v, ok := t.Classes[role]; ok {
			return v
		}
		if t.Score > 0 {
			return t.Score
		}
	}
	return fallback
}

// shadowStage runs the candidates on the seats of veh: the crops the live occupant model
// judged (veh.driver, veh.passenger), or, without a live occupant model, each candidate's own
// crop of the windshield. One run per seat and candidate; the passenger's seat only with
// detector.judge_passenger, as for the live model.
func (g *Graph) shadowStage(ctx context.Context, v *view, veh *vehicle, tm timer) error {
	s := g.shadow
	full, err := g.fullMat(v, tm)
	if err != nil {
		return err
	}
	t0 := time.Now()
	defer tm.since(StageShadow, t0)
	unknown := pipeline.Finding{State: pipeline.StateUnknown, View: v.name}
	sf := &shadowFindings{v: pipeline.ShadowVehicle{Phone: unknown, Seatbelt: unknown}}
	veh.shadow = sf
	W, H := v.info.Width, v.info.Height
	cands := []*shadowCandidate{s.phone}
	if s.seatbelt != s.phone {
		cands = append(cands, s.seatbelt)
	}
	for _, seat := range []string{SeatDriver, SeatPassenger} {
		if seat == SeatPassenger && (s.seatbelt == nil || !s.passenger) {
			continue
		}
		right := (seat == SeatDriver) == (v.driver == "right")
		for _, c := range cands {
			if c == nil || (seat == SeatPassenger && c != s.seatbelt) {
				continue
			}
			box := veh.driver
			if seat == SeatPassenger {
				box = veh.passenger
			}
			if g.occupant == nil {
				box = seatBox(veh.windshield, c.om.crop, right).Clamp(W, H)
			}
			if min(box.W(), box.H()) < minSeatPx {
				continue // too few pixels, as for the live model: nothing judged
			}
			p, err := c.om.classify(ctx, full, box, !right)
			if err != nil {
				return fmt.Errorf("shadow model %s: %w", c.ref, err)
			}
			if p == nil {
				continue // the seat is outside the image
			}
			belt := gatedFinding(p[models.RoleNoSeatbelt], p[models.RoleSeatbeltVisible], c.beltGate, c.beltThr,
				pipeline.SeatbeltNotWorn, pipeline.SeatbeltWorn, v.name, box)
			if seat == SeatPassenger {
				sf.passenger = &belt
				continue
			}
			if c == s.phone {
				sf.v.Phone = gatedFinding(p[models.RolePhone], p[models.RolePhoneVisible], c.phoneGate, c.phoneThr,
					pipeline.PhoneHeld, pipeline.PhoneNone, v.name, box)
				sf.phoneJudged = true
			}
			if c == s.seatbelt {
				sf.v.Seatbelt = belt
				sf.beltJudged = true
			}
		}
	}
	return nil
}

// offences are what a candidate's findings would make an offence under the candidate's own
// thresholds: the rules of vehicleOffences, with the state thresholds as offence thresholds.
func (s *shadowStage) offences(sf *shadowFindings) []pipeline.Offence {
	var out []pipeline.Offence
	if s.phone != nil && sf.v.Phone.State == pipeline.PhoneHeld && sf.v.Phone.Score >= s.phone.phoneThr {
		out = append(out, pipeline.Offence{Kind: pipeline.OffencePhone, Score: sf.v.Phone.Score})
	}
	if s.seatbelt == nil {
		return out
	}
	thr := s.seatbelt.beltThr
	belt := 0.0
	if f := sf.v.Seatbelt; f.State == pipeline.SeatbeltNotWorn && f.Score >= thr {
		belt = f.Score
	}
	if p := sf.passenger; p != nil && p.State == pipeline.SeatbeltNotWorn && p.Score >= thr {
		belt = max(belt, p.Score)
	}
	if belt > 0 {
		out = append(out, pipeline.Offence{Kind: pipeline.OffenceSeatbelt, Score: belt})
	}
	return out
}

// assembleShadow fills det.Shadow from the candidates' findings (Vehicles index-aligned with
// det.Vehicles, as assemble built them from vs) and counts each judged verdict and each
// disagreement with the live finding. It never touches det.Offences or det.Flagged.
func (g *Graph) assembleShadow(det *pipeline.Detection, vs []*view) {
	s := g.shadow
	if s == nil {
		return
	}
	out := &pipeline.Shadow{Models: append([]pipeline.ModelRef(nil), s.refs...),
		Vehicles: make([]pipeline.ShadowVehicle, 0, len(det.Vehicles)), Offences: []pipeline.Offence{}}
	offences := map[string]pipeline.Offence{}
	for _, v := range vs {
		for _, veh := range v.vehicles {
			idx := len(out.Vehicles)
			unknown := pipeline.Finding{State: pipeline.StateUnknown, View: v.name}
			sf := veh.shadow
			if sf == nil {
				// Not examined (the whole-frame stand-in): nothing judged, nothing counted.
				out.Vehicles = append(out.Vehicles, pipeline.ShadowVehicle{Phone: unknown, Seatbelt: unknown})
				continue
			}
			out.Vehicles = append(out.Vehicles, sf.v)
			for _, o := range s.offences(sf) {
				o.Vehicle = idx
				addOffence(offences, o)
			}
			if sf.phoneJudged {
				g.metrics.shadowVerdict(RolePhone, s.livePhone, s.phone.ref, veh.out.Phone.State == sf.v.Phone.State)
			}
			if sf.beltJudged {
				g.metrics.shadowVerdict(RoleSeatbelt, s.liveSeatbelt, s.seatbelt.ref, veh.out.Seatbelt.State == sf.v.Seatbelt.State)
			}
		}
	}
	for _, k := range pipeline.OffenceKinds {
		if o, ok := offences[k]; ok {
			out.Offences = append(out.Offences, o)
		}
	}
	det.Shadow = out
}

// shadowMetrics count the candidates' verdicts and their disagreements with the live models.
// They are counted here, not from published Detections: the worker publishes (and keeps)
// only flagged passages, and a candidate that finds what the live model misses disagrees
// precisely on the passages that are deleted.
type shadowMetrics struct {
	verdicts      *prometheus.CounterVec
	disagreements *prometheus.CounterVec
}

func newShadowMetrics(reg prometheus.Registerer) (*shadowMetrics, error) {
	m := &shadowMetrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_detector_shadow_verdicts_total",
			Help: "Driver seats a shadow candidate model (detector.shadow) judged, by role and candidate (name@version).",
		}, []string{"role", "candidate"}),
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_detector_shadow_disagreements_total",
			Help: "Shadow verdicts whose state (held/none/unknown, not_worn/worn/unknown) differs from the live model's, by role, live and candidate model (name@version).",
		}, []string{"role", "live", "candidate"}),
	}
	var err error
	if m.verdicts, err = registerCounterVec(reg, m.verdicts); err != nil {
		return nil, err
	}
	if m.disagreements, err = registerCounterVec(reg, m.disagreements); err != nil {
		return nil, err
	}
	return m, nil
}

// registerCounterVec registers c, or returns the one already registered under its name
// (several factories on one registry, as for the stage histogram).
func registerCounterVec(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("detector: register metrics: %w", err)
	}
	return c, nil
}

func (m *graphMetrics) shadowVerdict(role, live, candidate string, agree bool) {
	if m == nil || m.shadow == nil {
		return
	}
	m.shadow.verdicts.WithLabelValues(role, candidate).Inc()
	if !agree {
		m.shadow.disagreements.WithLabelValues(role, live, candidate).Inc()
	}
}
