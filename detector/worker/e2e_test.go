package worker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hashAnalyzer flags a frame when the first byte of its SHA-256 is even: a stand-in for the
// models that any test can recompute from the files, so counts can be checked exactly.
type hashAnalyzer struct{ calls *atomic.Int64 }

func hashFlagged(data []byte) bool { sum := sha256.Sum256(data); return sum[0]%2 == 0 }

func (a hashAnalyzer) Analyze(ctx context.Context, views []detector.View) (detector.Result, error) {
	a.calls.Add(1)
	flagged := false
	for _, v := range views {
		flagged = flagged || hashFlagged(v.Data)
	}
	return testResult(views, flagged), nil
}

// Real camera images dropped into ingest's folder go ingest → FRAMES → worker on a real S3:
// every frame ends as a Detection with verified evidence or is deleted, and the numbers
// match what the analyser says about the same files.
func TestIngestToDetectEndToEnd(t *testing.T) {
	dir := testenv.SharedPath(t, "data", "seatbelt-phone", "images")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var files []string
	for _, e := range ents {
		if strings.HasSuffix(strings.ToLower(e.Name()), ".jpg") {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	require.GreaterOrEqual(t, len(files), 12)
	files = files[:12]

	// Ingest's clock and the dropped files' times are moved to 23:30 UTC of a day 40 days
	// back, when Brussels is already on the next day: the evidence must be filed under that
	// UTC day, so a date written into the test, or one taken from the machine's clock or
	// zone, fails here.
	day := time.Now().UTC().AddDate(0, 0, -40)
	fileTime := time.Date(day.Year(), day.Month(), day.Day(), 23, 30, 0, 0, time.UTC)
	shift := time.Until(fileTime)
	now := func() time.Time { return time.Now().Add(shift) }
	wantDay := fileTime.Format("2006/01/02")

	e := newEnv(t, true)
	data := t.TempDir()
	startIngest(t, e, data, len(files), now)

	cfg := testConfig()
	cfg.DefaultExpectedViews = 1
	var calls atomic.Int64
	r := e.start(t, cfg, func() (detector.Analyzer, error) { return hashAnalyzer{calls: &calls}, nil })

	inbox := filepath.Join(data, "inbox")
	wantFlagged := 0
	stage := t.TempDir()
	for i, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		if hashFlagged(b) {
			wantFlagged++
		}
		// One camera per file: ingest derives the passage id of a frame without one from its
		// camera and capture time, and files dropped in the same second would share it.
		cam := filepath.Join(inbox, fmt.Sprintf("e2e%02d", i))
		require.NoError(t, os.MkdirAll(cam, 0o750))
		p := filepath.Join(stage, name)
		require.NoError(t, os.WriteFile(p, b, 0o640))
		require.NoError(t, os.Chtimes(p, fileTime, fileTime))
		require.NoError(t, os.Rename(p, filepath.Join(cam, name)))
	}

	waitFor(t, 60*time.Second, "every frame analysed", func() bool { return calls.Load() >= int64(len(files)) })
	waitFor(t, 30*time.Second, "nothing left behind", func() bool {
		return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.objects(t, pipeline.BucketFrames)) == 0
	})
	dets := e.detections(t)
	assert.Len(t, dets, wantFlagged, "one Detection per flagged frame")
	for _, ds := range dets {
		require.Len(t, ds, 1)
		e.checkEvidence(t, ds[0])
		assert.Equal(t, fileTime, ds[0].CapturedAt.UTC(), "the capture time of a dropped file is its modification time")
		assert.True(t, strings.HasPrefix(ds[0].Evidence[0].Key, wantDay+"/"), ds[0].Evidence[0].Key)
		assert.True(t, strings.HasPrefix(ds[0].Camera, "e2e"), ds[0].Camera)
	}
	assert.EqualValues(t, len(files), calls.Load(), "each frame analysed once")
	assert.Equal(t, float64(wantFlagged), counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "flagged"}))
	assert.Equal(t, float64(len(files)-wantFlagged), counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}))
	assert.Empty(t, e.dlq(t))
}
