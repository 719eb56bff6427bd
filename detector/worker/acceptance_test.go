package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/ingest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Acceptance tests with the real stage graph and models (var/models, or
// $OFFENCECAM_MODEL_CACHE): they fail under CI=true and skip elsewhere when it is missing.

func realFactory(t testing.TB) func() (detector.Analyzer, error) {
	t.Helper()
	testenv.ModelFile(t, "libonnxruntime.so.1")
	f, err := detector.NewFactory(sensitiveConfig(), testenv.ModelCache())
	require.NoError(t, err)
	return f
}

// sensitiveConfig is the default graph with a low phone threshold: at the default one the
// reference pack (COCO "cell phone", no phone model) flags none of the shared images, and
// the flagged path must be exercised with real evidence.
func sensitiveConfig() detector.Config {
	c := detector.DefaultConfig()
	c.Thresholds.Phone = 0.02
	c.Thresholds.Offence[pipeline.OffencePhone] = 0.02
	return c
}

// countingFactory counts analyses across every analyser it makes.
func countingFactory(f func() (detector.Analyzer, error), calls *atomic.Int64) func() (detector.Analyzer, error) {
	return func() (detector.Analyzer, error) {
		a, err := f()
		if err != nil {
			return nil, err
		}
		return countingAnalyzer{a, calls}, nil
	}
}

type countingAnalyzer struct {
	detector.Analyzer
	calls *atomic.Int64
}

func (c countingAnalyzer) Analyze(ctx context.Context, v []detector.View) (detector.Result, error) {
	defer c.calls.Add(1)
	return c.Analyzer.Analyze(ctx, v)
}

func (c countingAnalyzer) Close() error {
	if cl, ok := c.Analyzer.(interface{ Close() error }); ok {
		return cl.Close()
	}
	return nil
}

// sharedImages reads the images of both shared sets, by file name.
func sharedImages(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, set := range [][]string{{"data", "seatbelt-phone", "images"}, {"data", "plates"}} {
		dir := testenv.SharedPath(t, set...)
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range ents {
			if strings.HasSuffix(strings.ToLower(e.Name()), ".jpg") {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				require.NoError(t, err)
				out[e.Name()] = b
			}
		}
	}
	return out
}

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// startIngest runs the ingest stage with its drop folder under data, one registered camera
// per file so that every file is its own passage. now is ingest's clock (time.Now when nil).
func startIngest(t testing.TB, e *env, data string, cameras int, now func() time.Time) {
	t.Helper()
	icfg := ingest.DefaultConfig()
	icfg.EventSubject = ""
	icfg.ListInterval = 0
	icfg.Inbox.PollInterval = 50 * time.Millisecond
	icfg.Inbox.Settle = 200 * time.Millisecond
	for i := range cameras {
		icfg.Cameras[fmt.Sprintf("e2e%02d", i)] = ingest.Camera{Site: "e2e", Country: "BE", DriverSide: "left", DefaultView: pipeline.ViewFront}
	}
	svc, err := ingest.New(ingest.Deps{NC: e.ns.NC, JS: e.ns.JS, Store: e.store, Registry: prometheus.NewRegistry(), DataDir: data, Now: now}, icfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	inbox := filepath.Join(data, "inbox")
	waitFor(t, 10*time.Second, "inbox created", func() bool { _, err := os.Stat(inbox); return err == nil })
}

// drop puts a file into camera i's folder of the inbox, atomically.
func drop(t testing.TB, data string, i int, name string, b []byte) {
	t.Helper()
	cam := filepath.Join(data, "inbox", fmt.Sprintf("e2e%02d", i))
	require.NoError(t, os.MkdirAll(cam, 0o750))
	tmp := filepath.Join(data, "staging-"+name)
	require.NoError(t, os.WriteFile(tmp, b, 0o640))
	require.NoError(t, os.Rename(tmp, filepath.Join(cam, name)))
}

// Labelled images from ../shared/data go ingest → FRAMES → worker (real models, real S3):
// every frame ends as a Detection with its evidence present and hashing as recorded, or
// deleted; and which frames are flagged matches the stage graph's own analysis of the files.
func TestRealModelsIngestToDetect(t *testing.T) {
	factory := realFactory(t)
	imgs := sharedImages(t)

	// The reference: the stage graph on the files, as `offencecam analyze` runs it. The
	// pipeline then gets every flagged image and clean ones up to 16 in all.
	flaggedRef := referenceFlags(t, imgs)
	require.NotZero(t, countTrue(flaggedRef), "no shared image is flagged by the reference graph: the flagged path would go untested")
	var names []string
	for _, n := range sortedNames(imgs) {
		if flaggedRef[n] && len(names) < 8 {
			names = append(names, n)
		}
	}
	for _, n := range sortedNames(imgs) {
		if !flaggedRef[n] && len(names) < 16 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	wantFlagged := map[string]bool{}
	for _, n := range names {
		wantFlagged[n] = flaggedRef[n]
	}
	t.Logf("reference: %d of %d flagged; pipeline gets %d, %d flagged", countTrue(flaggedRef), len(imgs), len(names), countTrue(wantFlagged))

	e := newEnv(t, true)
	data := t.TempDir()
	startIngest(t, e, data, len(names), nil)
	cfg := testConfig()
	cfg.DefaultExpectedViews = 1
	cfg.AckWait = 30 * time.Second
	var calls atomic.Int64
	r := e.start(t, cfg, countingFactory(factory, &calls))
	for i, n := range names {
		drop(t, data, i, n, imgs[n])
	}

	waitFor(t, 3*time.Minute, "every frame analysed", func() bool { return calls.Load() >= int64(len(names)) })
	waitFor(t, time.Minute, "nothing left behind", func() bool {
		return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.objects(t, pipeline.BucketFrames)) == 0
	})
	gotFlagged := map[string]bool{}
	for _, ds := range e.detections(t) {
		require.Len(t, ds, 1)
		d := ds[0]
		assert.True(t, d.Flagged)
		assert.NotEmpty(t, d.Offences)
		assert.NotEmpty(t, d.Models, "the models that decided are named")
		e.checkEvidence(t, d)
		require.Len(t, d.Frames, 1)
		for _, n := range names {
			if strings.HasSuffix(d.Frames[0].Key, n) {
				gotFlagged[n] = true
			}
		}
	}
	for _, n := range names {
		assert.Equal(t, wantFlagged[n], gotFlagged[n], "%s: flagged by the worker as by the graph", n)
	}
	assert.EqualValues(t, len(names), calls.Load())
	assert.Equal(t, float64(countTrue(wantFlagged)), counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "flagged"}))
	assert.Equal(t, float64(len(names)-countTrue(wantFlagged)), counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}))
	assert.Empty(t, e.dlq(t))
}

// With the real models: a frame whose object is replaced by corrupt bytes after ingest, and
// a frame whose bytes were corrupt all along (a truncated JPEG the header check let through),
// both end in the DLQ with a reason; the worker keeps going with the next frame.
func TestRealModelsCorruptFramesGoToDLQ(t *testing.T) {
	factory := realFactory(t)
	imgs := sharedImages(t)
	names := sortedNames(imgs)

	e := newEnv(t, true)
	data := t.TempDir()
	startIngest(t, e, data, 2, nil)
	drop(t, data, 0, names[0], imgs[names[0]])
	waitFor(t, 30*time.Second, "ingested", func() bool { return e.streamCount(t, pipeline.StreamFrames) == 1 })
	f := e.streamMsgs(t, pipeline.StreamFrames)[0]
	fr, err := pipeline.Decode[pipeline.Frame](f.Data)
	require.NoError(t, err)
	// Replaced after ingest (events and listing are off, so ingest does not see the new one).
	bad := append([]byte(nil), imgs[names[0]][:len(imgs[names[0]])/3]...)
	_, err = e.store.Put(context.Background(), fr.Bucket, fr.Key, bytes.NewReader(bad), int64(len(bad)), objstore.PutOptions{})
	require.NoError(t, err)

	// Truncated all along: published as ingest would, with its own ETag.
	trunc := imgs[names[1]][:len(imgs[names[1]])/2]
	tf := e.putFrame(t, "e2e01", "trunc", pipeline.ViewFront, trunc)

	var calls atomic.Int64
	r := e.start(t, testConfig(), countingFactory(factory, &calls))
	drop(t, data, 1, names[2], imgs[names[2]])

	waitFor(t, 2*time.Minute, "all three handled", func() bool {
		return len(e.dlq(t)) == 2 && e.streamCount(t, pipeline.StreamFrames) == 0 &&
			counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "flagged"})+
				counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}) == 1
	})
	reasons := map[string]string{}
	for _, d := range e.dlq(t) {
		var f pipeline.Frame
		require.NoError(t, jsonUnmarshal(d.Data, &f))
		reasons[f.ID] = d.Reason
	}
	assert.Contains(t, reasons[fr.ID], "changed after ingest")
	assert.NotEmpty(t, reasons[tf.ID])
	t.Logf("truncated JPEG: %s", reasons[tf.ID])
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_dlq_total", map[string]string{"reason": "bad_image"}),
		"the graph's decode error is permanent: dead-lettered at the first delivery")
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var (
	refOnce  sync.Once
	refFlags map[string]bool
	refErr   error
)

// referenceFlags is the stage graph's verdict on each shared image analysed alone, computed
// once per test binary.
func referenceFlags(t testing.TB, imgs map[string][]byte) map[string]bool {
	t.Helper()
	factory := realFactory(t)
	refOnce.Do(func() {
		ref, err := factory()
		if err != nil {
			refErr = err
			return
		}
		defer func() {
			if c, ok := ref.(interface{ Close() error }); ok {
				c.Close()
			}
		}()
		refFlags = map[string]bool{}
		for _, n := range sortedNames(imgs) {
			res, err := ref.Analyze(context.Background(), []detector.View{{
				Frame: pipeline.Frame{V: 1, ID: n, Key: n, View: pipeline.ViewFront, Camera: "ref", PassageID: n, DriverSide: "left"},
				Data:  imgs[n]}})
			if err != nil {
				refErr = fmt.Errorf("%s: %w", n, err)
				return
			}
			refFlags[n] = res.Detection.Flagged
		}
	})
	require.NoError(t, refErr)
	return refFlags
}
