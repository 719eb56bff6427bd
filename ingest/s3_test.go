package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/objstore/objstoretest"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const eventSubject = "test.s3.events"

// s3Env is a real NATS with the wire provisioned and a real versitygw that sends its S3
// event notifications to it.
type s3Env struct {
	ns    *natstest.Server
	cfg   objstore.S3Config
	store *objstore.S3
}

func newS3Env(t *testing.T, events bool) *s3Env {
	t.Helper()
	ns := natstest.Start(t, nil)
	opts := objstoretest.VersityOptions{}
	if events {
		opts = objstoretest.VersityOptions{EventNATSURL: ns.ClientURL(), EventNATSTopic: eventSubject}
	}
	cfg := objstoretest.StartVersity(t, opts)
	st, err := objstore.NewS3(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, st.EnsureBucket(ctx, pipeline.BucketFrames))
	require.NoError(t, st.EnsureBucket(ctx, pipeline.BucketQuarantine))
	return &s3Env{ns: ns, cfg: cfg, store: st}
}

// upload is one camera upload and the frame metadata it must produce.
type upload struct {
	key      string
	md       map[string]string
	sidecar  []byte // uploaded first, next to the image
	camera   string
	captured time.Time
	view     string
	passage  string // expected PassageID
	lane     string
}

var cet = time.FixedZone("CET", 3600)

// mixedUploads makes n uploads whose metadata comes, in turn, from user metadata (keys with
// spaces, '+', '%' and non-ASCII), a sidecar, and the key template.
func mixedUploads(from, n int) []upload {
	base := time.Date(2026, 11, 27, 8, 0, 0, 0, cet)
	out := make([]upload, 0, n)
	for i := from; i < from+n; i++ {
		at := base.Add(time.Duration(i) * time.Second)
		switch i % 3 {
		case 0:
			view := []string{"front", "rear"}[i%2]
			out = append(out, upload{
				key: fmt.Sprintf("uploads/cam 1+%%é/img %04d.jpg", i),
				md: map[string]string{"camera": "cam1", "captured-at": at.Format(time.RFC3339Nano),
					"view": view, "passage-id": fmt.Sprintf("P%d", i), "lane": "1"},
				camera: "cam1", captured: at, view: view, passage: fmt.Sprintf("e40-km12-P%d", i), lane: "1",
			})
		case 1:
			out = append(out, upload{
				key: fmt.Sprintf("side/%04d.jpg", i),
				sidecar: fmt.Appendf(nil, `{"camera":"cam2","captured_at":%q,"lane":%d,"passage_id":"S%d"}`,
					at.UTC().Format(time.RFC3339Nano), i%4, i),
				camera: "cam2", captured: at, view: "rear", passage: fmt.Sprintf("e40-km12-S%d", i), lane: fmt.Sprint(i % 4),
			})
		default:
			ams := at.In(mustZone("Europe/Amsterdam"))
			out = append(out, upload{
				key:    fmt.Sprintf("cam3/%s_K%d_overhead.jpg", ams.Format("20060102T150405.000"), i),
				camera: "cam3", captured: at, view: "overhead", passage: fmt.Sprintf("a12-km3-K%d", i),
			})
		}
	}
	return out
}

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// uploadAll uploads with `clients` concurrent S3 clients, each its own connection pool.
func (e *s3Env) uploadAll(t *testing.T, ups []upload, clients int, img []byte) {
	t.Helper()
	ch := make(chan upload)
	var wg sync.WaitGroup
	for range clients {
		cl, err := objstore.NewS3(e.cfg)
		require.NoError(t, err)
		wg.Go(func() {
			ctx := context.Background()
			for u := range ch {
				if u.sidecar != nil {
					sk := sidecarKey(u.key, ".json")
					if _, err := cl.Put(ctx, pipeline.BucketFrames, sk, bytes.NewReader(u.sidecar), int64(len(u.sidecar)), objstore.PutOptions{ContentType: "application/json"}); err != nil {
						t.Errorf("put %s: %v", sk, err)
					}
				}
				if _, err := cl.Put(ctx, pipeline.BucketFrames, u.key, bytes.NewReader(img), int64(len(img)), objstore.PutOptions{ContentType: "image/jpeg", Metadata: u.md}); err != nil {
					t.Errorf("put %s: %v", u.key, err)
				}
			}
		})
	}
	for _, u := range ups {
		ch <- u
	}
	close(ch)
	wg.Wait()
}

// checkFrames asserts one Frame per upload, each with the metadata the upload implies.
func checkFrames(t *testing.T, frames []pipeline.Frame, ups []upload) {
	t.Helper()
	byKey := map[string]pipeline.Frame{}
	ids := map[string]bool{}
	for _, f := range frames {
		assert.False(t, ids[f.ID], "duplicate frame %s", f.ID)
		ids[f.ID] = true
		byKey[f.Key] = f
	}
	require.Len(t, frames, len(ups))
	for _, u := range ups {
		f, ok := byKey[u.key]
		if !assert.True(t, ok, "no frame for %q", u.key) {
			continue
		}
		assert.Equal(t, u.camera, f.Camera, u.key)
		assert.True(t, u.captured.Equal(f.CapturedAt), "%s: captured %v, want %v", u.key, f.CapturedAt, u.captured)
		assert.Equal(t, u.view, f.View, u.key)
		assert.Equal(t, u.passage, f.PassageID, u.key)
		assert.Equal(t, u.lane, f.Lane, u.key)
		assert.Equal(t, 64, f.Width, u.key)
		assert.Equal(t, "jpeg", f.Format)
		assert.NotEmpty(t, f.ETag)
		assert.Equal(t, 120-30*boolInt(u.camera == "cam3"), f.SpeedLimitKMH)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func s3Config() Config {
	c := testConfig(eventSubject)
	c.Workers = 8
	return c
}

// Done means #1: 500 frames uploaded concurrently by 8 clients with notifications on give
// exactly 500 Frames with the right metadata (events only: the listing is off).
func TestS3ConcurrentUploadsWithEvents(t *testing.T) {
	e := newS3Env(t, true)
	svc, _, _ := startService(t, e.ns, e.store, s3Config(), t.TempDir())
	ups := mixedUploads(0, 500)
	start := time.Now()
	e.uploadAll(t, ups, 8, testJPEG(t))
	t.Logf("500 uploads in %v", time.Since(start))
	waitFor(t, 60*time.Second, "500 frames", func() bool { return streamMsgs(t, e.ns.JS) >= 500 })
	t.Logf("500 frames after %v", time.Since(start))
	checkFrames(t, allFrames(t, e.ns.JS), ups)
	assert.Equal(t, 500.0, counter(svc.metrics.frames))
	assert.Zero(t, counter(svc.metrics.rejected))
}

// Done means #2: ingest stops after about half of 500 concurrent uploads, 200 more arrive
// while it is down; on restart the reconciliation listing brings the total to exactly 700.
func TestS3RestartReconcilesUploadsMadeWhileDown(t *testing.T) {
	e := newS3Env(t, true)
	cfg := s3Config()
	cfg.ListInterval = time.Hour // one pass at start, then only when the test asks
	svc1, _, stop1 := startService(t, e.ns, e.store, cfg, t.TempDir())
	first := mixedUploads(0, 500)
	img := testJPEG(t)
	uploaded := make(chan struct{})
	go func() { e.uploadAll(t, first, 8, img); close(uploaded) }()
	waitFor(t, 60*time.Second, "about half the frames", func() bool { return streamMsgs(t, e.ns.JS) >= 250 })
	require.NoError(t, stop1())
	<-uploaded
	before := streamMsgs(t, e.ns.JS)
	t.Logf("ingest stopped with %d of 500 frames published", before)
	require.Less(t, before, uint64(500), "the stop must leave uploads for the reconciliation")
	second := mixedUploads(500, 200)
	e.uploadAll(t, second, 8, img)
	assert.Equal(t, before, streamMsgs(t, e.ns.JS), "nothing is ingested while ingest is down")

	svc2, _, _ := startService(t, e.ns, e.store, cfg, t.TempDir())
	waitFor(t, 60*time.Second, "700 frames", func() bool { return streamMsgs(t, e.ns.JS) >= 700 })
	q, err := svc2.ListPass(context.Background())
	require.NoError(t, err)
	assert.Zero(t, q, "a further pass re-publishes nothing")
	checkFrames(t, allFrames(t, e.ns.JS), append(first, second...))
	// A frame whose ack was cut off by the stop is re-announced and caught by the stream's
	// Nats-Msg-Id window: counted as a duplicate, never published twice.
	published := counter(svc1.metrics.frames) + counter(svc2.metrics.frames)
	assert.LessOrEqual(t, published, 700.0)
	assert.GreaterOrEqual(t, published, 700.0-float64(cfg.Workers))
	assert.Positive(t, counter(svc2.metrics.frames.WithLabelValues("cam1", pipeline.SourceListing))+
		counter(svc2.metrics.frames.WithLabelValues("cam2", pipeline.SourceListing))+
		counter(svc2.metrics.frames.WithLabelValues("cam3", pipeline.SourceListing)), "the listing found what the events missed")
}

// Done means #3: every notification delivered twice still gives exactly one Frame each.
func TestS3EveryEventDeliveredTwice(t *testing.T) {
	e := newS3Env(t, true)
	// A second connection re-publishes every S3 event it sees, once.
	var republished atomic.Int32
	_, err := e.ns.NC.Subscribe(eventSubject, func(m *nats.Msg) {
		if m.Header.Get("X-Test-Copy") != "" || !bytes.Contains(m.Data, []byte("ObjectCreated")) {
			return
		}
		cp := nats.NewMsg(eventSubject)
		cp.Data = m.Data
		cp.Header.Set("X-Test-Copy", "1")
		if err := e.ns.NC.PublishMsg(cp); err == nil {
			republished.Add(1)
		}
	})
	require.NoError(t, err)
	require.NoError(t, e.ns.NC.Flush())
	svc, _, _ := startService(t, e.ns, e.store, s3Config(), t.TempDir())
	ups := make([]upload, 0, 60)
	for _, u := range mixedUploads(0, 180) {
		if u.sidecar == nil {
			ups = append(ups, u)
		}
	}
	ups = ups[:60]
	e.uploadAll(t, ups, 4, testJPEG(t))
	waitFor(t, 30*time.Second, "every event copied", func() bool { return republished.Load() >= 60 })
	waitFor(t, 30*time.Second, "both deliveries handled", func() bool {
		return counter(svc.metrics.frames)+counter(svc.metrics.duplicates) >= 120
	})
	checkFrames(t, allFrames(t, e.ns.JS), ups)
	assert.Equal(t, 60.0, counter(svc.metrics.frames))
	assert.Equal(t, 60.0, counter(svc.metrics.duplicates), "the second delivery of each is a duplicate")
}

// countingHandler counts log records by message, to check "logged once".
type countingHandler struct {
	slog.Handler
	mu sync.Mutex
	n  map[string]int
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.n[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}

// Done means #4: corrupt, truncated, 0-byte, non-image, oversized and unknown-camera uploads
// end in quarantine with their reason, leave the frames bucket, are counted and logged once,
// and the worker keeps running.
func TestS3BadUploadsAreQuarantined(t *testing.T) {
	e := newS3Env(t, true)
	logs := &countingHandler{n: map[string]int{}}
	reg := newRegistry()
	svc, err := New(Deps{NC: e.ns.NC, JS: e.ns.JS, Store: e.store, Registry: reg, Log: slog.New(logs)}, s3Config())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 20*time.Second, "ready", func() bool { return svc.Ready() == nil })

	good := testJPEG(t)
	md := func(cam string) map[string]string {
		return map[string]string{"camera": cam, "captured-at": "2026-11-27T08:00:00+01:00"}
	}
	bad := []struct {
		key    string
		data   []byte
		md     map[string]string
		reason string
	}{
		{"bad/corrupt.jpg", jpegPatched(t, 9, 2), md("cam1"), ReasonCorrupt},
		{"bad/truncated.jpg", good[:len(good)*2/3], md("cam1"), ReasonTruncated},
		{"bad/empty.jpg", nil, md("cam1"), ReasonEmpty},
		{"bad/notes.jpg", []byte("this is a text file, not a photo\n"), md("cam1"), ReasonNotImage},
		{"bad/huge.png", pngHeaderOnly(40000, 40000), md("cam1"), ReasonDimensions},
		{"bad/ghost.jpg", good, md("ghost"), ReasonUnknownCamera},
		{"bad/when.jpg", good, map[string]string{"camera": "cam1", "captured-at": "yesterday"}, ReasonBadMetadata},
	}
	for _, b := range bad {
		_, err := e.store.Put(ctx, pipeline.BucketFrames, b.key, bytes.NewReader(b.data), int64(len(b.data)), objstore.PutOptions{Metadata: b.md})
		require.NoError(t, err)
	}
	_, err = e.store.Put(ctx, pipeline.BucketFrames, "good/after.jpg", bytes.NewReader(good), int64(len(good)), objstore.PutOptions{Metadata: md("cam1")})
	require.NoError(t, err)

	waitFor(t, 30*time.Second, "all bad uploads quarantined", func() bool { return counter(svc.metrics.rejected) >= float64(len(bad)) })
	waitFor(t, 30*time.Second, "the good upload published", func() bool { return streamMsgs(t, e.ns.JS) == 1 })
	for _, b := range bad {
		info, err := e.store.Stat(ctx, pipeline.BucketQuarantine, b.key)
		require.NoError(t, err, b.key)
		assert.Equal(t, b.reason, info.Metadata["reason"], b.key)
		assert.NotEmpty(t, info.Metadata["detail"], b.key)
		assert.Equal(t, int64(len(b.data)), info.Size, b.key)
		_, err = e.store.Stat(ctx, pipeline.BucketFrames, b.key)
		assert.ErrorIs(t, err, objstore.ErrNotFound, "%s removed from frames", b.key)
		assert.Equal(t, 1.0, counter(svc.metrics.rejected.WithLabelValues(b.reason)), b.reason)
	}
	assert.Equal(t, len(bad), logs.count("upload quarantined"), "each rejection logged once")
	f := allFrames(t, e.ns.JS)
	require.Len(t, f, 1)
	assert.Equal(t, "good/after.jpg", f[0].Key)

	// Announcing a quarantined object again (a replayed event) does nothing.
	for _, b := range bad {
		require.NoError(t, svc.Process(ctx, ObjectRef{Bucket: pipeline.BucketFrames, Keys: []string{b.key}, Source: pipeline.SourceEvent}))
	}
	assert.Equal(t, len(bad), logs.count("upload quarantined"))
}

// Keys with '+', '%', spaces and non-ASCII resolve both from events that carry the raw key
// (versitygw) and from events that URL-encode it (AWS, MinIO).
func TestS3AWSEncodedEventKeysResolve(t *testing.T) {
	e := newS3Env(t, false) // the test sends AWS-style events itself
	svc, _, _ := startService(t, e.ns, e.store, s3Config(), t.TempDir())
	keys := []string{"enc/a+b.jpg", "enc/c d.jpg", "enc/100%.jpg", "enc/%41.jpg", "enc/é ü/ß+€.jpg"}
	img := testJPEG(t)
	for _, k := range keys {
		info, err := e.store.Put(context.Background(), pipeline.BucketFrames, k, bytes.NewReader(img), int64(len(img)),
			objstore.PutOptions{Metadata: map[string]string{"camera": "cam1"}})
		require.NoError(t, err)
		// AWS's encoding: form-encoding (space as '+') of the key.
		ev := fmt.Sprintf(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"frames"},"object":{"key":%q,"eTag":%q}}}]}`,
			url.QueryEscape(k), info.ETag)
		require.NoError(t, e.ns.NC.Publish(eventSubject, []byte(ev)))
	}
	waitFor(t, 20*time.Second, "a frame per key", func() bool { return streamMsgs(t, e.ns.JS) >= uint64(len(keys)) })
	got := map[string]bool{}
	for _, f := range allFrames(t, e.ns.JS) {
		got[f.Key] = true
	}
	for _, k := range keys {
		assert.True(t, got[k], "frame for %q", k)
	}
	assert.Len(t, got, len(keys))
	assert.True(t, strings.Contains(keys[4], "€"))
	_ = svc
}
