package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what the worker runs on.
type Deps struct {
	JS    jetstream.JetStream
	Store objstore.Store
	// NewAnalyzer makes one Analyzer per analysis goroutine; they are never shared.
	NewAnalyzer func() (detector.Analyzer, error)
	Registry    prometheus.Registerer
	Log         *slog.Logger
}

// Worker is the detection worker. Make it with New and start it with Run.
type Worker struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics

	running atomic.Bool
	ready   atomic.Pointer[error]

	frames    jetstream.Stream
	cons      jetstream.Consumer
	retention jetstream.KeyValue

	slots  chan struct{} // one token per held message: bounds what is fetched
	readyQ chan *passage // passages complete or done waiting, for the analysers

	// Each passage runs on its own goroutine: read, analyse, store and publish. Only the
	// analysis needs one of the Concurrency analysers (pool), so object-store and NATS
	// round trips never leave an analyser idle; readAhead lets one passage per analyser
	// have its bytes read while it waits, which bounds the images held in memory.
	pool      chan detector.Analyzer
	readAhead chan struct{}

	mu      sync.Mutex
	held    map[*held]struct{} // every un-acked message this worker holds, for progress acks
	waiting map[string]*passage
	closed  bool // set at shutdown: passages that finish waiting are handed back, not queued

	observeStages bool // the worker feeds offencecam_detector_stage_seconds

	hooks hooks
}

// hooks let in-package tests stop a worker at exact points (a kill between publish and ack).
type hooks struct {
	afterPublish func(passageID string)
	// beforeAck returning false abandons the passage un-acked, as a crash at that point would.
	beforeAck func(passageID string) bool
	// noAdvisories leaves max-delivered frames to the reconciler, as a missed advisory would.
	noAdvisories bool
}

// held is one un-acked FRAMES message.
type held struct {
	msg   jetstream.Msg
	meta  *jetstream.MsgMetadata
	frame pipeline.Frame
}

// passage is the views of one vehicle pass gathered so far.
type passage struct {
	id       string
	expected int
	items    []*held
	timer    *time.Timer
}

var errNotStarted = errors.New("detect: worker not started")

// New checks the configuration and dependencies and registers the metrics. Nothing is
// contacted until Run.
func New(deps Deps, cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.JS == nil:
		return nil, errors.New("detect: Deps.JS is nil")
	case deps.Store == nil:
		return nil, errors.New("detect: Deps.Store is nil")
	case deps.NewAnalyzer == nil:
		return nil, errors.New("detect: Deps.NewAnalyzer is nil")
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, deps: deps, log: deps.Log.With("stage", "detect"), m: m,
		slots:     make(chan struct{}, cfg.MaxInFlight),
		readyQ:    make(chan *passage, cfg.MaxInFlight),
		pool:      make(chan detector.Analyzer, cfg.concurrency()),
		readAhead: make(chan struct{}, cfg.concurrency()),
		held:      map[*held]struct{}{},
		waiting:   map[string]*passage{},
	}
	w.setReady(errNotStarted)
	return w, nil
}

// Config is the validated configuration the worker runs with.
func (w *Worker) Config() Config { return w.cfg }

// Concurrency is the number of analyses the worker runs at once.
func (w *Worker) Concurrency() int { return w.cfg.concurrency() }

func (w *Worker) setReady(err error) { w.ready.Store(&err) }

// Ready is nil while the worker is consuming FRAMES (for /readyz).
func (w *Worker) Ready() error { return *w.ready.Load() }

// Run consumes FRAMES until ctx ends, then stops cleanly: no more fetching, passages still
// waiting for views are handed back (Nak), in-flight analyses get ShutdownGrace to finish and
// are then cancelled and left un-acked for redelivery. It returns nil on a clean stop and an
// error when it cannot start (analysers, consumer).
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("detect: Run called twice")
	}
	n := w.cfg.concurrency()
	defer w.closeAnalyzers()
	for i := range n {
		a, err := w.deps.NewAnalyzer()
		if err != nil {
			err = fmt.Errorf("detect: analyser %d of %d: %w", i+1, n, err)
			w.setReady(err)
			return err
		}
		w.pool <- a
	}
	w.observeStages = w.m.registerStage(w.deps.Registry)
	if err := w.setup(ctx); err != nil {
		w.setReady(err)
		return err
	}
	if !w.hooks.noAdvisories {
		sub, err := w.subscribeAdvisories()
		if err != nil {
			w.setReady(err)
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
	}

	w.log.Info("detection worker started", "concurrency", n, "batch_size", w.cfg.BatchSize,
		"max_in_flight", w.cfg.MaxInFlight, "ack_wait", w.cfg.AckWait, "max_deliver", w.cfg.MaxDeliver,
		"passage_wait", w.cfg.PassageWait, "keep_unflagged", w.cfg.KeepUnflagged)

	// Analyses outlive ctx by up to ShutdownGrace so that a stop does not waste finished work.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	bgCtx, cancelBg := context.WithCancel(ctx)
	defer cancelBg()

	stop := make(chan struct{})
	var passages sync.WaitGroup
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		w.dispatch(workCtx, stop, &passages)
	}()
	progressStop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); w.progressLoop(progressStop) }()
	bg.Add(1)
	go func() { defer bg.Done(); w.metricsLoop(bgCtx) }()
	bg.Add(1)
	go func() { defer bg.Done(); w.reconcileLoop(bgCtx) }()
	if w.retention != nil {
		bg.Add(1)
		go func() { defer bg.Done(); w.sweepLoop(bgCtx) }()
	}

	w.setReady(nil)
	w.fetchLoop(ctx)
	w.setReady(errors.New("detect: stopping"))

	// Stop: hand back what waits, let analyses finish within the grace, then cancel them.
	w.handBackWaiting()
	close(stop)
	<-dispatched
	done := make(chan struct{})
	go func() { passages.Wait(); close(done) }()
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	select {
	case <-done:
		grace.Stop()
	case <-grace.C:
		w.log.Warn("analyses still running after the shutdown grace; cancelling them (their frames will be redelivered)")
		cancelWork()
		<-done
	}
	w.handBackQueued()
	close(progressStop)
	cancelBg()
	bg.Wait()
	w.log.Info("detection worker stopped")
	return nil
}

// setup binds the FRAMES stream and creates or updates the durable consumer.
func (w *Worker) setup(ctx context.Context) error {
	var err error
	if w.frames, err = w.deps.JS.Stream(ctx, pipeline.StreamFrames); err != nil {
		return fmt.Errorf("detect: stream %s: %w", pipeline.StreamFrames, err)
	}
	w.cons, err = w.deps.JS.CreateOrUpdateConsumer(ctx, pipeline.StreamFrames, jetstream.ConsumerConfig{
		Durable:       pipeline.ConsumerDetect,
		Description:   "detection worker: frames to analyse",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxDeliver:    w.cfg.MaxDeliver,
		MaxAckPending: w.cfg.MaxAckPending,
		FilterSubject: pipeline.SubjectFramesAll,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("detect: consumer %s on %s: %w", pipeline.ConsumerDetect, pipeline.StreamFrames, err)
	}
	if w.cfg.KeepUnflagged > 0 {
		if w.retention, err = openRetention(ctx, w.deps.JS, w.frames); err != nil {
			return err
		}
	}
	return nil
}

// fetchLoop pulls batches while there is room, until ctx ends.
func (w *Worker) fetchLoop(ctx context.Context) {
	backoff := w.cfg.RetryInitial
	for {
		// Block for one slot, then take as many more as are free, up to a batch.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		want := 1
	more:
		for want < w.cfg.BatchSize {
			select {
			case w.slots <- struct{}{}:
				want++
			default:
				break more
			}
		}
		batch, err := w.cons.Fetch(want, jetstream.FetchMaxWait(w.cfg.BatchWait))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				w.accept(msg)
			}
			err = batch.Error()
		}
		for range want - got {
			<-w.slots
		}
		if got > 0 {
			w.m.batch.Observe(float64(got))
		}
		if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("fetch from FRAMES failed; retrying", "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, w.cfg.RetryMax)
			continue
		}
		backoff = w.cfg.RetryInitial
		if ctx.Err() != nil {
			return
		}
	}
}

// accept takes one delivered message (its slot already taken) into a passage.
func (w *Worker) accept(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to ack either.
		w.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		<-w.slots
		return
	}
	h := &held{msg: msg, meta: meta}
	w.track(h)
	f, err := pipeline.Decode[pipeline.Frame](msg.Data())
	if err != nil {
		w.deadLetter(context.Background(), h, "bad_message", fmt.Sprintf("undecodable Frame: %v", err), false)
		return
	}
	h.frame = f
	w.assemble(h)
}

func (w *Worker) track(h *held) {
	w.mu.Lock()
	w.held[h] = struct{}{}
	n := len(w.held)
	w.mu.Unlock()
	w.m.inFlight.Set(float64(n))
}

// release forgets a message that was acked, nakked or terminated, freeing its slot.
func (w *Worker) release(h *held) {
	w.mu.Lock()
	_, ok := w.held[h]
	delete(w.held, h)
	n := len(w.held)
	w.mu.Unlock()
	if ok {
		<-w.slots
		w.m.inFlight.Set(float64(n))
	}
}

func passageID(f pipeline.Frame) string {
	if f.PassageID != "" {
		return f.PassageID
	}
	return "frame-" + f.ID
}

// assemble adds h to its passage and queues the passage when all its views are there.
func (w *Worker) assemble(h *held) {
	id := passageID(h.frame)
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.waiting[id]
	if p == nil {
		p = &passage{id: id, expected: w.cfg.expectedViews(h.frame)}
	}
	replaced := false
	for _, o := range p.items {
		if o.meta.Sequence.Stream != h.meta.Sequence.Stream && o.frame.View == h.frame.View {
			// One pass has one frame per view: a second one is another vehicle under a
			// colliding passage id. The group so far goes now; the newcomer starts its own.
			w.log.Warn("two frames of one view under one passage id; analysing them apart",
				"passage", id, "view", h.frame.View, "frames", []string{o.frame.ID, h.frame.ID})
			if p.timer != nil {
				p.timer.Stop()
			}
			delete(w.waiting, id)
			if w.closed {
				go w.handBack(p.items)
			} else {
				w.readyQ <- p
			}
			p = &passage{id: id, expected: w.cfg.expectedViews(h.frame)}
			break
		}
	}
	for i, o := range p.items {
		if o.meta.Sequence.Stream == h.meta.Sequence.Stream {
			// A redelivery of a message we still hold (a progress ack got lost): only the
			// newest delivery's ack counts.
			p.items[i] = h
			delete(w.held, o)
			<-w.slots
			replaced = true
			break
		}
	}
	if !replaced {
		p.items = append(p.items, h)
	}
	if w.closed {
		delete(w.waiting, id)
		go w.handBack(p.items)
		return
	}
	complete := w.cfg.PassageWait == 0 || (p.expected > 0 && len(p.items) >= p.expected)
	if complete {
		if p.timer != nil {
			p.timer.Stop()
		}
		delete(w.waiting, id)
		w.readyQ <- p // never blocks: every queued passage holds at least one of MaxInFlight slots
		return
	}
	if w.waiting[id] == nil {
		w.waiting[id] = p
		p.timer = time.AfterFunc(w.cfg.PassageWait, func() { w.waitOver(p) })
	}
}

// waitOver queues a passage whose wait for late views is over.
func (w *Worker) waitOver(p *passage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting[p.id] != p {
		return // completed meanwhile
	}
	delete(w.waiting, p.id)
	if w.closed {
		go w.handBack(p.items)
		return
	}
	w.readyQ <- p
}

// handBackWaiting naks every passage still waiting for views (shutdown).
func (w *Worker) handBackWaiting() {
	w.mu.Lock()
	w.closed = true
	var items []*held
	for id, p := range w.waiting {
		if p.timer != nil {
			p.timer.Stop()
		}
		items = append(items, p.items...)
		delete(w.waiting, id)
	}
	w.mu.Unlock()
	w.handBack(items)
}

// handBackQueued naks passages queued but not started (shutdown).
func (w *Worker) handBackQueued() {
	for {
		select {
		case p := <-w.readyQ:
			w.handBack(p.items)
		default:
			return
		}
	}
}

// handBack makes messages available again at once, for another worker or our restart.
func (w *Worker) handBack(items []*held) {
	for _, h := range items {
		if err := h.msg.Nak(); err != nil {
			w.log.Warn("nak failed; the frame will be redelivered after ack_wait", "frame", h.frame.ID, "err", err)
		}
		w.release(h)
	}
}

// dispatch starts a goroutine per passage until stop.
func (w *Worker) dispatch(ctx context.Context, stop <-chan struct{}, passages *sync.WaitGroup) {
	for {
		// Prefer stopping: a passage queued at shutdown is handed back, not started.
		select {
		case <-stop:
			return
		default:
		}
		select {
		case <-stop:
			return
		case p := <-w.readyQ:
			passages.Add(1)
			go func() {
				defer passages.Done()
				w.process(ctx, p, stop)
			}()
		}
	}
}

// progressLoop keeps every held message alive while it waits or is analysed.
func (w *Worker) progressLoop(stop <-chan struct{}) {
	t := time.NewTicker(w.cfg.progressInterval())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		hs := make([]*held, 0, len(w.held))
		for h := range w.held {
			hs = append(hs, h)
		}
		w.mu.Unlock()
		for _, h := range hs {
			if err := h.msg.InProgress(); err != nil {
				w.log.Warn("progress ack failed", "frame", h.frame.ID, "err", err)
			}
		}
	}
}

// metricsLoop polls the consumer for lag and pending counts.
func (w *Worker) metricsLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.MetricsInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, w.cfg.MetricsInterval)
		ci, err := w.cons.Info(ictx)
		cancel()
		if err == nil {
			w.m.pending.Set(float64(ci.NumPending))
			w.m.ackPending.Set(float64(ci.NumAckPending))
			w.m.redelivered.Set(float64(ci.NumRedelivered))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sortItems orders a passage's views so names, keys and analyser input are deterministic
// across redeliveries.
func sortItems(items []*held) {
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].frame, items[j].frame
		if a.View != b.View {
			return a.View < b.View
		}
		return a.ID < b.ID
	})
}

// closeAnalyzers releases the analysers' resources (ONNX sessions) once Run is done with them.
func (w *Worker) closeAnalyzers() {
	for {
		select {
		case a := <-w.pool:
			if c, ok := a.(interface{ Close() error }); ok {
				if err := c.Close(); err != nil {
					w.log.Warn("closing an analyser failed", "err", err)
				}
			}
		default:
			return
		}
	}
}
