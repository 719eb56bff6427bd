package ingest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
)

// BenchmarkIngestEventToFrame measures the whole ingest path on one box: an S3 event
// notification on NATS → Stat → seen check → sidecar lookup → metadata → header validation
// (no pixel decoding) → publish to FRAMES with ack → seen mark, with the local object store
// and an embedded NATS. Reports frames/s.
//
//	go test -run '^$' -bench IngestEventToFrame -benchtime 3000x ./ingest/
func BenchmarkIngestEventToFrame(b *testing.B) {
	ns := natstest.Start(b, func(l *natsx.Limits) { l.FramesMaxMsgs = 10_000_000; l.FramesMaxBytes = 8 << 30 })
	st, err := objstore.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig("bench.s3.events")
	svc, _, _ := startService(b, ns, st, cfg, b.TempDir())
	_ = svc
	img := encodeJPEG(1920, 1080) // a full-HD camera frame (~100-300 KB)
	ctx := context.Background()
	require := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	require(st.EnsureBucket(ctx, pipeline.BucketFrames))

	events := make([][]byte, b.N)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range b.N {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := fmt.Sprintf("cam1/2026/11/27/b%07d/front.jpg", i)
			info, err := st.Put(ctx, pipeline.BucketFrames, key, bytes.NewReader(img), int64(len(img)), objstore.PutOptions{ContentType: "image/jpeg"})
			if err != nil {
				b.Error(err)
				return
			}
			events[i] = fmt.Appendf(nil, `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"frames"},"object":{"key":%q,"size":%d,"eTag":"\"%s\""}}}]}`,
				key, info.Size, info.ETag)
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	start := time.Now()
	for _, ev := range events {
		require(ns.NC.Publish(cfg.EventSubject, ev))
	}
	deadline := time.Now().Add(5 * time.Minute)
	for streamMsgs(b, ns.JS) < uint64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d frames after 5 minutes", streamMsgs(b, ns.JS), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
}

// BenchmarkValidateImage is header-only validation of a full-HD JPEG held in memory.
func BenchmarkValidateImage(b *testing.B) {
	img := encodeJPEG(1920, 1080)
	lim := DefaultConfig().Limits
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		if _, err := ValidateImage(bytes.NewReader(img), int64(len(img)), lim); err != nil {
			b.Fatal(err)
		}
	}
}
