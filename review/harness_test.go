package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	ctx   context.Context
	nats  *natstest.Server
	store *objstore.Local
	svc   *Service
	reg   *prometheus.Registry
	web   *httptest.Server
}

// newHarness runs a real review service on a real embedded NATS and a local object store,
// served by httptest on loopback. now may be nil for the real clock.
func newHarness(t *testing.T, now func() time.Time, tune func(*Config)) *harness {
	t.Helper()
	return newHarnessWith(t, now, tune, nil)
}

// newHarnessWith is newHarness with the service's object store wrapped by wrap (the harness
// itself reads and writes the plain store).
func newHarnessWith(t *testing.T, now func() time.Time, tune func(*Config), wrap func(objstore.Store) objstore.Store) *harness {
	t.Helper()
	ns := natstest.Start(t, nil)
	st, err := objstore.NewLocal(t.TempDir())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, st.EnsureBucket(ctx, pipeline.BucketEvidence))
	cfg := DefaultConfig()
	if tune != nil {
		tune(&cfg)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	var svcStore objstore.Store = st
	if wrap != nil {
		svcStore = wrap(st)
	}
	svc, err := New(ctx, Deps{NC: ns.NC, JS: ns.JS, Store: svcStore, Registry: reg, Log: log, Now: now}, cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	web := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		web.Close()
		cancel()
		require.NoError(t, <-done)
	})
	return &harness{t: t, ctx: ctx, nats: ns, store: st, svc: svc, reg: reg, web: web}
}

func (h *harness) addUser(name, pw, lang string, roles ...string) {
	h.t.Helper()
	require.NoError(h.t, h.svc.Accounts().Add(h.ctx, name, pw, roles, lang, false))
}

// testJPEG renders a small scene: a grey road, a car body and a white plate.
func testJPEG(t *testing.T, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{90, 90, 95, 255}}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(w/5, h/4, 4*w/5, 3*h/4), &image.Uniform{color.RGBA{20 + seed, 60, 160, 255}}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(2*w/5, 3*h/5, 3*w/5, 7*h/10), &image.Uniform{color.RGBA{240, 240, 240, 255}}, image.Point{}, draw.Src)
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}))
	return buf.Bytes()
}

func (h *harness) putEvidence(key, kind string, data []byte) pipeline.Evidence {
	h.t.Helper()
	_, err := h.store.Put(h.ctx, pipeline.BucketEvidence, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{ContentType: "image/jpeg"})
	require.NoError(h.t, err)
	sum := sha256.Sum256(data)
	return pipeline.Evidence{Kind: kind, Bucket: pipeline.BucketEvidence, Key: key, SHA256: hex.EncodeToString(sum[:]),
		Size: int64(len(data)), ContentType: "image/jpeg", View: pipeline.ViewFront}
}

// publishDetection publishes a flagged Detection with rendered evidence images and waits
// until its case is in the index.
func (h *harness) publishDetection(passage string, capturedAt time.Time, extra ...pipeline.Evidence) string {
	h.t.Helper()
	ev := []pipeline.Evidence{
		h.putEvidence(passage+"/annotated.jpg", pipeline.EvidenceAnnotated, testJPEG(h.t, 640, 360, 1)),
		h.putEvidence(passage+"/original.jpg", pipeline.EvidenceOriginal, testJPEG(h.t, 1280, 720, 2)),
		h.putEvidence(passage+"/plate.jpg", pipeline.EvidencePlateCrop, testJPEG(h.t, 160, 40, 3)),
	}
	ev = append(ev, extra...)
	d := pipeline.Detection{V: pipeline.Version, PassageID: passage, Camera: "cam-e40-1", Site: "E40 Bertem",
		Location:   &pipeline.Location{Road: "E40", KmPoint: 12.3, Direction: "Brussel", Municipality: "Bertem", Country: "BE"},
		CapturedAt: capturedAt, DetectedAt: capturedAt.Add(2 * time.Second), Flagged: true,
		Frames: []pipeline.FrameRef{{Bucket: pipeline.BucketFrames, Key: passage + ".jpg", View: pipeline.ViewFront}},
		Vehicles: []pipeline.Vehicle{{Class: "car", Score: .93, Phone: pipeline.Finding{State: pipeline.PhoneHeld, Score: .88},
			Seatbelt: pipeline.Finding{State: pipeline.SeatbeltWorn, Score: .7},
			Plate:    &pipeline.Plate{Text: "1ABC234", Country: "BE", Confidence: .71}}},
		Offences: []pipeline.Offence{{Kind: pipeline.OffencePhone, Score: .88}},
		Evidence: ev,
		Models:   []pipeline.ModelRef{{Name: "yolox-nano", Version: "0.1.1", Role: "vehicle"}},
	}
	data, err := json.Marshal(d)
	require.NoError(h.t, err)
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject(d.Camera), data, jetstream.WithMsgID(passage))
	require.NoError(h.t, err)
	id := cases.IDFor(passage)
	h.waitState(id, cases.Pending)
	return id
}

// waitState polls the store until the case is in state st (a deadline, not a sleep).
func (h *harness) waitState(id string, st cases.State) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		c, _, err := h.svc.Cases().Get(h.ctx, id)
		return err == nil && c.State == st
	}, 10*time.Second, 20*time.Millisecond, "case %s never reached %s", id, st)
	require.NoError(h.t, h.svc.Cases().Index().Sync(h.ctx))
}

// client is an HTTP client with its own cookie jar that does not follow redirects.
type client struct {
	t    *testing.T
	h    *harness
	hc   *http.Client
	csrf string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: h.t, h: h, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *client) do(method, path string, body any, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string: // a form
		rd, ct = strings.NewReader(b), "application/x-www-form-urlencoded"
	default:
		data, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, c.h.web.URL+path, rd)
	require.NoError(c.t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res, data
}

// api calls the JSON API with the session's CSRF token.
func (c *client) api(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	return c.do(method, path, body, map[string]string{csrfHeader: c.csrf})
}

func (c *client) login(user, pw string) *http.Response {
	c.t.Helper()
	res, data := c.do(http.MethodPost, "/api/login", map[string]string{"user": user, "password": pw}, nil)
	if res.StatusCode == http.StatusOK {
		var me meJSON
		require.NoError(c.t, json.Unmarshal(data, &me))
		c.csrf = me.CSRF
	}
	return res
}

func objstoreOpts() objstore.PutOptions { return objstore.PutOptions{ContentType: "image/jpeg"} }
