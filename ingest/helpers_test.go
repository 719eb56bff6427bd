package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

var (
	jpegOnce sync.Once
	jpegData []byte
)

// testJPEG is a small real JPEG (64x48), made once.
func testJPEG(t testing.TB) []byte {
	t.Helper()
	jpegOnce.Do(func() { jpegData = encodeJPEG(64, 48) })
	return jpegData
}

func encodeJPEG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 80, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func encodePNG(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// pngHeaderOnly is a PNG signature, an IHDR claiming w x h and an IEND: what an image that
// declares huge dimensions looks like to a header-only reader.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.Write(pngMagic)
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}

// jpegWithSize patches the SOF0 dimensions of a real JPEG.
func jpegWithSize(t testing.TB, w, h uint16) []byte {
	t.Helper()
	b := append([]byte(nil), testJPEG(t)...)
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	require.Positive(t, i, "SOF0 marker")
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

func testCameras() map[string]Camera {
	return map[string]Camera{
		LocalCamera: {Site: "local", Country: "BE", DriverSide: "left", DefaultView: pipeline.ViewFront},
		"cam1": {Site: "e40-km12", Road: "E40", KmPoint: 12.4, Direction: "Brussels", Municipality: "Leuven",
			Country: "BE", Lat: 50.88, Lon: 4.70, SpeedLimitKMH: 120, DefaultView: pipeline.ViewFront},
		"cam2": {Site: "e40-km12", Road: "E40", KmPoint: 12.4, Country: "BE", SpeedLimitKMH: 120, DefaultView: pipeline.ViewRear},
		"cam3": {Site: "a12-km3", Road: "A12", Country: "BE", DriverSide: "right", SpeedLimitKMH: 90,
			DefaultView: pipeline.ViewOverhead, TimeZone: "Europe/Amsterdam"},
	}
}

// testConfig is a fast configuration for tests: short retries, no listing, no inbox.
func testConfig(subject string) Config {
	c := DefaultConfig()
	c.EventSubject = subject
	c.ListInterval = 0
	c.Inbox.Enabled = false
	c.RetryInitial = 5 * time.Millisecond
	c.RetryMax = 100 * time.Millisecond
	c.KeyTemplates = []string{
		"{camera}/{yyyy}/{mm}/{dd}/{passage}/{view}.{ext}",
		"{camera}/{ts}_{passage}_{view}.{ext}",
	}
	c.Cameras = testCameras()
	return c
}

type harness struct {
	t     testing.TB
	nats  *natstest.Server
	store objstore.Store
	reg   *prometheus.Registry
	svc   *Service
	stop  func() error
}

func newLocalStore(t testing.TB) *objstore.Local {
	t.Helper()
	st, err := objstore.NewLocal(t.TempDir())
	require.NoError(t, err)
	return st
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startService builds and runs a Service; stop cancels it and waits for Run to return.
func startService(t testing.TB, ns *natstest.Server, store objstore.Store, cfg Config, dataDir string) (*Service, *prometheus.Registry, func() error) {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc, err := New(Deps{NC: ns.NC, JS: ns.JS, Store: store, Registry: reg, Log: testLogger(t), DataDir: dataDir}, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("ingest Run did not return within 30s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	var lastErr error
	t.Cleanup(func() {
		if t.Failed() && lastErr != nil {
			t.Logf("last Ready error: %v", lastErr)
		}
	})
	waitFor(t, 20*time.Second, "ingest ready", func() bool {
		lastErr = svc.Ready()
		return lastErr == nil
	})
	return svc, reg, stop
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

func streamMsgs(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), pipeline.StreamFrames)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// allFrames reads every message in FRAMES without consuming it.
func allFrames(t testing.TB, js jetstream.JetStream) []pipeline.Frame {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, pipeline.StreamFrames)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []pipeline.Frame
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted (acked by a test consumer)
		}
		if !strings.HasPrefix(m.Subject, "frames.") || m.Subject == "frames.zz-probe" {
			continue
		}
		f, err := pipeline.Decode[pipeline.Frame](m.Data)
		require.NoError(t, err)
		require.Equal(t, f.ID, m.Header.Get(jetstream.MsgIDHeader), "Nats-Msg-Id is the frame id")
		out = append(out, f)
	}
	return out
}

// counter sums the values of every series of a counter or gauge collector.
func counter(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

var _ = natsx.DefaultLimits

// jpegPatched sets one byte of the SOF0 segment (offset from its marker) of a real JPEG.
func jpegPatched(t testing.TB, off int, v byte) []byte {
	t.Helper()
	b := append([]byte(nil), testJPEG(t)...)
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	require.Positive(t, i, "SOF0 marker")
	b[i+off] = v
	return b
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
