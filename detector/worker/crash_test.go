package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const childEnv = "OFFENCECAM_DETECT_WORKER_CHILD"

// childSpec is what the parent test tells the worker process it re-execs.
type childSpec struct {
	NATSURL string
	S3      objstore.S3Config
	Config  Config
	// Allow is how many analyses complete; every later one blocks until the process dies.
	Allow int64
	// Real runs the stage graph on the model cache instead of the test analyser.
	Real bool
}

// blockingAnalyzer lets the first Allow analyses through (as the test analyser judges them)
// and holds every later one, announcing it, so the parent kills the process mid-batch.
type blockingAnalyzer struct {
	inner detector.Analyzer
	calls *atomic.Int64
	allow int64
}

func (a *blockingAnalyzer) Analyze(ctx context.Context, views []detector.View) (detector.Result, error) {
	if a.calls.Add(1) > a.allow {
		fmt.Printf("BLOCKED analysis %s\n", views[0].Frame.PassageID)
		<-ctx.Done()
		return detector.Result{}, ctx.Err()
	}
	return a.inner.Analyze(ctx, views)
}

// TestWorkerChildProcess is not a test: it is the worker process of
// TestKilledMidBatchThenRestarted, started by re-executing the test binary.
func TestWorkerChildProcess(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("helper process, run by TestKilledMidBatchThenRestarted")
	}
	var spec childSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	ctx := context.Background()
	nc, err := natsx.Connect(ctx, spec.NATSURL, "detect-child")
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	store, err := objstore.NewS3(spec.S3)
	require.NoError(t, err)
	inner, _ := newTestAnalyzerFactory()
	if spec.Real {
		inner = realFactory(t)
	}
	var calls atomic.Int64
	w, err := New(Deps{JS: js, Store: store, Registry: prometheus.NewRegistry(),
		NewAnalyzer: func() (detector.Analyzer, error) {
			a, err := inner()
			if err != nil {
				return nil, err
			}
			return &blockingAnalyzer{inner: a, calls: &calls, allow: spec.Allow}, nil
		}}, spec.Config)
	require.NoError(t, err)
	var published atomic.Int64
	w.hooks.afterPublish = func(id string) {
		// The first published passage stops between its publish and its ack.
		if published.Add(1) == 1 {
			fmt.Printf("PUBLISHED %s\n", id)
			fmt.Printf("BLOCKED publish %s\n", id)
			select {}
		}
	}
	require.NoError(t, w.Run(ctx))
}

// The worker process is SIGKILLed while every analyser is busy and one passage sits between
// publishing its Detection and acking its frames, then a new worker takes over: every frame
// ends as a Detection with evidence or deleted, and no passage has two Detections. Once with
// the test analyser (multi-view passages included), once with the real stage graph.
func TestKilledMidBatchThenRestarted(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	t.Run("test-analyser", func(t *testing.T) {
		e := newEnv(t, true)
		flagged := map[string]bool{}
		for i := 0; i < 10; i++ {
			p := fmt.Sprintf("k%02d", i)
			lbl := "flagged"
			if i%3 == 1 {
				lbl = "clean"
			}
			e.putFrame(t, "cam1", p, pipeline.ViewFront, img(lbl, p))
			flagged[p] = lbl == "flagged"
		}
		for i, lbl := range []string{"flagged", "clean", "flagged"} {
			p := fmt.Sprintf("m%02d", i)
			e.putFrame(t, "cam2", p, pipeline.ViewFront, img("clean", p+"f"))
			e.putFrame(t, "cam2", p, pipeline.ViewOverhead, img(lbl, p+"o"))
			flagged[p] = lbl == "flagged"
		}
		factory, _ := newTestAnalyzerFactory()
		killMidBatchAndRestart(t, e, flagged, false, factory)
	})
	t.Run("real-models", func(t *testing.T) {
		factory := realFactory(t)
		imgs := sharedImages(t)
		ref := referenceFlags(t, imgs)
		e := newEnv(t, true)
		// The kill needs Allow = clean+1 analyses to finish and then all Concurrency (3)
		// analysers blocked, so there must be at least clean+4 passages, whatever few of the
		// shared images the reference models flag: flagged images are reused under several
		// passage ids (the same bytes, another pass). Few clean frames keep it quick under
		// -race on two busy cores.
		var flaggedImgs, cleanImgs []string
		for _, n := range sortedNames(imgs) {
			if ref[n] {
				flaggedImgs = append(flaggedImgs, n)
			} else {
				cleanImgs = append(cleanImgs, n)
			}
		}
		require.NotEmpty(t, flaggedImgs, "the sensitive reference config flags some shared image")
		flagged := map[string]bool{}
		for i, n := range cleanImgs[:min(3, len(cleanImgs))] {
			p := fmt.Sprintf("c%02d", i)
			e.putFrame(t, "cam1", p, pipeline.ViewFront, imgs[n])
			flagged[p] = false
		}
		for i := range 5 {
			p := fmt.Sprintf("f%02d", i)
			e.putFrame(t, "cam1", p, pipeline.ViewFront, imgs[flaggedImgs[i%len(flaggedImgs)]])
			flagged[p] = true
		}
		killMidBatchAndRestart(t, e, flagged, true, factory)
	})
}

// killMidBatchAndRestart runs a worker process on e's frames, kills it mid-batch, runs a new
// worker with factory and checks every passage: flagged ones have exactly one Detection with
// verified evidence, clean ones none, and nothing is left in FRAMES or `frames`.
func killMidBatchAndRestart(t *testing.T, e *env, flagged map[string]bool, real bool, factory func() (detector.Analyzer, error)) {
	cfg := testConfig()
	cfg.Concurrency = 3
	cfg.AckWait = 2 * time.Second
	if real {
		cfg.AckWait = 10 * time.Second
	}
	clean := len(flagged) - countTrue(flagged)
	require.NotZero(t, countTrue(flagged))
	// More analyses complete than there are clean passages, so at least one flagged passage
	// reaches its publish (and stops there); every later analysis blocks.
	spec, err := json.Marshal(childSpec{NATSURL: e.ns.ClientURL(), S3: e.s3, Config: cfg, Allow: int64(clean + 1), Real: real})
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	blocked, publishedBeforeKill := 0, ""
	deadline := time.After(5 * time.Minute) // real models under -race on a loaded CI machine
	for blocked < cfg.Concurrency || publishedBeforeKill == "" {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "child exited early")
			switch {
			case strings.HasPrefix(l, "BLOCKED analysis "):
				blocked++
			case strings.HasPrefix(l, "PUBLISHED "):
				publishedBeforeKill = strings.TrimPrefix(l, "PUBLISHED ")
			}
		case <-deadline:
			t.Fatal("the child never had all its analysers busy")
		}
	}
	// Every analyser of the child is mid-passage, and one passage sits between its publish
	// and its ack: kill it there.
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	killed = true
	_ = cmd.Wait()

	require.Len(t, e.detections(t)[publishedBeforeKill], 1)
	require.NotZero(t, e.streamCount(t, pipeline.StreamFrames), "frames were left un-acked by the kill")

	r := e.start(t, cfg, factory)
	waitFor(t, 3*time.Minute, "every frame accounted for after the restart", func() bool {
		return e.streamCount(t, pipeline.StreamFrames) == 0 && len(e.objects(t, pipeline.BucketFrames)) == 0
	})
	dets := e.detections(t)
	for p, f := range flagged {
		if f {
			require.Len(t, dets[p], 1, "flagged passage %s has exactly one Detection", p)
			e.checkEvidence(t, dets[p][0])
		} else {
			assert.Empty(t, dets[p], "clean passage %s", p)
		}
	}
	assert.Len(t, dets, countTrue(flagged))
	assert.Empty(t, e.dlq(t))
	assert.Zero(t, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "failed"}))
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// A crash after the originals are deleted but before the ack: the redelivered frames are
// gone from `frames`, their originals are in evidence, so the passage is known to be
// published and is only acked, not lost and not published again.
func TestCrashBetweenDeleteAndAckIsFinishedOnRedelivery(t *testing.T) {
	e := newEnv(t, false)
	factory, an := newTestAnalyzerFactory()
	cfg := testConfig()
	cfg.AckWait = time.Second
	var abandoned atomic.Int64
	r := e.start(t, cfg, factory, func(w *Worker) {
		w.hooks.beforeAck = func(string) bool { return abandoned.Add(1) > 1 }
	})
	e.putFrame(t, "cam2", "d1", pipeline.ViewFront, img("flagged", "d1f"))
	e.putFrame(t, "cam2", "d1", pipeline.ViewOverhead, img("clean", "d1o"))
	waitFor(t, 20*time.Second, "redelivered passage finished", func() bool { return e.streamCount(t, pipeline.StreamFrames) == 0 })
	assert.EqualValues(t, 1, abandoned.Load(), "the redelivery did not reach a second publish")
	assert.EqualValues(t, 1, an.calls.Load(), "the redelivery did not analyse again")
	require.Len(t, e.detections(t)["d1"], 1)
	e.checkEvidence(t, e.detections(t)["d1"][0])
	assert.Empty(t, e.objects(t, pipeline.BucketFrames))
	assert.Equal(t, 2.0, counter(t, r.reg, "offencecam_detector_frames_total", map[string]string{"result": "flagged"}))
}
