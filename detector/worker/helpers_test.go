package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/objstore/objstoretest"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// Test images are not images: the test analyser reads a label from the bytes, so that each
// test decides what the "detector" sees. Real models run in the acceptance tests.
const imgPrefix = "TESTIMG:"

func img(label string, salt string) []byte { return []byte(imgPrefix + label + ":" + salt) }

func labelOf(data []byte) string {
	s, ok := strings.CutPrefix(string(data), imgPrefix)
	if !ok {
		return "corrupt"
	}
	l, _, _ := strings.Cut(s, ":")
	return l
}

// testAnalyzer judges a passage by the labels of its views: flagged if any view says
// "flagged"; "corrupt" (or bytes without the prefix) is a bad-image error like imgproc's;
// "panic" panics; "fail" is a transient error; "slow" takes slowFor.
type testAnalyzer struct {
	calls   *atomic.Int64
	slowFor time.Duration
	mu      *sync.Mutex
	seen    *[][]string // views per call, in order
}

func newTestAnalyzerFactory() (func() (detector.Analyzer, error), *testAnalyzer) {
	proto := &testAnalyzer{calls: &atomic.Int64{}, mu: &sync.Mutex{}, seen: &[][]string{}}
	return func() (detector.Analyzer, error) { c := *proto; return &c, nil }, proto
}

func (a *testAnalyzer) views() [][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]string(nil), (*a.seen)...)
}

func (a *testAnalyzer) Analyze(ctx context.Context, views []detector.View) (detector.Result, error) {
	a.calls.Add(1)
	var names []string
	for _, v := range views {
		names = append(names, v.Frame.View)
	}
	a.mu.Lock()
	*a.seen = append(*a.seen, names)
	a.mu.Unlock()
	flagged := false
	for _, v := range views {
		switch labelOf(v.Data) {
		case "corrupt":
			return detector.Result{}, &imgproc.Error{Kind: imgproc.ErrCorrupt, Msg: "test: not a JPEG"}
		case "panic":
			panic("test analyser exploded")
		case "fail":
			return detector.Result{}, errors.New("test: transient failure")
		case "slow":
			select {
			case <-time.After(a.slowFor):
			case <-ctx.Done():
				return detector.Result{}, ctx.Err()
			}
		case "flagged":
			flagged = true
		}
	}
	return testResult(views, flagged), nil
}

func testResult(views []detector.View, flagged bool) detector.Result {
	d := pipeline.Detection{V: pipeline.Version, Flagged: flagged,
		TimingsMS: map[string]float64{"scene": 3, "plate": 1.5}}
	var arts []detector.Artifact
	if flagged {
		d.Vehicles = []pipeline.Vehicle{{Class: "car", Score: .9, Phone: pipeline.Finding{State: pipeline.PhoneHeld, Score: .8}}}
		d.Offences = []pipeline.Offence{{Kind: pipeline.OffencePhone, Score: .8}}
		v := views[0]
		for _, kind := range []string{pipeline.EvidenceAnnotated, pipeline.EvidencePlateCrop} {
			data := []byte(fmt.Sprintf("%s of %s", kind, v.Frame.ID))
			sum := sha256.Sum256(data)
			arts = append(arts, detector.Artifact{Kind: kind, View: v.Frame.View, ContentType: "image/jpeg",
				Data: data, SHA256: hex.EncodeToString(sum[:])})
		}
	}
	return detector.Result{Detection: d, Artifacts: arts}
}

// env is a real NATS with the wire and a real object store.
type env struct {
	ns    *natstest.Server
	store objstore.Store
	s3    objstore.S3Config // set when store is S3
}

func newEnv(t testing.TB, s3 bool) *env {
	t.Helper()
	e := &env{ns: natstest.Start(t, nil)}
	if s3 {
		e.s3 = objstoretest.StartVersity(t, objstoretest.VersityOptions{})
		st, err := objstore.NewS3(e.s3)
		require.NoError(t, err)
		e.store = st
	} else {
		st, err := objstore.NewLocal(t.TempDir())
		require.NoError(t, err)
		e.store = st
	}
	ctx := context.Background()
	for _, b := range []string{pipeline.BucketFrames, pipeline.BucketEvidence, pipeline.BucketQuarantine} {
		require.NoError(t, e.store.EnsureBucket(ctx, b))
	}
	return e
}

var captured = time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)

// putFrame uploads bytes as a camera would and publishes the Frame as ingest would.
func (e *env) putFrame(t testing.TB, camera, passage, view string, data []byte) pipeline.Frame {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("%s/2026/11/27/%s/%s.jpg", camera, passage, view)
	// Like a camera, retry a failed upload: versitygw's posix backend can refuse a PUT while
	// the worker's DELETE of the day's previous frame prunes the same directory.
	var info objstore.ObjectInfo
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		info, err = e.store.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(data), int64(len(data)),
			objstore.PutOptions{ContentType: "image/jpeg"})
		if err == nil {
			break
		}
	}
	require.NoError(t, err)
	f := pipeline.Frame{V: pipeline.Version, ID: pipeline.FrameID(pipeline.BucketFrames, key, info.ETag),
		Bucket: pipeline.BucketFrames, Key: key, ETag: info.ETag, Size: info.Size, ContentType: "image/jpeg",
		Format: "jpeg", Width: 640, Height: 480, Camera: camera, CapturedAt: captured, View: view,
		PassageID: passage, Source: pipeline.SourceEvent, ReceivedAt: captured.Add(time.Second)}
	e.publishFrame(t, f)
	return f
}

func (e *env) publishFrame(t testing.TB, f pipeline.Frame) {
	t.Helper()
	b, err := json.Marshal(f)
	require.NoError(t, err)
	_, err = e.ns.JS.Publish(context.Background(), pipeline.FrameSubject(f.Camera), b, jetstream.WithMsgID(f.ID))
	require.NoError(t, err)
}

func testConfig() Config {
	c := DefaultConfig()
	c.Concurrency = 2
	c.BatchWait = 200 * time.Millisecond
	c.PassageWait = 300 * time.Millisecond
	c.AckWait = 5 * time.Second
	c.RetryInitial = 20 * time.Millisecond
	c.RetryMax = 200 * time.Millisecond
	c.MetricsInterval = 100 * time.Millisecond
	c.ExpectedViews = map[string]int{"cam1": 1, "cam2": 2}
	return c
}

type running struct {
	w    *Worker
	reg  *prometheus.Registry
	stop func() error
}

func (e *env) start(t testing.TB, cfg Config, factory func() (detector.Analyzer, error), setup ...func(*Worker)) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := New(Deps{JS: e.ns.JS, Store: e.store, NewAnalyzer: factory, Registry: reg, Log: log}, cfg)
	require.NoError(t, err)
	for _, f := range setup {
		f(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("worker did not stop within 30s")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, 10*time.Second, "worker ready", func() bool { return w.Ready() == nil })
	return &running{w: w, reg: reg, stop: stop}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		<-tick.C
	}
}

// streamMsgs reads every message still in a stream.
func (e *env) streamMsgs(t testing.TB, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := e.ns.JS.Stream(ctx, name)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

func (e *env) streamCount(t testing.TB, name string) uint64 {
	t.Helper()
	s, err := e.ns.JS.Stream(context.Background(), name)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// detections groups the messages on DETECTIONS by passage id (every message, so a passage
// published twice shows twice, and its late views after it).
func (e *env) detections(t testing.TB) map[string][]pipeline.Detection {
	t.Helper()
	out := map[string][]pipeline.Detection{}
	for _, m := range e.streamMsgs(t, pipeline.StreamDetections) {
		d, err := pipeline.Decode[pipeline.Detection](m.Data)
		require.NoError(t, err)
		id := m.Header.Get("Nats-Msg-Id")
		require.True(t, id == d.PassageID || strings.HasPrefix(id, d.PassageID+"+"),
			"Nats-Msg-Id %q is the passage id, or passage id + late views", id)
		out[d.PassageID] = append(out[d.PassageID], d)
	}
	return out
}

func (e *env) dlq(t testing.TB) []pipeline.DLQEntry {
	t.Helper()
	var out []pipeline.DLQEntry
	for _, m := range e.streamMsgs(t, pipeline.StreamDLQ) {
		require.Equal(t, pipeline.DLQSubject("detect"), m.Subject)
		d, err := pipeline.Decode[pipeline.DLQEntry](m.Data)
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

func (e *env) objects(t testing.TB, bucket string) []objstore.ObjectInfo {
	t.Helper()
	var out []objstore.ObjectInfo
	after := ""
	for {
		page, err := e.store.List(context.Background(), bucket, "", objstore.ListOptions{StartAfter: after})
		require.NoError(t, err)
		out = append(out, page.Objects...)
		if !page.Truncated {
			return out
		}
		after = page.NextStartAfter
	}
}

func (e *env) read(t testing.TB, bucket, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := e.store.Get(context.Background(), bucket, key)
	require.NoError(t, err, "%s/%s", bucket, key)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b, info
}

// checkEvidence asserts every evidence object of d exists and hashes as recorded.
func (e *env) checkEvidence(t testing.TB, d pipeline.Detection) {
	t.Helper()
	require.NotEmpty(t, d.Evidence)
	kinds := map[string]int{}
	for _, ev := range d.Evidence {
		kinds[ev.Kind]++
		b, info := e.read(t, ev.Bucket, ev.Key)
		sum := sha256.Sum256(b)
		require.Equal(t, hex.EncodeToString(sum[:]), ev.SHA256, "sha256 of %s", ev.Key)
		require.Equal(t, ev.SHA256, info.Metadata["sha256"], "sha256 metadata of %s", ev.Key)
		require.Equal(t, d.PassageID, info.Metadata["passage-id"])
		require.Equal(t, ev.Kind, info.Metadata["kind"])
		require.Equal(t, int64(len(b)), ev.Size)
		// Evidence is filed under the passage's capture day (UTC), whatever day the test runs.
		require.True(t, strings.HasPrefix(ev.Key, d.CapturedAt.UTC().Format("2006/01/02")+"/"), "%s (captured %s)", ev.Key, d.CapturedAt)
	}
	require.Equal(t, len(d.Frames), kinds[pipeline.EvidenceOriginal], "one original per frame")
	require.Equal(t, 1, kinds[pipeline.EvidenceAnnotated])
}

func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
