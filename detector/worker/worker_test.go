package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaultsValidAndErrorsNameFields(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	require.GreaterOrEqual(t, DefaultConcurrency(), 1)

	c := DefaultConfig()
	c.BatchSize = 0
	c.AckWait = 10 * time.Millisecond
	c.MaxDeliver = 0
	c.PassageWait = -time.Second
	c.ExpectedViews = map[string]int{"camX": 0}
	c.KeepUnflagged = -1
	err := c.Validate()
	require.Error(t, err)
	for _, f := range []string{"detect.batch_size", "detect.ack_wait", "detect.max_deliver", "detect.passage_wait",
		"detect.expected_views.camX", "detect.keep_unflagged"} {
		assert.Contains(t, err.Error(), f)
	}

	c = DefaultConfig()
	c.ProgressInterval = c.AckWait
	assert.ErrorContains(t, c.Validate(), "detect.progress_interval")

	_, err = New(Deps{}, c)
	assert.ErrorContains(t, err, "detect.progress_interval", "New validates")
}

func TestExpectedViewsFromFrameCameraOrDefault(t *testing.T) {
	c := testConfig()
	c.DefaultExpectedViews = 3
	assert.Equal(t, 2, c.expectedViews(pipeline.Frame{Camera: "cam2"}))
	assert.Equal(t, 3, c.expectedViews(pipeline.Frame{Camera: "other"}))
	f := pipeline.Frame{Camera: "cam2", Extra: pipeline.Extra{"passage_views": json.RawMessage(`4`)}}
	assert.Equal(t, 4, c.expectedViews(f), "the frame's own count wins")
}

// Every frame ends as a Detection with verified evidence or deleted; nothing is left in
// FRAMES or in the frames bucket. Run on the local store and on a real S3 (versitygw).
func TestFramesEndAsDetectionOrDeleted(t *testing.T) {
	for _, tc := range []struct {
		name string
		s3   bool
	}{{"local", false}, {"s3", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.s3)
			factory, an := newTestAnalyzerFactory()
			r := e.start(t, testConfig(), factory)

			flagged := map[string]int{} // passage -> views
			clean := map[string]bool{}
			for i, lbl := range []string{"flagged", "clean", "flagged", "clean", "clean", "flagged"} {
				p := "p" + string(rune('a'+i))
				e.putFrame(t, "cam1", p, pipeline.ViewFront, img(lbl, p))
				if lbl == "flagged" {
					flagged[p] = 1
				} else {
					clean[p] = true
				}
			}
			// Two-view passages: flagged from the overhead view only, and all clean.
			e.putFrame(t, "cam2", "m1", pipeline.ViewFront, img("clean", "m1f"))
			e.putFrame(t, "cam2", "m1", pipeline.ViewOverhead, img("flagged", "m1o"))
			flagged["m1"] = 2
			e.putFrame(t, "cam2", "m2", pipeline.ViewFront, img("clean", "m2f"))
			e.putFrame(t, "cam2", "m2", pipeline.ViewOverhead, img("clean", "m2o"))
			clean["m2"] = true

			waitFor(t, 30*time.Second, "all frames processed", func() bool {
				return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.objects(t, pipeline.BucketFrames)) == 0
			})
			dets := e.detections(t)
			require.Len(t, dets, len(flagged))
			for p, views := range flagged {
				require.Len(t, dets[p], 1, "passage %s published once", p)
				d := dets[p][0]
				assert.True(t, d.Flagged)
				assert.Equal(t, p, d.PassageID)
				assert.Len(t, d.Frames, views)
				assert.Equal(t, captured, d.CapturedAt.UTC())
				e.checkEvidence(t, d)
			}
			for p := range clean {
				assert.Empty(t, dets[p], "clean passage %s not published", p)
			}
			for _, vs := range an.views() {
				if len(vs) == 2 {
					assert.Equal(t, []string{pipeline.ViewFront, pipeline.ViewOverhead}, vs, "views analysed together, in order")
				}
			}
			assert.Len(t, an.views(), len(flagged)+len(clean), "one analysis per passage")
			assert.Empty(t, e.dlq(t))

			// m1's clean front view is evidence of its flagged passage too.
			assert.Equal(t, 5.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "flagged"}))
			assert.Equal(t, 5.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}))
			assert.Equal(t, 0.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "failed"}))
			assert.Equal(t, float64(len(flagged)+len(clean)),
				counter(t, r.reg, "offencecam_detector_stage_seconds", map[string]string{"stage": "scene"}))
			assert.Greater(t, counter(t, r.reg, "offencecam_detector_evidence_bytes_total", nil), 0.0)
			// A pull request is counted when it ends (full, or batch_wait later).
			waitFor(t, 5*time.Second, "batch sizes observed", func() bool {
				return counter(t, r.reg, "offencecam_detector_batch_size", nil) > 0
			})
			waitFor(t, 5*time.Second, "consumer gauges polled", func() bool {
				return counter(t, r.reg, "offencecam_detector_consumer_ack_pending", nil) == 0
			})
			require.NoError(t, r.stop())
		})
	}
}

// A view that arrives within passage_wait joins its passage even when the number of views
// is unknown; a passage missing a view goes after the wait with what it has.
func TestPassageWaitsBoundedForLateViews(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.ExpectedViews = map[string]int{"cam2": 2}
	cfg.PassageWait = time.Second
	e.start(t, cfg, factory)

	e.putFrame(t, "cam3", "u1", pipeline.ViewFront, img("clean", "a")) // camera with unknown view count
	e.putFrame(t, "cam3", "u1", pipeline.ViewRear, img("clean", "b"))
	e.putFrame(t, "cam2", "h1", pipeline.ViewFront, img("clean", "c")) // its second view never comes
	waitFor(t, 10*time.Second, "frames processed", func() bool { return e.streamCount(t, pipeline.StreamFrames) == 0 })
	vs := an.views()
	require.Len(t, vs, 2)
	assert.ElementsMatch(t, [][]string{{pipeline.ViewFront, pipeline.ViewRear}, {pipeline.ViewFront}}, vs)
}

// A frame whose object is replaced after ingest ends in the DLQ with a reason (its new
// version is a frame of its own and is left alone); a frame whose bytes the analyser cannot
// decode ends in the DLQ with its object quarantined; the worker keeps going.
func TestCorruptFrameGoesToDLQAndWorkerKeepsGoing(t *testing.T) {
	e := newEnv(t, true)
	factory, _ := newTestAnalyzerFactory()
	r := e.start(t, testConfig(), factory)

	// Replaced after ingest: the Frame names the first ETag.
	ctx := context.Background()
	key := "cam1/2026/11/27/r1/front.jpg"
	good := img("flagged", "r1")
	info, err := e.store.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(good), int64(len(good)), objstore.PutOptions{})
	require.NoError(t, err)
	corrupt := []byte("\xff\xd8\xff\xe0 garbage after ingest")
	_, err = e.store.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(corrupt), int64(len(corrupt)), objstore.PutOptions{})
	require.NoError(t, err)
	replaced := pipeline.Frame{V: 1, ID: pipeline.FrameID(pipeline.BucketFrames, key, info.ETag), Bucket: pipeline.BucketFrames,
		Key: key, ETag: info.ETag, Camera: "cam1", CapturedAt: captured, View: pipeline.ViewFront, PassageID: "r1"}
	e.publishFrame(t, replaced)

	// Corrupt bytes that ingest let through (same ETag): the analyser's decode error.
	bad := e.putFrame(t, "cam1", "c1", pipeline.ViewFront, []byte("not an image at all"))
	// And the worker keeps going.
	e.putFrame(t, "cam1", "g1", pipeline.ViewFront, img("flagged", "g1"))

	waitFor(t, 30*time.Second, "frames processed", func() bool {
		return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.dlq(t)) == 2 && len(e.detections(t)) == 1
	})
	byPassage := map[string]pipeline.DLQEntry{}
	for _, d := range e.dlq(t) {
		var f pipeline.Frame
		require.NoError(t, json.Unmarshal(d.Data, &f), "the DLQ entry carries the original Frame")
		byPassage[f.PassageID] = d
		assert.Equal(t, "detect", d.Stage)
		assert.Equal(t, pipeline.StreamFrames, d.Stream)
		assert.NotZero(t, d.Sequence)
	}
	assert.Contains(t, byPassage["r1"].Reason, "changed after ingest")
	assert.Contains(t, byPassage["c1"].Reason, "corrupt image")

	// The decode failure's object is in quarantine with its reason, gone from frames.
	var q map[string]string
	require.NoError(t, json.Unmarshal(byPassage["c1"].Extra["quarantine"], &q))
	_, qinfo := e.read(t, q["bucket"], q["key"])
	assert.Contains(t, qinfo.Metadata["reason"], "corrupt image")
	assert.Equal(t, bad.ID, qinfo.Metadata["frame-id"])
	_, err = e.store.Stat(ctx, pipeline.BucketFrames, bad.Key)
	assert.ErrorIs(t, err, objstore.ErrNotFound)
	// The replaced object is the new upload's, not the detector's to remove.
	_, err = e.store.Stat(ctx, pipeline.BucketFrames, key)
	assert.NoError(t, err)

	e.checkEvidence(t, e.detections(t)["g1"][0])
	assert.Equal(t, 2.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "failed"}))
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_dlq_total", map[string]string{"reason": "bad_image"}))
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_dlq_total", map[string]string{"reason": "changed"}))
}

// One bad view of a two-view passage goes to the DLQ; the other view is still analysed.
func TestBadViewDoesNotSinkItsPassage(t *testing.T) {
	e := newEnv(t, false)
	factory, _ := newTestAnalyzerFactory()
	e.start(t, testConfig(), factory)
	e.putFrame(t, "cam2", "b1", pipeline.ViewFront, img("flagged", "b1"))
	e.putFrame(t, "cam2", "b1", pipeline.ViewOverhead, []byte("garbage"))
	waitFor(t, 20*time.Second, "passage processed", func() bool {
		return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.objects(t, pipeline.BucketFrames)) == 0
	})
	dl := e.dlq(t)
	require.Len(t, dl, 1)
	assert.Contains(t, string(dl[0].Data), pipeline.ViewOverhead)
	d := e.detections(t)["b1"]
	require.Len(t, d, 1)
	require.Len(t, d[0].Frames, 1)
	assert.Equal(t, pipeline.ViewFront, d[0].Frames[0].View)
	e.checkEvidence(t, d[0])
}

func TestPanickingAnalysisGoesToDLQ(t *testing.T) {
	e := newEnv(t, false)
	factory, _ := newTestAnalyzerFactory()
	r := e.start(t, testConfig(), factory)
	e.putFrame(t, "cam1", "x1", pipeline.ViewFront, img("panic", "x1"))
	e.putFrame(t, "cam1", "x2", pipeline.ViewFront, img("clean", "x2"))
	waitFor(t, 20*time.Second, "frames processed", func() bool {
		return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.dlq(t)) == 1
	})
	d := e.dlq(t)[0]
	assert.Contains(t, d.Reason, "panicked")
	assert.Contains(t, d.Reason, "test analyser exploded")
	assert.EqualValues(t, 1, d.Deliveries)
	assert.Empty(t, e.objects(t, pipeline.BucketFrames), "clean frame deleted, panicking one quarantined")
	assert.Len(t, e.objects(t, pipeline.BucketQuarantine), 1)
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_dlq_total", map[string]string{"reason": "panic"}))
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}))
	assert.Equal(t, 0.0, counter(t, r.reg, "offencecam_detector_consumer_redelivered", nil))
}

// A frame that fails every delivery is dead-lettered from the server's MAX_DELIVERIES
// advisory and removed from the work queue, where it would otherwise stay forever.
func TestMaxDeliverEndsInDLQViaAdvisory(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.MaxDeliver = 3
	r := e.start(t, cfg, factory)
	f := e.putFrame(t, "cam1", "f1", pipeline.ViewFront, img("fail", "f1"))
	e.putFrame(t, "cam1", "f2", pipeline.ViewFront, img("flagged", "f2"))

	waitFor(t, 30*time.Second, "max-delivered frame dead-lettered", func() bool {
		return len(e.dlq(t)) == 1 && e.streamCount(t, pipeline.StreamFrames) == 0
	})
	d := e.dlq(t)[0]
	assert.Contains(t, d.Reason, "max_deliver")
	assert.EqualValues(t, 3, d.Deliveries)
	var got pipeline.Frame
	require.NoError(t, json.Unmarshal(d.Data, &got))
	assert.Equal(t, f.ID, got.ID)
	assert.EqualValues(t, 3, an.calls.Load()-1, "three tries of f1 and one of f2")
	assert.Equal(t, 3.0, counter(t, r.reg, "offencecam_detector_retries_total", map[string]string{"cause": "analysis"}))
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_dlq_total", map[string]string{"reason": "max_deliver"}))
	assert.Empty(t, e.objects(t, pipeline.BucketFrames))
	assert.Len(t, e.objects(t, pipeline.BucketQuarantine), 1)
	require.Len(t, e.detections(t)["f2"], 1)
}

// An analysis longer than AckWait is kept alive by progress acks: delivered once, never
// redelivered to a second analyser.
func TestLongAnalysisIsNotRedelivered(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	an.slowFor = 5 * time.Second
	cfg := testConfig()
	cfg.AckWait = 2 * time.Second // the analysis takes 2.5 of them
	cfg.ProgressInterval = 250 * time.Millisecond
	cfg.PassageWait = 0
	r := e.start(t, cfg, factory)
	e.putFrame(t, "cam1", "s1", pipeline.ViewFront, img("slow", "s1"))
	waitFor(t, 20*time.Second, "slow frame processed", func() bool {
		return counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}) == 1 && e.streamCount(t, pipeline.StreamFrames) == 0
	})

	assert.EqualValues(t, 1, an.calls.Load(), "analysed once")
	ci, err := r.w.cons.Info(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1, ci.Delivered.Consumer, "delivered once")
	assert.Zero(t, ci.NumRedelivered)
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "clean"}))
}

// S3 read errors are retried with backoff, then the frame is processed.
func TestStoreReadErrorsAreRetried(t *testing.T) {
	e := newEnv(t, false)
	flaky := &flakyStore{Store: e.store}
	flaky.fails.Store(2)
	e2 := &env{ns: e.ns, store: flaky}
	factory, _ := newTestAnalyzerFactory()
	r := e2.start(t, testConfig(), factory)
	e.putFrame(t, "cam1", "k1", pipeline.ViewFront, img("flagged", "k1"))
	waitFor(t, 20*time.Second, "frame processed", func() bool { return len(e.detections(t)["k1"]) == 1 })
	assert.Equal(t, 2.0, counter(t, r.reg, "offencecam_detector_retries_total", map[string]string{"cause": "s3_read"}))
	e.checkEvidence(t, e.detections(t)["k1"][0])
}

type flakyStore struct {
	objstore.Store
	fails atomic.Int64
}

func (f *flakyStore) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if bucket == pipeline.BucketFrames && f.fails.Add(-1) >= 0 {
		return nil, objstore.ObjectInfo{}, errors.New("test: S3 unavailable")
	}
	return f.Store.Get(ctx, bucket, key)
}

// Unflagged frames kept under keep_unflagged stay in `frames` until the sweeper finds them due.
func TestKeepUnflaggedThenSweep(t *testing.T) {
	e := newEnv(t, false)
	factory, _ := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.KeepUnflagged = time.Hour
	cfg.SweepInterval = time.Hour // the test sweeps by hand, at a chosen "now"
	r := e.start(t, cfg, factory)
	f := e.putFrame(t, "cam1", "kc", pipeline.ViewFront, img("clean", "kc"))
	e.putFrame(t, "cam1", "kf", pipeline.ViewFront, img("flagged", "kf"))
	waitFor(t, 20*time.Second, "frames processed", func() bool { return e.streamCount(t, pipeline.StreamFrames) == 0 })

	objs := e.objects(t, pipeline.BucketFrames)
	require.Len(t, objs, 1, "the clean frame is kept; the flagged one moved to evidence")
	assert.Equal(t, f.Key, objs[0].Key)

	n, err := r.w.sweep(context.Background(), time.Now())
	require.NoError(t, err)
	assert.Zero(t, n, "not due yet")
	n, err = r.w.sweep(context.Background(), time.Now().Add(2*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Empty(t, e.objects(t, pipeline.BucketFrames))
	keys, err := r.w.retention.ListKeys(context.Background())
	require.NoError(t, err)
	left := 0
	for range keys.Keys() {
		left++
	}
	assert.Zero(t, left, "retention entry removed")
}

// A clean stop leaves nothing half done: what waits is handed back and processed by the
// next worker.
func TestCleanStopHandsBackWaitingPassages(t *testing.T) {
	e := newEnv(t, false)
	factory, _ := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.PassageWait = 4 * time.Second
	r := e.start(t, cfg, factory)
	e.putFrame(t, "cam3", "w1", pipeline.ViewFront, img("flagged", "w1"))
	waitFor(t, 10*time.Second, "frame held", func() bool {
		return counter(t, r.reg, "offencecam_detector_in_flight", nil) == 1
	})
	require.NoError(t, r.stop())
	assert.Empty(t, e.detections(t))
	assert.EqualValues(t, 1, e.streamCount(t, pipeline.StreamFrames))

	cfg.PassageWait = 100 * time.Millisecond
	factory2, _ := newTestAnalyzerFactory()
	e.start(t, cfg, factory2)
	waitFor(t, 20*time.Second, "frame processed by the next worker", func() bool { return len(e.detections(t)["w1"]) == 1 })
}

var _ detector.Analyzer = (*testAnalyzer)(nil)

// Two different frames under one passage id (a camera counter that wrapped, a clock that
// repeated): the second Detection is a duplicate on DETECTIONS, and the evidence the first
// one names is never overwritten.
func TestLateViewIsPublishedForItsCaseWithoutOverwritingEvidence(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	r := e.start(t, testConfig(), factory)
	e.putFrame(t, "cam1", "dup", pipeline.ViewFront, img("flagged", "first"))
	waitFor(t, 20*time.Second, "first published", func() bool { return len(e.detections(t)["dup"]) == 1 })
	f2 := pipeline.Frame{}
	{
		ctx := context.Background()
		data := img("flagged", "second, other bytes")
		key := "cam1/other/dup-front.jpg"
		info, err := e.store.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
		require.NoError(t, err)
		f2 = pipeline.Frame{V: 1, ID: pipeline.FrameID(pipeline.BucketFrames, key, info.ETag), Bucket: pipeline.BucketFrames,
			Key: key, ETag: info.ETag, Camera: "cam1", CapturedAt: captured, View: pipeline.ViewFront, PassageID: "dup", Format: "jpeg"}
		e.publishFrame(t, f2)
	}
	waitFor(t, 20*time.Second, "second processed", func() bool {
		return an.calls.Load() == 2 && e.streamCount(t, pipeline.StreamFrames) == 0
	})
	// The second frame came after its passage was published: it goes out as a late view of
	// the passage (its own message id), for review to add to the case.
	d := e.detections(t)["dup"]
	require.Len(t, d, 2)
	e.checkEvidence(t, d[0])
	e.checkEvidence(t, d[1])
	require.Len(t, d[1].Frames, 1)
	assert.Equal(t, f2.Key, d[1].Frames[0].Key)
	_, info := e.read(t, pipeline.BucketEvidence, originalKey(evidencePrefix(&passage{id: "dup", items: []*held{{frame: f2}}}), f2))
	assert.Equal(t, f2.ID, info.Metadata["frame-id"])
	assert.Equal(t, 1.0, counter(t, r.reg, "offencecam_detector_late_views_total", nil))
}

// A frame given up on while no worker heard the advisory stays in the work queue; the
// reconciler finds it below the consumer's ack floor on two passes and dead-letters it.
func TestReconcilerDeadLettersMaxDeliveredFramesWithoutAdvisory(t *testing.T) {
	e := newEnv(t, false)
	factory, _ := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.MaxDeliver = 1
	cfg.ReconcileInterval = time.Hour // passes are run by hand below
	r := e.start(t, cfg, factory, func(w *Worker) { w.hooks.noAdvisories = true })
	f := e.putFrame(t, "cam1", "n1", pipeline.ViewFront, img("fail", "n1"))
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the consumer gives up on the frame", func() bool {
		ci, err := r.w.cons.Info(ctx)
		return err == nil && ci.Delivered.Stream >= 1 && ci.NumAckPending == 0
	})
	// The ack floor passes it once a later frame is acked.
	e.putFrame(t, "cam1", "n2", pipeline.ViewFront, img("clean", "n2"))
	waitFor(t, 20*time.Second, "the ack floor passes the given-up frame", func() bool {
		ci, err := r.w.cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= 2
	})
	require.EqualValues(t, 1, e.streamCount(t, pipeline.StreamFrames), "the work queue keeps it")

	seen := r.w.reconcile(ctx, map[uint64]bool{})
	assert.Equal(t, map[uint64]bool{1: true}, seen)
	assert.Empty(t, e.dlq(t), "one sighting is not enough")
	r.w.reconcile(ctx, seen)
	dl := e.dlq(t)
	require.Len(t, dl, 1)
	assert.Contains(t, dl[0].Reason, "max_deliver")
	assert.EqualValues(t, 1, dl[0].Sequence)
	assert.Zero(t, e.streamCount(t, pipeline.StreamFrames))
	_, err := e.store.Stat(ctx, pipeline.BucketFrames, f.Key)
	assert.ErrorIs(t, err, objstore.ErrNotFound)
	assert.Len(t, e.objects(t, pipeline.BucketQuarantine), 1)
}

// Frames of the same view under one passage id are different vehicles (ingest derived the
// same id for both): they are analysed apart, never as views of one pass.
func TestSameViewTwiceIsNotOnePassage(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.PassageWait = 4 * time.Second // long: the split must not wait for it
	e.start(t, cfg, factory)
	e.putFrame(t, "cam3", "same", pipeline.ViewFront, img("clean", "a"))
	f2 := pipeline.Frame{}
	{
		ctx := context.Background()
		data := img("clean", "b")
		key := "cam3/same-b/front.jpg"
		info, err := e.store.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
		require.NoError(t, err)
		f2 = pipeline.Frame{V: 1, ID: pipeline.FrameID(pipeline.BucketFrames, key, info.ETag), Bucket: pipeline.BucketFrames,
			Key: key, ETag: info.ETag, Camera: "cam3", CapturedAt: captured, View: pipeline.ViewFront, PassageID: "same"}
		e.publishFrame(t, f2)
	}
	waitFor(t, 3*time.Second, "the first group analysed before its wait is over", func() bool { return an.calls.Load() >= 1 })
	waitFor(t, 20*time.Second, "both analysed", func() bool { return e.streamCount(t, pipeline.StreamFrames) == 0 })
	assert.Equal(t, [][]string{{pipeline.ViewFront}, {pipeline.ViewFront}}, an.views(), "analysed apart")
}

// A frame whose object is gone (and not in evidence) has nothing to analyse: acked and
// counted as missing, not retried forever.
func TestMissingObjectIsAckedAndCounted(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	r := e.start(t, testConfig(), factory)
	ctx := context.Background()
	data := img("flagged", "gone")
	key := "cam1/gone/front.jpg"
	info, err := e.store.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
	require.NoError(t, err)
	require.NoError(t, e.store.Delete(ctx, pipeline.BucketFrames, key))
	e.publishFrame(t, pipeline.Frame{V: 1, ID: pipeline.FrameID(pipeline.BucketFrames, key, info.ETag), Bucket: pipeline.BucketFrames,
		Key: key, ETag: info.ETag, Camera: "cam1", CapturedAt: captured, View: pipeline.ViewFront, PassageID: "gone"})
	e.putFrame(t, "cam1", "here", pipeline.ViewFront, img("clean", "here"))
	waitFor(t, 20*time.Second, "both handled", func() bool { return e.streamCount(t, pipeline.StreamFrames) == 0 })
	waitFor(t, 5*time.Second, "counted", func() bool {
		return counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "missing"}) == 1
	})
	assert.Empty(t, e.detections(t))
	assert.Empty(t, e.dlq(t))
	assert.LessOrEqual(t, an.calls.Load(), int64(1), "only the frame that exists is analysed")
}
