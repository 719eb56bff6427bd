package detector

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

const (
	testCandidate        = "occupant-candidate"
	testCandidateVersion = "2-shadow-test"
)

// writeCandidateManifest writes, into a new directory, the shipped occupant manifest renamed
// as a candidate (same ONNX file, so the cache already holds it) whose thresholds and gates are
// all 0: every seat it judges is a held phone and an unworn belt, so it always "fires".
func writeCandidateManifest(t *testing.T) string {
	t.Helper()
	b, err := models.BuiltinFile(ModelOccupant + ".yaml")
	require.NoError(t, err)
	m, err := models.Parse(b)
	require.NoError(t, err)
	m.Name, m.Version = testCandidate, testCandidateVersion
	m.Thresholds = &models.Thresholds{Classes: map[string]float64{
		models.RolePhone: 0, models.RolePhoneVisible: 0, models.RoleNoSeatbelt: 0, models.RoleSeatbeltVisible: 0}}
	out, err := yaml.Marshal(m)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, testCandidate+".yaml"), out, 0o600))
	return dir
}

// shadowTestConfig is the default graph whose live occupant model can never flag, with the
// always-firing candidate in shadow for both roles. The live thresholds and gates are the
// configuration's 1.0: a state needs a probability and a visibility of exactly 1, which a
// sigmoid reaches only in float32 saturation on both outputs at once. The candidate takes
// its manifest's 0s, not these.
func shadowTestConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Models.PlateDetector, cfg.Models.PlateReader, cfg.Models.Face = "", "", ""
	cfg.Thresholds.Phone, cfg.Thresholds.Seatbelt, cfg.Thresholds.Visible = 1, 1, 1
	cfg.Shadow = ShadowConfig{Phone: testCandidate, Seatbelt: testCandidate}
	cfg.Manifests = writeCandidateManifest(t)
	return cfg
}

// A shadow candidate that flags everything never makes an offence: the Detection stays
// unflagged, its verdicts are on Detection.Shadow, and the detector counts its disagreements
// with the live model (the worker deletes such a passage, so nothing else would).
func TestShadowCandidateNeverCreatesAnOffence(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	reg := prometheus.NewRegistry()
	g, err := New(shadowTestConfig(t), testenv.ModelCache(), WithRegistry(reg))
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })

	sessions := 0
	for _, md := range g.all {
		if md.m.Name == testCandidate {
			sessions++
		}
	}
	assert.Equal(t, 1, sessions, "one candidate session serves both roles")
	for _, r := range g.Models() {
		assert.NotEqual(t, testCandidate, r.Name, "a candidate is not one of the live models")
	}

	files := sharedImages(t, "data", "seatbelt-phone", "images")
	files = files[:min(4, len(files))]
	shadowOffences := 0
	for _, f := range files {
		res, err := g.Analyze(context.Background(), []View{{Data: readFile(t, f)}})
		require.NoError(t, err, f)
		d := res.Detection
		assert.False(t, d.Flagged, f)
		assert.Empty(t, d.Offences, f)
		assert.Empty(t, res.Artifacts, "%s: nothing is rendered for an unflagged passage", f)
		require.NotNil(t, d.Shadow, f)
		assert.ElementsMatch(t, []pipeline.ModelRef{
			{Name: testCandidate, Version: testCandidateVersion, Role: RolePhone},
			{Name: testCandidate, Version: testCandidateVersion, Role: RoleSeatbelt},
		}, d.Shadow.Models)
		require.Len(t, d.Shadow.Vehicles, len(d.Vehicles), "%s: shadow vehicles are index-aligned", f)
		for _, o := range d.Shadow.Offences {
			require.Less(t, o.Vehicle, len(d.Vehicles))
			sv := d.Shadow.Vehicles[o.Vehicle]
			switch o.Kind {
			case pipeline.OffencePhone:
				assert.Equal(t, pipeline.PhoneHeld, sv.Phone.State)
				require.NotNil(t, sv.Phone.Box)
				require.NotNil(t, d.Vehicles[o.Vehicle].Driver)
				assert.Equal(t, *d.Vehicles[o.Vehicle].Driver, *sv.Phone.Box, "%s: the candidate judged the live model's driver crop", f)
			case pipeline.OffenceSeatbelt:
				assert.Equal(t, pipeline.SeatbeltNotWorn, sv.Seatbelt.State)
			}
		}
		shadowOffences += len(d.Shadow.Offences)
		assert.Contains(t, d.TimingsMS, StageShadow)
	}
	require.NotZero(t, shadowOffences, "the always-firing candidate raised nothing on %d frames: the test proves nothing", len(files))

	live := ModelOccupant + "@" + g.occupant.m.Version
	cand := testCandidate + "@" + testCandidateVersion
	for _, role := range []string{RolePhone, RoleSeatbelt} {
		verdicts := gathered(t, reg, "offencecam_detector_shadow_verdicts_total", map[string]string{"role": role, "candidate": cand})
		dis := gathered(t, reg, "offencecam_detector_shadow_disagreements_total", map[string]string{"role": role, "live": live, "candidate": cand})
		assert.Positive(t, verdicts, role)
		assert.Positive(t, dis, "%s: the candidate disagrees with a live model that never fires", role)
		assert.LessOrEqual(t, dis, verdicts, role)
	}
}

// gathered is the value of the counter name with exactly these labels on reg (0 when absent).
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if assert.ObjectsAreEqual(labels, got) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestShadowConfigErrorsNameTheField(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Shadow.Phone = cfg.Models.Phone
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "detector.shadow.phone")

	testenv.ModelFile(t, "libonnxruntime.so.1")
	for name, tc := range map[string]struct {
		shadow ShadowConfig
		want   string
	}{
		"unknown manifest":      {ShadowConfig{Seatbelt: "no-such-model"}, "detector.shadow.seatbelt"},
		"not a classifier":      {ShadowConfig{Phone: ModelYOLOXNano}, "detector.shadow.phone: yolox-nano is not an occupant classifier"},
		"manifests dir missing": {ShadowConfig{Phone: testCandidate}, "detector.manifests"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Models.PlateDetector, cfg.Models.PlateReader, cfg.Models.Face = "", "", ""
			cfg.Shadow = tc.shadow
			if name == "manifests dir missing" {
				cfg.Manifests = filepath.Join(t.TempDir(), "absent")
			}
			_, err := New(cfg, testenv.ModelCache())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
