package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func put(t testing.TB, st objstore.Store, key string, data []byte, md map[string]string) objstore.ObjectInfo {
	t.Helper()
	info, err := st.Put(context.Background(), pipeline.BucketFrames, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{ContentType: "image/jpeg", Metadata: md})
	require.NoError(t, err)
	return info
}

func ref(key, source string) ObjectRef {
	return ObjectRef{Bucket: pipeline.BucketFrames, Keys: []string{key}, Source: source}
}

func TestProcessBuildsFramesFromEveryMetadataSource(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	cfg := testConfig("")
	svc, _, _ := startService(t, ns, st, cfg, t.TempDir())
	ctx := context.Background()
	img := testJPEG(t)

	// 1. user metadata (wins over the sidecar next to it)
	put(t, st, "up/a.json", []byte(`{"camera":"cam2","view":"rear","lane":"9"}`), nil)
	put(t, st, "up/a.jpg", img, map[string]string{"camera": "cam1", "captured_at": "2026-11-27T08:15:30.5+01:00",
		"view": "overhead", "passage-id": "P1", "Lane": "2"})
	// 1b. user metadata without a capture time: the sidecar fills the gaps, user fields win
	put(t, st, "up/c.json", []byte(`{"camera":"cam2","lane":9,"captured_at":"2026-11-27T06:00:00Z","passage":"Q"}`), nil)
	put(t, st, "up/c.jpg", img, map[string]string{"camera": "cam1", "lane": "2"})
	// 2. sidecar only
	put(t, st, "side/b.json", []byte(`{"camera_id":"cam2","captured_at":"2026-11-27T07:15:31Z","lane":3,"passage_id":"P1"}`), nil)
	put(t, st, "side/b.jpg", img, nil)
	// 3. key template only, capture time from {ts}, zone from the camera registry
	put(t, st, "cam3/20261127T081530.250_p7_rear.jpg", img, nil)
	// 4. key template with a date only: capture time is the upload time, and says so
	put(t, st, "cam1/2026/11/27/p8/front.jpg", img, nil)

	for _, k := range []string{"up/a.jpg", "up/c.jpg", "side/b.jpg", "cam3/20261127T081530.250_p7_rear.jpg", "cam1/2026/11/27/p8/front.jpg"} {
		out, err := svc.process(ctx, ref(k, pipeline.SourceEvent))
		require.NoError(t, err)
		require.Equal(t, OutcomePublished, out, k)
	}
	frames := allFrames(t, ns.JS)
	require.Len(t, frames, 5)
	byKey := map[string]pipeline.Frame{}
	for _, f := range frames {
		byKey[f.Key] = f
	}

	a := byKey["up/a.jpg"]
	assert.Equal(t, "cam1", a.Camera)
	assert.Equal(t, "2026-11-27T08:15:30.5+01:00", a.CapturedAt.Format(time.RFC3339Nano))
	assert.Equal(t, pipeline.ViewOverhead, a.View)
	assert.Equal(t, "2", a.Lane, "user metadata wins over the sidecar")
	assert.Equal(t, "e40-km12", a.Site)
	assert.Equal(t, "e40-km12-P1", a.PassageID)
	require.NotNil(t, a.Location)
	assert.Equal(t, pipeline.Location{Road: "E40", KmPoint: 12.4, Direction: "Brussels", Municipality: "Leuven", Country: "BE", Lat: 50.88, Lon: 4.70}, *a.Location)
	assert.Equal(t, "left", a.DriverSide)
	assert.Equal(t, 120, a.SpeedLimitKMH)
	assert.Equal(t, "jpeg", a.Format)
	assert.Equal(t, 64, a.Width)
	assert.Equal(t, 48, a.Height)
	assert.Equal(t, pipeline.SourceEvent, a.Source)
	assert.Equal(t, pipeline.FrameID("frames", "up/a.jpg", a.ETag), a.ID)
	assert.JSONEq(t, `"metadata"`, string(a.Extra["captured_at_source"]))

	c1 := byKey["up/c.jpg"]
	assert.Equal(t, "cam1", c1.Camera, "user metadata wins over the sidecar")
	assert.Equal(t, "2", c1.Lane)
	assert.Equal(t, "e40-km12-Q", c1.PassageID, "the sidecar fills what user metadata lacks")
	assert.True(t, c1.CapturedAt.Equal(time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)))
	assert.JSONEq(t, `"sidecar"`, string(c1.Extra["captured_at_source"]))

	b := byKey["side/b.jpg"]
	assert.Equal(t, "cam2", b.Camera)
	assert.Equal(t, "3", b.Lane)
	assert.Equal(t, pipeline.ViewRear, b.View, "camera's default view")
	assert.Equal(t, a.PassageID, b.PassageID, "same site and passage id: one passage across cameras")
	assert.True(t, b.CapturedAt.Equal(time.Date(2026, 11, 27, 7, 15, 31, 0, time.UTC)))
	assert.JSONEq(t, `"sidecar"`, string(b.Extra["captured_at_source"]))

	c := byKey["cam3/20261127T081530.250_p7_rear.jpg"]
	assert.Equal(t, "cam3", c.Camera)
	assert.Equal(t, "2026-11-27T08:15:30.25+01:00", c.CapturedAt.Format(time.RFC3339Nano), "zoneless key time in the camera's zone")
	assert.Equal(t, pipeline.ViewRear, c.View)
	assert.Equal(t, "a12-km3-p7", c.PassageID)
	assert.Equal(t, "right", c.DriverSide)
	assert.Equal(t, 90, c.SpeedLimitKMH)

	d := byKey["cam1/2026/11/27/p8/front.jpg"]
	assert.JSONEq(t, `"upload_time"`, string(d.Extra["captured_at_source"]))
	up, err := st.Stat(ctx, pipeline.BucketFrames, d.Key)
	require.NoError(t, err)
	assert.True(t, d.CapturedAt.Equal(up.LastModified), "capture time %v is the upload time %v", d.CapturedAt, up.LastModified)
	// In the camera's zone: Brussels' offset at the upload instant, not at the moment this
	// line runs (the two differ when a DST change falls in between).
	bxl, err := time.LoadLocation("Europe/Brussels")
	require.NoError(t, err)
	_, want := up.LastModified.In(bxl).Zone()
	_, off := d.CapturedAt.Zone()
	assert.Equal(t, want, off, "upload time shown in the camera's zone")

	// Announcing them again changes nothing.
	for _, k := range []string{"up/a.jpg", "side/b.jpg"} {
		out, err := svc.process(ctx, ref(k, pipeline.SourceListing))
		require.NoError(t, err)
		assert.Equal(t, OutcomeDuplicate, out)
	}
	assert.Len(t, allFrames(t, ns.JS), 5)
}

func TestPassageWindowLinksViewsWithoutPassageID(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	svc, _, _ := startService(t, ns, st, testConfig(""), t.TempDir())
	img := testJPEG(t)
	put(t, st, "x/1.jpg", img, map[string]string{"camera": "cam1", "captured-at": "2026-11-27T08:00:00.000+01:00", "view": "front"})
	put(t, st, "x/2.jpg", img, map[string]string{"camera": "cam1", "captured-at": "2026-11-27T08:00:00.700+01:00", "view": "rear"})
	put(t, st, "x/3.jpg", img, map[string]string{"camera": "cam1", "captured-at": "2026-11-27T08:00:09+01:00", "view": "front"})
	for _, k := range []string{"x/1.jpg", "x/2.jpg", "x/3.jpg"} {
		_, err := svc.process(context.Background(), ref(k, pipeline.SourceEvent))
		require.NoError(t, err)
	}
	p := map[string]string{}
	for _, f := range allFrames(t, ns.JS) {
		p[f.Key] = f.PassageID
	}
	assert.Equal(t, p["x/1.jpg"], p["x/2.jpg"])
	assert.NotEqual(t, p["x/1.jpg"], p["x/3.jpg"])
}

// The seen KV keeps an object from becoming a second Frame after the stream's Nats-Msg-Id
// window has passed (a replayed event, a listing after a long outage).
func TestSeenKVDeduplicatesBeyondTheStreamWindow(t *testing.T) {
	ns := natstest.Start(t, func(l *natsx.Limits) { l.FramesDedup = 200 * time.Millisecond })
	st := newLocalStore(t)
	svc, reg, _ := startService(t, ns, st, testConfig(""), t.TempDir())
	_ = reg
	ctx := context.Background()
	info := put(t, st, "cam1/2026/11/27/p1/front.jpg", testJPEG(t), nil)
	out, err := svc.process(ctx, ref(info.Key, pipeline.SourceEvent))
	require.NoError(t, err)
	require.Equal(t, OutcomePublished, out)
	id := pipeline.FrameID("frames", info.Key, NormalizeETag(info.ETag))

	// Wait until the stream's window no longer knows the id: a probe publish with it on a
	// probe subject stops being reported as a duplicate.
	waitFor(t, 10*time.Second, "FRAMES dedup window to expire", func() bool {
		ack, err := ns.JS.Publish(ctx, "frames.zz-probe", []byte("{}"), jetstream.WithMsgID(id))
		return err == nil && !ack.Duplicate
	})
	svc.recent.reset() // a restarted process has no memory of its own
	out, err = svc.process(ctx, ref(info.Key, pipeline.SourceListing))
	require.NoError(t, err)
	assert.Equal(t, OutcomeDuplicate, out, "the seen KV recognises the object")
	n := 0
	for _, f := range allFrames(t, ns.JS) {
		if f.Key == info.Key {
			n++
		}
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, 1.0, counter(svc.metrics.duplicates))
}

// FRAMES at its limit: ingest waits and retries, reports it in Ready and the metrics, and
// publishes everything once the detector drains the queue. Nothing is dropped.
func TestBackpressureWhenFramesIsFull(t *testing.T) {
	ns := natstest.Start(t, func(l *natsx.Limits) { l.FramesMaxMsgs = 5 })
	st := newLocalStore(t)
	cfg := testConfig("")
	cfg.Workers = 3
	svc, _, _ := startService(t, ns, st, cfg, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 20
	var wg sync.WaitGroup
	var published atomic.Int32
	for i := range n {
		key := fmt.Sprintf("cam1/2026/11/27/p%02d/front.jpg", i)
		put(t, st, key, testJPEG(t), nil)
		wg.Go(func() {
			out, err := svc.process(ctx, ref(key, pipeline.SourceListing))
			if err == nil && out == OutcomePublished {
				published.Add(1)
			}
		})
	}
	waitFor(t, 20*time.Second, "ingest to report FRAMES full", func() bool {
		err := svc.Ready()
		return err != nil && bytes.Contains([]byte(err.Error()), []byte("FRAMES stream full"))
	})
	assert.Equal(t, uint64(5), streamMsgs(t, ns.JS))
	assert.LessOrEqual(t, counter(svc.metrics.inFlight), float64(cfg.Workers), "in-flight is bounded")
	assert.Positive(t, counter(svc.metrics.publishRetries.WithLabelValues("full")))

	// The detector drains the queue.
	cons, err := ns.JS.CreateOrUpdateConsumer(ctx, pipeline.StreamFrames, jetstream.ConsumerConfig{Durable: "detect-test", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		batch, err := cons.Fetch(5, jetstream.FetchMaxWait(200*time.Millisecond))
		require.NoError(t, err)
		for m := range batch.Messages() {
			var f pipeline.Frame
			require.NoError(t, json.Unmarshal(m.Data(), &f))
			assert.False(t, seen[f.ID], "frame %s delivered twice", f.ID)
			seen[f.ID] = true
			require.NoError(t, m.Ack())
		}
	}
	wg.Wait()
	assert.Len(t, seen, n, "every frame arrived; none dropped")
	assert.Equal(t, int32(n), published.Load())
	waitFor(t, 5*time.Second, "ready again", func() bool { return svc.Ready() == nil })
}

// flakyStore fails chosen operations of a real store for a while, as a store outage does.
type flakyStore struct {
	objstore.Store
	failStat atomic.Int32 // fail this many Stats
	stats    atomic.Int32
}

func (f *flakyStore) Stat(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	f.stats.Add(1)
	if f.failStat.Load() > 0 {
		f.failStat.Add(-1)
		return objstore.ObjectInfo{}, errors.New("dial tcp 10.0.0.9:9000: connection refused")
	}
	return f.Store.Stat(ctx, bucket, key)
}

func TestStoreOutageIsRetriedAndShownInReady(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := &flakyStore{Store: newLocalStore(t)}
	cfg := testConfig("")
	cfg.RetryInitial, cfg.RetryMax = 20*time.Millisecond, 40*time.Millisecond
	svc, _, _ := startService(t, ns, st, cfg, t.TempDir())
	put(t, st, "cam1/2026/11/27/p1/front.jpg", testJPEG(t), nil)
	st.failStat.Store(1 << 20)
	done := make(chan Outcome, 1)
	go func() {
		out, _ := svc.process(context.Background(), ref("cam1/2026/11/27/p1/front.jpg", pipeline.SourceEvent))
		done <- out
	}()
	waitFor(t, 10*time.Second, "Ready to report the store outage", func() bool {
		err := svc.Ready()
		return err != nil && bytes.Contains([]byte(err.Error()), []byte("stat failing"))
	})
	waitFor(t, 10*time.Second, "a few retries", func() bool { return st.stats.Load() >= 3 })
	st.failStat.Store(0)
	select {
	case out := <-done:
		assert.Equal(t, OutcomePublished, out)
	case <-time.After(10 * time.Second):
		t.Fatal("not published after the store came back")
	}
	assert.NoError(t, svc.Ready())
	assert.GreaterOrEqual(t, counter(svc.metrics.retries.WithLabelValues("stat")), 2.0)
	assert.Equal(t, uint64(1), streamMsgs(t, ns.JS))
}

// A full listing each period finds a late upload whose key sorts before everything seen,
// and never re-publishes what is done; an interrupted pass resumes from its checkpoint.
func TestListingFindsLateUploadsBeforeTheCheckpoint(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	cfg := testConfig("")
	cfg.ListPageSize = 3
	svc, _, _ := startService(t, ns, st, cfg, t.TempDir())
	ctx := context.Background()
	for i := range 7 {
		put(t, st, fmt.Sprintf("cam1/2026/11/27/m%d/front.jpg", i), testJPEG(t), nil)
	}
	put(t, st, "cam1/2026/11/27/m0/front.json", []byte(`{"lane":1}`), nil)
	q, err := svc.ListPass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, q, "the sidecar is not a frame")
	waitFor(t, 10*time.Second, "7 frames", func() bool { return streamMsgs(t, ns.JS) == 7 })
	assert.Positive(t, counter(svc.metrics.lastReconcile))

	put(t, st, "cam1/2026/11/27/a-late/front.jpg", testJPEG(t), nil) // sorts before m0
	q, err = svc.ListPass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, q)
	waitFor(t, 10*time.Second, "8 frames", func() bool { return streamMsgs(t, ns.JS) == 8 })

	// A pass interrupted after its first page resumes from the checkpoint...
	kv, err := ns.JS.KeyValue(ctx, pipeline.KVSeen)
	require.NoError(t, err)
	ck, _ := json.Marshal(listCheckpoint{StartAfter: "cam1/2026/11/27/m3/front.jpg", PassStarted: time.Now()})
	_, err = kv.Put(ctx, checkpointKey("frames"), ck)
	require.NoError(t, err)
	svc.recent.reset()
	put(t, st, "cam1/2026/11/27/m9/front.jpg", testJPEG(t), nil)
	q, err = svc.ListPass(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, q, "resumed pass: only the new object after the checkpoint is queued, seen ones are skipped")
	e, err := kv.Get(ctx, checkpointKey("frames"))
	require.NoError(t, err)
	var got listCheckpoint
	require.NoError(t, json.Unmarshal(e.Value(), &got))
	assert.Empty(t, got.StartAfter, "a finished pass starts the next from the beginning")
	assert.False(t, got.CompletedAt.IsZero())
	waitFor(t, 10*time.Second, "9 frames", func() bool { return streamMsgs(t, ns.JS) == 9 })
	q, err = svc.ListPass(ctx)
	require.NoError(t, err)
	assert.Zero(t, q)
	assert.Len(t, allFrames(t, ns.JS), 9)
}

// An image whose camera is only in a sidecar that has not arrived yet waits for it (the
// sidecar's own announcement brings the image back), and is quarantined only after the grace.
func TestImageWaitsForItsSidecar(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	cfg := testConfig("")
	cfg.MetadataGrace = time.Hour
	svc, _, _ := startService(t, ns, st, cfg, t.TempDir())
	ctx := context.Background()
	put(t, st, "up/late.jpg", testJPEG(t), nil)
	out, err := svc.process(ctx, ref("up/late.jpg", pipeline.SourceEvent))
	require.NoError(t, err)
	assert.Equal(t, OutcomeDeferred, out)
	assert.Zero(t, streamMsgs(t, ns.JS))

	put(t, st, "up/late.json", []byte(`{"camera":"cam1","view":"rear"}`), nil)
	svc.announce(ctx, ObjectRef{Bucket: "frames", Keys: []string{"up/late.json"}, Source: pipeline.SourceEvent})
	waitFor(t, 10*time.Second, "the image to be published", func() bool { return streamMsgs(t, ns.JS) == 1 })

	// Past the grace (a second process configured without one), the orphan is quarantined.
	put(t, st, "up/orphan.jpg", testJPEG(t), nil)
	cfg.MetadataGrace = 0
	svc2, _, _ := startService(t, ns, st, cfg, t.TempDir())
	out, err = svc2.process(ctx, ref("up/orphan.jpg", pipeline.SourceListing))
	require.NoError(t, err)
	assert.Equal(t, OutcomeQuarantined, out)
	q, err := st.Stat(ctx, pipeline.BucketQuarantine, "up/orphan.jpg")
	require.NoError(t, err)
	assert.Equal(t, ReasonUnknownCamera, q.Metadata["reason"])
}

const cfgWorkers = 8

func TestUnreadableEventGoesToTheDLQAndEventsKeepFlowing(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	svc, _, _ := startService(t, ns, st, testConfig("local.events"), t.TempDir())
	require.NoError(t, ns.NC.Publish("local.events", []byte(`{"Records":[{"eventName":`)))
	// A key the store refuses (NUL once decoded) must not wedge a worker.
	for range cfgWorkers {
		require.NoError(t, ns.NC.Publish("local.events", []byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"frames"},"object":{"key":"a%00b/"}}}]}`)))
	}
	info := put(t, st, "cam1/2026/11/27/p1/front.jpg", testJPEG(t), nil)
	ev := fmt.Sprintf(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"frames"},"object":{"key":%q,"eTag":%q}}},`+
		`{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"other-bucket"},"object":{"key":"x.jpg"}}}]}`, info.Key, info.ETag)
	require.NoError(t, ns.NC.Publish("local.events", []byte(ev)))
	waitFor(t, 10*time.Second, "the good event's frame", func() bool { return streamMsgs(t, ns.JS) == 1 })
	assert.Equal(t, 1.0, counter(svc.metrics.badEvents))

	dlq, err := ns.JS.Stream(context.Background(), pipeline.StreamDLQ)
	require.NoError(t, err)
	m, err := dlq.GetLastMsgForSubject(context.Background(), pipeline.DLQSubject("ingest"))
	require.NoError(t, err)
	e, err := pipeline.Decode[pipeline.DLQEntry](m.Data)
	require.NoError(t, err)
	assert.Equal(t, "ingest", e.Stage)
	assert.Contains(t, e.Reason, "bad S3 event")
	assert.Equal(t, []byte(`{"Records":[{"eventName":`), e.RawData)
}

// overwritingStore replaces the object with new content just before the first Get, as a
// camera re-uploading the same key would.
type overwritingStore struct {
	objstore.Store
	once sync.Once
	data []byte
}

func (o *overwritingStore) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if strings.HasSuffix(key, ".jpg") {
		o.once.Do(func() {
			_, _ = o.Store.Put(ctx, bucket, key, bytes.NewReader(o.data), int64(len(o.data)), objstore.PutOptions{})
		})
	}
	return o.Store.Get(ctx, bucket, key)
}

func TestOverwrittenObjectIsPublishedOnceUnderItsNewETag(t *testing.T) {
	ns := natstest.Start(t, nil)
	v2 := encodePNG(32, 32)
	st := &overwritingStore{Store: newLocalStore(t), data: v2}
	svc, _, _ := startService(t, ns, st, testConfig(""), t.TempDir())
	ctx := context.Background()
	put(t, st, "cam1/2026/11/27/p1/front.jpg", testJPEG(t), nil)
	out, err := svc.process(ctx, ref("cam1/2026/11/27/p1/front.jpg", pipeline.SourceEvent))
	require.NoError(t, err)
	assert.Equal(t, OutcomeGone, out, "the announced version no longer exists")
	out, err = svc.process(ctx, ref("cam1/2026/11/27/p1/front.jpg", pipeline.SourceEvent))
	require.NoError(t, err)
	assert.Equal(t, OutcomePublished, out)
	f := allFrames(t, ns.JS)
	require.Len(t, f, 1)
	assert.Equal(t, "png", f[0].Format, "the frame is the new content, under its own ETag")
	cur, err := st.Stat(ctx, "frames", f[0].Key)
	require.NoError(t, err)
	assert.Equal(t, NormalizeETag(cur.ETag), f[0].ETag)
}
