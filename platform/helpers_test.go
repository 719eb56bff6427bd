package platform

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
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/pipeline"
)

const childEnv = "OFFENCECAM_PLATFORM_TEST_CHILD"

// childSpec is what a connector subprocess runs with.
type childSpec struct {
	NatsURL string
	DataDir string
	Config  Config
}

// TestMain lets a test re-exec its own binary as a connector process, so it can be killed
// with SIGKILL mid-run like a crashed node.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

func runChild(specJSON string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 3
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	nc, err := natsx.Connect(ctx, spec.NatsURL, "platform-child")
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 4
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jetstream:", err)
		return 4
	}
	c, err := New(Deps{JS: js, Registry: prometheus.NewRegistry(), Log: log, DataDir: spec.DataDir}, spec.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new:", err)
		return 5
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 6
	}
	return 0
}

// child is a connector subprocess.
type child struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startChild(t *testing.T, spec childSpec) *child {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	buf := &lockedBuffer{}
	cmd.Stderr = buf
	cmd.Stdout = buf
	require.NoError(t, cmd.Start())
	ch := &child{cmd: cmd, stderr: buf, done: make(chan error, 1)}
	go func() { ch.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-ch.done
		}
		if t.Failed() {
			t.Logf("child stderr:\n%s", buf.String())
		}
	})
	return ch
}

// kill9 stops the child the way a crash or the OOM killer would.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("child did not die after SIGKILL")
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not synchronisation
	}
}

func hexSHA(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var testAt = time.Date(2026, 7, 14, 8, 30, 15, 0, time.UTC) // summer time: Brussels is UTC+2

// validFine is a complete confirmed case that passes the schema.
func validFine(id string) pipeline.FineRecord {
	return pipeline.FineRecord{
		V:         pipeline.Version,
		CaseID:    id,
		PassageID: "p-" + id,
		Camera:    "cam-e40-01",
		Site:      "E40-Groot-Bijgaarden",
		Location: &pipeline.Location{Road: "E40", KmPoint: 8.3, Direction: "Brussel → Gent",
			Municipality: "Dilbeek", Country: "BE", Lat: 50.8695, Lon: 4.2466},
		OffenceAt: testAt,
		Offences:  []string{pipeline.OffencePhone},
		Plate:     "1ABC234",
		Country:   "BE",
		Evidence: []pipeline.Evidence{
			{Kind: pipeline.EvidenceOriginal, Bucket: pipeline.BucketEvidence, Key: id + "/front.jpg",
				SHA256: hexSHA(id + "front"), Size: 1234, ContentType: "image/jpeg", View: pipeline.ViewFront},
			{Kind: pipeline.EvidenceAnnotated, Bucket: pipeline.BucketEvidence, Key: id + "/annotated.jpg",
				SHA256: hexSHA(id + "annotated"), Size: 2345, ContentType: "image/jpeg"},
		},
		Decisions: []pipeline.Decision{
			{V: 1, CaseID: id, Stage: pipeline.StageFirst, Reviewer: "anne", Outcome: pipeline.OutcomeConfirm,
				Offences: []string{pipeline.OffencePhone}, DecidedAt: testAt.Add(time.Hour)},
			{V: 1, CaseID: id, Stage: pipeline.StageSecond, Reviewer: "bram", Outcome: pipeline.OutcomeConfirm,
				Offences: []string{pipeline.OffencePhone}, DecidedAt: testAt.Add(2 * time.Hour)},
		},
		Models:      []pipeline.ModelRef{{Name: "yolox-nano-coco", Version: "1.0.0", Role: "vehicle"}},
		ConfirmedAt: testAt.Add(2 * time.Hour),
	}
}

func publishFine(t *testing.T, js jetstream.JetStream, f pipeline.FineRecord) {
	t.Helper()
	b, err := json.Marshal(f)
	require.NoError(t, err)
	_, err = js.Publish(context.Background(), pipeline.SubjectFinesCreate, b, jetstream.WithMsgID(f.CaseID))
	require.NoError(t, err)
}

// lastResult is the newest FineResult for a case, or nil.
func lastResult(t *testing.T, js jetstream.JetStream, caseID string) *pipeline.FineResult {
	t.Helper()
	s, err := js.Stream(context.Background(), pipeline.StreamFines)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), pipeline.FineResultSubject(caseID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	require.NoError(t, err)
	fr, err := pipeline.Decode[pipeline.FineResult](m.Data)
	require.NoError(t, err)
	return &fr
}

func final(fr *pipeline.FineResult) bool {
	return fr != nil && (fr.Status == pipeline.FineCreated || fr.Status == pipeline.FineRejected)
}

func lastAudit(t *testing.T, js jetstream.JetStream, caseID string) *pipeline.AuditEvent {
	t.Helper()
	s, err := js.Stream(context.Background(), pipeline.StreamAudit)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), pipeline.AuditSubject("fine", caseID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	require.NoError(t, err)
	ev, err := pipeline.Decode[pipeline.AuditEvent](m.Data)
	require.NoError(t, err)
	return &ev
}

// finesCreateLeft counts fines.create messages still in the outbox.
func finesCreateLeft(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), pipeline.StreamFines)
	require.NoError(t, err)
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(pipeline.SubjectFinesCreate))
	require.NoError(t, err)
	return info.State.Subjects[pipeline.SubjectFinesCreate]
}

// testConfig is fast: tiny backoffs, a short ack wait so a killed connector's messages come
// back quickly, a short request timeout for the blocking handler.
func testConfig() Config {
	c := DefaultConfig()
	c.MinBackoff = 5 * time.Millisecond
	c.MaxBackoff = 50 * time.Millisecond
	c.RequestTimeout = 300 * time.Millisecond
	c.AckWait = time.Second
	c.Concurrency = 4
	return c
}

// runConnector runs a connector in this process until the returned stop is called; stop
// reports how long Run took to return.
func runConnector(t *testing.T, js jetstream.JetStream, reg prometheus.Registerer, dataDir string, cfg Config) (stop func() time.Duration) {
	t.Helper()
	c, err := New(Deps{JS: js, Registry: reg, Log: testLogger(t), DataDir: dataDir}, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("connector did not stop within 15s of cancel")
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// --- the fake fines platform ---

// fakePlatform is an httptest fines platform that fails in scripted ways and records what
// it accepted.
type fakePlatform struct {
	srv     *httptest.Server
	token   string
	script  func(key string, attempt int) string // what to do with this attempt
	closing chan struct{}

	mu         sync.Mutex
	stored     map[string]string // idempotency key -> reference
	storeCount map[string]int    // times a key was stored (must stay 1)
	attempts   map[string]int
	lastAt     map[string]time.Time
	notBefore  map[string]time.Time // Retry-After promised to a key
	early      []string             // keys retried before their Retry-After
	actions    map[string]int       // scripted action -> times taken
	problems   []string             // protocol violations seen
}

// Scripted actions.
const (
	actOK           = "ok"
	actResetBefore  = "reset_before_store"
	actResetAfter   = "reset_after_store"
	actHang         = "hang_before_store"
	actHangAfter    = "hang_after_store"
	act500          = "500"
	act503          = "503"
	act429          = "429"
	act422          = "422"
	reject422Reason = "plate not registered in the vehicle register (DIV)"
)

func newFakePlatform(t *testing.T, token string, script func(key string, attempt int) string) *fakePlatform {
	p := &fakePlatform{token: token, script: script, closing: make(chan struct{}),
		stored: map[string]string{}, storeCount: map[string]int{}, attempts: map[string]int{},
		lastAt: map[string]time.Time{}, notBefore: map[string]time.Time{}, actions: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		close(p.closing)
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

// seed makes the platform already hold a record (as if sent by an earlier life).
func (p *fakePlatform) seed(key, ref string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stored[key] = ref
	p.storeCount[key]++
}

func (p *fakePlatform) problem(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, a...))
}

func (p *fakePlatform) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var rec Record
	switch {
	case r.Method != http.MethodPost:
		p.problem("method %s", r.Method)
	case r.Header.Get("Content-Type") != "application/json":
		p.problem("content type %q", r.Header.Get("Content-Type"))
	case p.token != "" && r.Header.Get("Authorization") != "Bearer "+p.token:
		p.problem("authorization %q", r.Header.Get("Authorization"))
	case json.Unmarshal(body, &rec) != nil:
		p.problem("body is not a record: %s", body)
	case key == "" || rec.CaseID != key:
		p.problem("idempotency key %q for case %q", key, rec.CaseID)
	}

	p.mu.Lock()
	now := time.Now()
	p.attempts[key]++
	attempt := p.attempts[key]
	if nb, ok := p.notBefore[key]; ok && now.Before(nb) {
		p.early = append(p.early, key)
	}
	delete(p.notBefore, key)
	p.lastAt[key] = now
	act := p.script(key, attempt)
	p.actions[act]++
	storeFirst := act == actOK || act == actResetAfter || act == actHangAfter
	ref, exists := p.stored[key]
	if storeFirst && !exists {
		ref = "PF-" + strings.ToUpper(key)
		p.stored[key] = ref
		p.storeCount[key]++
	}
	if act == act429 {
		p.notBefore[key] = now.Add(time.Second)
	}
	p.mu.Unlock()

	switch act {
	case actResetBefore, actResetAfter:
		hj, ok := w.(http.Hijacker)
		if !ok {
			p.problem("cannot hijack")
			return
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
		return
	case actHang, actHangAfter:
		select {
		case <-r.Context().Done(): // the client gave up
		case <-p.closing:
		}
		return
	case act500:
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	case act503:
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	case act429:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case act422:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": reject422Reason})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if exists {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]string{"reference": ref, "message": "already exists"})
		return
	}
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"reference": ref})
}

func (p *fakePlatform) storedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.stored)
}

func (p *fakePlatform) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, a := range p.attempts {
		n += a
	}
	return n
}

func natsServer(t *testing.T) *natstest.Server { return natstest.Start(t, nil) }

var _ = nats.MsgIdHdr

// metricValue sums a counter family, or the one series with outcome=label.
func metricValue(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := outcome == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "outcome" && lp.GetValue() == outcome {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
