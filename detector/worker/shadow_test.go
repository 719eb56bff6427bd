package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// A passage only the shadow candidate would flag goes through the worker as a clean one: no
// Detection is published, no evidence kept, the frame deleted; the candidate's disagreement
// with the live model is still counted, by the detector, since nothing else survives.
func TestShadowCandidateFlagsNothingThroughTheWorker(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	// The candidate: the shipped occupant model under another name, thresholds and gates 0,
	// so it finds a held phone and an unworn belt on every seat it judges.
	b, err := models.BuiltinFile(detector.ModelOccupant + ".yaml")
	require.NoError(t, err)
	m, err := models.Parse(b)
	require.NoError(t, err)
	m.Name, m.Version = "occupant-candidate", "2-shadow-test"
	m.Thresholds = &models.Thresholds{Classes: map[string]float64{
		models.RolePhone: 0, models.RolePhoneVisible: 0, models.RoleNoSeatbelt: 0, models.RoleSeatbeltVisible: 0}}
	y, err := yaml.Marshal(m)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, m.Name+".yaml"), y, 0o600))

	// The live occupant model can never flag: a state needs probability and visibility of 1.
	cfg := detector.DefaultConfig()
	cfg.Models.PlateDetector, cfg.Models.PlateReader, cfg.Models.Face = "", "", ""
	cfg.Thresholds.Phone, cfg.Thresholds.Seatbelt, cfg.Thresholds.Visible = 1, 1, 1
	cfg.Shadow = detector.ShadowConfig{Phone: m.Name, Seatbelt: m.Name}
	cfg.Manifests = dir
	greg := prometheus.NewRegistry()
	factory, err := detector.NewFactory(cfg, testenv.ModelCache(), detector.WithRegistry(greg))
	require.NoError(t, err)

	e := newEnv(t, false)
	r := e.start(t, testConfig(), factory)
	imgs := sharedImages(t)
	names := sortedNames(imgs)
	// seatbelt-phone frames: vehicles with drivers, which the candidate judges.
	var sent []pipeline.Frame
	for _, n := range names {
		if len(sent) == 3 {
			break
		}
		if _, err := os.Stat(filepath.Join(testenv.SharedDir(), "data", "seatbelt-phone", "images", n)); err == nil {
			sent = append(sent, e.putFrame(t, "cam1", "shadow-"+n, pipeline.ViewFront, imgs[n]))
		}
	}
	require.Len(t, sent, 3)
	waitFor(t, 60*time.Second, "every frame finished", func() bool {
		return counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": resultClean}) == float64(len(sent))
	})

	assert.Zero(t, e.streamCount(t, pipeline.StreamDetections), "a shadow verdict never publishes a Detection")
	assert.Empty(t, e.objects(t, pipeline.BucketEvidence), "nor keeps evidence")
	assert.Empty(t, e.objects(t, pipeline.BucketFrames), "the unflagged frames are deleted as usual")
	assert.Zero(t, counter(t, r.reg, "offencecam_detector_passages_total", map[string]string{"result": resultFlagged}))
	cand := m.Name + "@" + m.Version
	assert.Positive(t, counter(t, greg, "offencecam_detector_shadow_verdicts_total", map[string]string{"role": detector.RolePhone, "candidate": cand}))
	assert.Positive(t, counter(t, greg, "offencecam_detector_shadow_disagreements_total", map[string]string{"role": detector.RolePhone, "candidate": cand}),
		"the disagreements of the deleted passages are counted")
}
