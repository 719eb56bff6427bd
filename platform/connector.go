// Package platform sends confirmed cases to the national fines platform exactly once: it
// consumes the FINES outbox, turns each FineRecord into a fine record priced from the offence
// catalogue, checks it against the published JSON Schema and POSTs it with an
// Idempotency-Key (or, with no endpoint configured, appends it to a local JSON-lines
// ledger). Outcomes go back to the review stage as FineResult messages and to AUDIT.
package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // Europe/Brussels must resolve on minimal images too

	"github.com/crossborder/offencecam/internal/backoff"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossborder/offencecam/pipeline"
)

// finishGrace bounds recording an outcome after shutdown has begun.
const finishGrace = 5 * time.Second

// Actor is the AUDIT actor of everything the connector records.
const Actor = "system:platform"

// Audit actions.
const (
	AuditAttempt = "fine_attempt" // one delivery attempt and its outcome
	AuditInvalid = "fine_invalid" // the record failed the catalogue or the schema; not sent
)

// Deps are what the connector is given.
type Deps struct {
	JS       jetstream.JetStream
	Registry prometheus.Registerer // nil: metrics are not registered
	Log      *slog.Logger          // nil: slog.Default()
	DataDir  string                // holds the default ledger
}

// Connector is the FINES outbox consumer.
type Connector struct {
	deps    Deps
	cfg     Config
	log     *slog.Logger
	builder *Builder
	schema  *Schema
	cat     *Catalogue
	token   string
	met     *metrics
	ledger  string // ledger path in local mode

	fetchWait time.Duration
	ready     atomic.Bool
}

type metrics struct {
	attempts *prometheus.CounterVec
	records  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offencecam_platform_attempts_total",
			Help: "Fine record delivery attempts by outcome (created, duplicate, rejected, invalid, network_error, timeout, server_error, throttled, endpoint_error, unexpected_status, ledger_error).",
		}, []string{"outcome"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "offencecam_platform_records_total",
			Help: "Fine records the platform (or the local ledger) confirmed holding.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.attempts); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("platform: register metrics: %w", err)
		}
		m.attempts = are.ExistingCollector.(*prometheus.CounterVec)
	}
	if err := reg.Register(m.records); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("platform: register metrics: %w", err)
		}
		m.records = are.ExistingCollector.(prometheus.Counter)
	}
	return m, nil
}

// New checks the configuration, loads the catalogue (refusing one that does not cover every
// offence kind the detector can flag) and compiles the schema. Nothing is sent before Run.
func New(deps Deps, cfg Config) (*Connector, error) {
	if deps.JS == nil {
		return nil, errors.New("platform: Deps.JS is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("stage", "platform")
	cat, err := LoadCatalogue(cfg.Catalogue)
	if err != nil {
		return nil, fmt.Errorf("platform.catalogue: %w", err)
	}
	if err := cat.Covers(pipeline.OffenceKinds); err != nil {
		return nil, fmt.Errorf("platform.catalogue: %w", err)
	}
	if cat.Effective().After(time.Now()) {
		log.Warn("offence catalogue is not yet in effect", "version", cat.Version, "effective_date", cat.EffectiveDate)
	}
	langs, err := NewLanguages(cfg.Language)
	if err != nil {
		return nil, err
	}
	zone, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("platform.time_zone: %w", err)
	}
	schema, err := CompileSchema()
	if err != nil {
		return nil, err
	}
	token := cfg.Token
	switch {
	case cfg.TokenFile != "":
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("platform.token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	case token == "":
		token = os.Getenv(TokenEnv)
	}
	met, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	c := &Connector{deps: deps, cfg: cfg, log: log, builder: NewBuilder(cat, langs, zone), schema: schema,
		cat: cat, token: token, met: met, fetchWait: 5 * time.Second}
	if cfg.Local() {
		c.ledger = cfg.Ledger
		if c.ledger == "" {
			if deps.DataDir == "" {
				return nil, errors.New("platform.ledger: empty and no data directory to put it in")
			}
			c.ledger = filepath.Join(deps.DataDir, "fines-ledger.jsonl")
		}
	}
	return c, nil
}

// Ready reports whether Run is consuming FINES, for /readyz.
func (c *Connector) Ready() error {
	if !c.ready.Load() {
		return errors.New("platform: not consuming FINES")
	}
	return nil
}

// Catalogue is the catalogue in use.
func (c *Connector) Catalogue() *Catalogue { return c.cat }

// LedgerPath is the local ledger's path, "" when an endpoint is configured.
func (c *Connector) LedgerPath() string { return c.ledger }

// ConsumerConfig is the FINES consumer the connector creates or updates. Every other
// consumer of FINES must filter on subjects that do not overlap fines.create (WorkQueue).
func ConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       pipeline.ConsumerPlatform,
		Description:   "platform connector: confirmed cases to the fines platform",
		FilterSubject: pipeline.SubjectFinesCreate,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		// A fine is retried for as long as the message lives: no delivery limit.
		MaxDeliver:    -1,
		MaxAckPending: max(cfg.Concurrency*4, 64),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Run consumes FINES until ctx ends, then returns nil once in-flight records have stopped
// (unfinished ones are redelivered to the next run). Other errors are startup failures.
func (c *Connector) Run(ctx context.Context) error {
	cons, err := c.deps.JS.CreateOrUpdateConsumer(ctx, pipeline.StreamFines, ConsumerConfig(c.cfg))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("platform: FINES consumer %s: %w", pipeline.ConsumerPlatform, err)
	}
	var s sink
	if c.cfg.Local() {
		l, err := openLedger(c.ledger, c.log)
		if err != nil {
			return err
		}
		c.log.Info("no fines platform endpoint configured: fine records go to the local ledger",
			"ledger", c.ledger, "records", l.count(), "catalogue", c.cat.Version)
		s = l
	} else {
		h, err := newHTTPSink(c.cfg, c.token)
		if err != nil {
			return err
		}
		c.log.Info("sending fine records to the fines platform", "config", c.cfg, "catalogue", c.cat.Version)
		s = h
	}
	defer s.close()
	c.ready.Store(true)
	defer c.ready.Store(false)

	var wg sync.WaitGroup
	for range c.cfg.Concurrency {
		wg.Go(func() { c.work(ctx, cons, s) })
	}
	wg.Wait()
	c.log.Info("platform connector stopped")
	return nil
}

func (c *Connector) work(ctx context.Context, cons jetstream.Consumer, s sink) {
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, c.fetchWait)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) &&
				!errors.Is(err, jetstream.ErrNoMessages) {
				c.log.Warn("FINES fetch failed", "err", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		c.handle(ctx, msg, s)
	}
}

// handle takes one FINES message to a final outcome, or leaves it for redelivery when ctx
// ends first.
func (c *Connector) handle(ctx context.Context, msg jetstream.Msg, s sink) {
	// Progress signals keep the message ours while we send or back off, for as long as that
	// takes; AckWait then only decides how soon a crashed connector's messages come back.
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(max(c.cfg.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					c.log.Warn("FINES in-progress signal failed", "err", err)
				}
			}
		}
	}()
	defer func() { stopHB(); <-hbDone }()

	var delivery uint64
	if md, err := msg.Metadata(); err == nil {
		delivery = md.NumDelivered
	}
	f, err := pipeline.Decode[pipeline.FineRecord](msg.Data())
	if err == nil && strings.TrimSpace(f.CaseID) == "" {
		err = errors.New("case_id is empty")
	}
	if err != nil {
		c.deadLetter(ctx, msg, delivery, err)
		return
	}
	log := c.log.With("case", f.CaseID, "delivery", delivery)

	body, err := c.recordBody(f)
	if err != nil {
		c.met.attempts.WithLabelValues(OutcomeInvalid).Inc()
		log.Warn("fine record invalid: rejected without sending", "err", err)
		res := attemptResult{kind: resultRejected, outcome: OutcomeInvalid, message: err.Error()}
		c.finish(ctx, log, msg, f.CaseID, delivery, 0, res, s.mode())
		return
	}

	if err := c.publishResult(ctx, pipeline.FineResult{V: pipeline.Version, CaseID: f.CaseID,
		Status: pipeline.FineSent, At: time.Now().UTC()}); err != nil {
		c.abandon(log, msg)
		return
	}
	for attempt := 1; ; attempt++ {
		res := s.deliver(ctx, f.CaseID, body)
		if ctx.Err() != nil && res.kind == resultRetry {
			c.abandon(log, msg) // shutdown, not an outcome: the next run repeats the attempt
			return
		}
		c.met.attempts.WithLabelValues(res.outcome).Inc()
		if res.kind != resultRetry {
			c.finish(ctx, log, msg, f.CaseID, delivery, attempt, res, s.mode())
			return
		}
		// Earlier deliveries were earlier attempts (or crashes): keep growing the backoff.
		wait := c.backoff(attempt+int(max(delivery, 1)-1), res.retryAfter)
		log.Warn("fine record not delivered, will retry", "attempt", attempt, "outcome", res.outcome,
			"status", res.status, "message", res.message, "retry_in", wait)
		if res.retryAfter > 0 {
			// The platform named a time: hand the message back to the server with that
			// delay first, so the promise holds even if this process dies meanwhile.
			c.abandonFor(log, msg, wait)
			c.audit(ctx, log, f.CaseID, delivery, attempt, res, s.mode(), wait, false)
			return
		}
		c.audit(ctx, log, f.CaseID, delivery, attempt, res, s.mode(), wait, false)
		until := time.Now().Add(wait)
		if !sleepCtx(ctx, wait) {
			// Shutdown mid-backoff: the redelivery keeps the rest of the wait, so a
			// restart does not break a Retry-After promise.
			c.abandonFor(log, msg, time.Until(until))
			return
		}
	}
}

// recordBody builds the record and enforces the schema: a body that leaves here is valid.
func (c *Connector) recordBody(f pipeline.FineRecord) ([]byte, error) {
	rec, err := c.builder.Build(f)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal: %v", ErrRecord, err)
	}
	if err := c.schema.Validate(body); err != nil {
		return nil, err
	}
	return body, nil
}

// finish records a final outcome durably (FineResult, then AUDIT) and only then acks.
func (c *Connector) finish(ctx context.Context, log *slog.Logger, msg jetstream.Msg, caseID string,
	delivery uint64, attempt int, res attemptResult, mode string) {
	// An outcome the platform has given must be recorded even when shutdown has begun, or
	// the next run would have to ask again; a short grace bounds how long that may take.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishGrace)
	defer cancel()
	status := pipeline.FineCreated
	if res.kind == resultRejected {
		status = pipeline.FineRejected
	}
	fr := pipeline.FineResult{V: pipeline.Version, CaseID: caseID, Status: status, Reference: res.reference,
		Attempts: attempt, At: time.Now().UTC()}
	if status == pipeline.FineRejected || res.reference == "" {
		fr.Message = res.message
	}
	if err := c.publishResult(ctx, fr); err != nil {
		c.abandon(log, msg)
		return
	}
	if !c.audit(ctx, log, caseID, delivery, attempt, res, mode, 0, true) {
		c.abandon(log, msg)
		return
	}
	if status == pipeline.FineCreated {
		c.met.records.Inc()
		log.Info("fine record created", "reference", res.reference, "outcome", res.outcome, "attempts", attempt)
	} else {
		log.Warn("fine record rejected", "message", res.message, "outcome", res.outcome, "status", res.status)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The outcome is recorded; the redelivery will find the record already held
		// (409 / ledger) and re-publish the same, deduplicated FineResult.
		log.Warn("FINES ack failed; the case will be redelivered and deduplicated", "err", err)
	}
}

// abandon leaves a message for redelivery without waiting for AckWait.
func (c *Connector) abandon(log *slog.Logger, msg jetstream.Msg) { c.abandonFor(log, msg, 0) }

// abandonFor leaves a message for redelivery after delay.
func (c *Connector) abandonFor(log *slog.Logger, msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		log.Debug("FINES nak failed; the message returns after ack_wait", "err", err)
	}
}

// publishResult publishes a FineResult and waits for the stream's ack, retrying until ctx
// ends. Nats-Msg-Id = case id/status makes repeats (after a crash) no-ops.
func (c *Connector) publishResult(ctx context.Context, fr pipeline.FineResult) error {
	data, err := json.Marshal(fr)
	if err != nil {
		return err
	}
	return c.publishDurable(ctx, pipeline.FineResultSubject(fr.CaseID), fr.CaseID+"/"+fr.Status, data)
}

func (c *Connector) publishDurable(ctx context.Context, subject, msgID string, data []byte) error {
	wait := 100 * time.Millisecond
	for {
		_, err := c.deps.JS.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("publish failed, retrying", "subject", subject, "err", err, "in", wait)
		if !sleepCtx(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// audit records one attempt outcome. Final outcomes must be stored before the ack (the
// return value says so); a retry's audit is best effort so that an AUDIT hiccup does not
// hold up delivery.
func (c *Connector) audit(ctx context.Context, log *slog.Logger, caseID string, delivery uint64, attempt int,
	res attemptResult, mode string, retryIn time.Duration, final bool) bool {
	ev := pipeline.AuditEvent{V: pipeline.Version, At: time.Now().UTC(), Actor: Actor, Action: AuditAttempt,
		Entity: "fine", EntityID: caseID, Reason: res.message,
		Details: map[string]string{
			"outcome":  res.outcome,
			"attempt":  strconv.Itoa(attempt),
			"delivery": strconv.FormatUint(delivery, 10),
			"mode":     mode,
		}}
	if res.outcome == OutcomeInvalid {
		ev.Action = AuditInvalid
	}
	switch res.kind {
	case resultCreated:
		ev.From, ev.To = "sent", "fine_created"
	case resultRejected:
		ev.From, ev.To = "sent", "platform_rejected"
		if res.outcome == OutcomeInvalid {
			ev.From = "confirmed"
		}
	}
	if res.status != 0 {
		ev.Details["http_status"] = strconv.Itoa(res.status)
	}
	if res.reference != "" {
		ev.Details["reference"] = res.reference
	}
	if retryIn > 0 {
		ev.Details["retry_in"] = retryIn.String()
	}
	if c.cfg.Endpoint != "" {
		ev.Details["endpoint"] = c.cfg.Endpoint
	}
	data, err := json.Marshal(ev)
	if err != nil {
		log.Error("audit event", "err", err)
		return !final
	}
	id := fmt.Sprintf("platform/%s/%d/%d/%s", caseID, delivery, attempt, res.outcome)
	subj := pipeline.AuditSubject("fine", caseID)
	if final {
		return c.publishDurable(ctx, subj, id, data) == nil
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.deps.JS.Publish(pctx, subj, data, jetstream.WithMsgID(id)); err != nil {
		log.Warn("audit of a retried attempt not stored", "err", err)
	}
	return true
}

// deadLetter moves an undecodable FINES message to the DLQ and acks it: it can never become
// a fine, and a WorkQueue must not hold it forever. Its case id (Nats-Msg-Id) is reported
// rejected so the case does not wait in "confirmed" silently.
func (c *Connector) deadLetter(ctx context.Context, msg jetstream.Msg, delivery uint64, cause error) {
	reason := "undecodable FINES message: " + cause.Error()
	c.met.attempts.WithLabelValues(OutcomeInvalid).Inc()
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	e := pipeline.NewDLQEntry("platform", reason, pipeline.StreamFines, msg.Subject(), seq, delivery, msg.Data(), time.Now())
	if h := msg.Headers(); len(h) > 0 {
		e.Headers = map[string]string{}
		for k := range h {
			e.Headers[k] = h.Get(k)
		}
	}
	data, err := json.Marshal(e)
	if err == nil {
		err = c.publishDurable(ctx, pipeline.DLQSubject("platform"), fmt.Sprintf("platform/%d", seq), data)
	}
	if err != nil {
		c.abandon(c.log, msg)
		return
	}
	c.log.Error("FINES message moved to the DLQ", "reason", reason, "seq", seq)
	if id := msg.Headers().Get(nats.MsgIdHdr); id != "" {
		res := attemptResult{kind: resultRejected, outcome: OutcomeInvalid, message: reason}
		if c.publishResult(ctx, pipeline.FineResult{V: pipeline.Version, CaseID: id, Status: pipeline.FineRejected,
			Message: reason, At: time.Now().UTC()}) != nil || !c.audit(ctx, c.log, id, delivery, 0, res, "", 0, true) {
			c.abandon(c.log, msg)
			return
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		c.log.Warn("FINES ack of a dead-lettered message failed", "err", err)
	}
}

// backoff is capped exponential backoff with equal jitter (half fixed, half random, so
// retries from many connectors spread out but never collapse to zero), stretched to honour
// Retry-After up to max_retry_after.
func (c *Connector) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := backoff.Delay(attempt, c.cfg.MinBackoff, c.cfg.MaxBackoff)
	if retryAfter > d {
		d = min(retryAfter, max(c.cfg.MaxRetryAfter, d))
	}
	return d
}

// sleepCtx waits d, or less if ctx ends; it reports whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
