package review

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/accounts"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what the review stage runs on.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Store    objstore.Store // evidence images, bucket pipeline.BucketEvidence
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Now is the clock (tests inject one to expire leases and sessions without waiting);
	// nil means time.Now.
	Now func() time.Time
}

// Service is a running review stage: case store, accounts, web UI and API.
type Service struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	cases    *cases.Store
	accounts *accounts.Store
	sessions *accounts.Sessions
	audit    *audit.Publisher
	metrics  *metrics
	limiter  *loginLimiter
	tmpl     map[string]*template.Template
	handler  http.Handler
	runOnce  sync.Once
}

// New opens the case store (its in-memory index follows the `cases` bucket until ctx ends,
// so pass a context that lives as long as the service), provisions the accounts and
// sessions buckets, and registers the metrics.
func New(ctx context.Context, deps Deps, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("review: Deps.JS is required")
	}
	if deps.Store == nil {
		return nil, errors.New("review: Deps.Store is required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Log.With("stage", "review"), now: deps.Now,
		audit: &audit.Publisher{JS: deps.JS, Now: deps.Now}}
	s.metrics = newMetrics()
	var err error
	s.cases, err = cases.Open(ctx, deps.JS, cases.Config{
		LeaseDuration: cfg.LeaseDuration, ReasonCodes: cfg.ReasonCodes, Now: deps.Now, Log: s.log,
		Hooks: cases.Hooks{
			Decision:     func(o string) { s.metrics.decisions.WithLabelValues(o).Inc() },
			LeaseExpired: func() { s.metrics.leaseExpiries.Inc() },
		},
	})
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	s.accounts, err = accounts.Open(ctx, deps.JS, cfg.Replicas, accounts.Options{
		LockoutThreshold: cfg.LockoutThreshold, LockoutDuration: cfg.LockoutDuration, Now: deps.Now})
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	s.sessions, err = accounts.OpenSessions(ctx, deps.JS, cfg.Replicas, cfg.SessionIdle, cfg.SessionAbsolute, deps.Now)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	if err := s.metrics.register(deps.Registry, s.cases.Index(), deps.Now); err != nil {
		return nil, fmt.Errorf("review: metrics: %w", err)
	}
	s.limiter = newLoginLimiter(cfg.LoginRatePerMinute, deps.Now)
	if s.tmpl, err = parseTemplates(); err != nil {
		return nil, fmt.Errorf("review: templates: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// Cases is the case store (for the `review` command and tests).
func (s *Service) Cases() *cases.Store { return s.cases }

// Accounts is the accounts store (for `offencecam review user …`).
func (s *Service) Accounts() *accounts.Store { return s.accounts }

// Ready reports, for /readyz, whether the case index has caught up with the cases bucket
// (NATS reachable and the index following it).
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.cases.Index().Sync(ctx); err != nil {
		return fmt.Errorf("review: case index not current: %w", err)
	}
	return nil
}

// Handler is the web UI and JSON API. It uses no path under /metrics, /healthz or /readyz.
func (s *Service) Handler() http.Handler { return s.handler }

// Run consumes DETECTIONS (making cases) and the platform's fine results, returns expired
// leases to the queue and deletes evidence past its retention period, until ctx ends; it
// returns nil on a clean stop.
func (s *Service) Run(ctx context.Context) error {
	det, err := s.deps.JS.CreateOrUpdateConsumer(ctx, pipeline.StreamDetections, jetstream.ConsumerConfig{
		Durable: pipeline.ConsumerReview, Description: "review: one case per flagged passage",
		FilterSubject: pipeline.SubjectDetectionsAll, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: maxDeliver, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("review: consumer %s: %w", pipeline.ConsumerReview, err)
	}
	res, err := s.deps.JS.CreateOrUpdateConsumer(ctx, pipeline.StreamFines, jetstream.ConsumerConfig{
		Durable: pipeline.ConsumerReviewResults, Description: "review: platform outcomes per case",
		FilterSubject: pipeline.SubjectFineResults, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: maxDeliver, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("review: consumer %s: %w", pipeline.ConsumerReviewResults, err)
	}
	dc, err := det.Consume(func(m jetstream.Msg) { s.handleDetection(ctx, m) })
	if err != nil {
		return fmt.Errorf("review: consume detections: %w", err)
	}
	defer dc.Stop()
	rc, err := res.Consume(func(m jetstream.Msg) { s.handleFineResult(ctx, m) })
	if err != nil {
		return fmt.Errorf("review: consume fine results: %w", err)
	}
	defer rc.Stop()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.cases.RunReaper(ctx, s.cfg.ReaperInterval)
	}()
	go func() {
		defer wg.Done()
		s.runRetention(ctx, s.cfg.RetentionInterval)
	}()
	<-ctx.Done()
	wg.Wait()
	return nil
}

// EnsureFirstAdmin creates the account "admin" with a random one-time password when no
// account exists, and prints the password once to w. The password must be changed at first
// login. With accounts present it does nothing.
func (s *Service) EnsureFirstAdmin(ctx context.Context, w io.Writer) error {
	empty, err := s.accounts.Empty(ctx)
	if err != nil {
		return fmt.Errorf("review: first admin: %w", err)
	}
	if !empty {
		return nil
	}
	pw, err := accounts.RandomPassword()
	if err != nil {
		return err
	}
	err = s.accounts.Add(ctx, "admin", pw, []string{cases.RoleAdmin}, s.cfg.DefaultLanguage, true)
	if errors.Is(err, accounts.ErrExists) {
		return nil // another instance won the race and printed its own password
	}
	if err != nil {
		return fmt.Errorf("review: first admin: %w", err)
	}
	if err := s.audit.Publish(ctx, pipeline.AuditEvent{Actor: "system:review", Action: "user_created",
		Entity: audit.EntityUser, EntityID: "admin", Details: map[string]string{"roles": "admin", "first_admin": "true"}}, ""); err != nil {
		s.log.Error("audit of first admin creation failed", "err", err)
	}
	_, err = fmt.Fprintf(w, "offencecam review: created the first account.\n  user:     admin\n  password: %s\nThis one-time password is shown only now; it must be changed at first login.\n", pw)
	return err
}

const maxDeliver = 10

func (s *Service) dlq(ctx context.Context, m jetstream.Msg, reason string) {
	md, _ := m.Metadata()
	var seq, deliveries uint64
	stream := ""
	if md != nil {
		seq, deliveries, stream = md.Sequence.Stream, md.NumDelivered, md.Stream
	}
	e := pipeline.NewDLQEntry("review", reason, stream, m.Subject(), seq, deliveries, m.Data(), s.now())
	data, err := e.MarshalJSON()
	if err == nil {
		_, err = s.deps.JS.Publish(ctx, pipeline.DLQSubject("review"), data)
	}
	if err != nil {
		s.log.Error("DLQ publish failed; leaving the message for redelivery", "subject", m.Subject(), "err", err)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.Term()
}

func lastDelivery(m jetstream.Msg) bool {
	md, err := m.Metadata()
	return err == nil && md.NumDelivered >= maxDeliver
}

func (s *Service) handleDetection(ctx context.Context, m jetstream.Msg) {
	d, err := pipeline.Decode[pipeline.Detection](m.Data())
	if err != nil {
		s.metrics.detections.WithLabelValues("invalid").Inc()
		s.log.Warn("undecodable detection sent to DLQ", "subject", m.Subject(), "err", err)
		s.dlq(ctx, m, err.Error())
		return
	}
	created, err := s.cases.CreateFromDetection(ctx, d)
	late := false
	if err == nil && !created && d.Flagged {
		// The case exists: a redelivery, or views of its passage that came late.
		late, err = s.cases.AddLateView(ctx, d)
	}
	switch {
	case err != nil:
		s.log.Warn("case creation or late view failed", "passage", d.PassageID, "err", err)
		if lastDelivery(m) {
			s.dlq(ctx, m, err.Error())
			return
		}
		_ = m.NakWithDelay(2 * time.Second)
		return
	case !d.Flagged:
		s.metrics.detections.WithLabelValues("not_flagged").Inc()
	case created:
		s.metrics.detections.WithLabelValues("created").Inc()
	case late:
		s.metrics.detections.WithLabelValues("late_view").Inc()
	default:
		s.metrics.detections.WithLabelValues("duplicate").Inc()
	}
	if err := m.Ack(); err != nil {
		s.log.Warn("ack detection", "passage", d.PassageID, "err", err)
	}
}

func (s *Service) handleFineResult(ctx context.Context, m jetstream.Msg) {
	r, err := pipeline.Decode[pipeline.FineResult](m.Data())
	if err != nil {
		s.log.Warn("undecodable fine result sent to DLQ", "subject", m.Subject(), "err", err)
		s.dlq(ctx, m, err.Error())
		return
	}
	err = s.cases.ApplyFineResult(ctx, r)
	switch {
	case err == nil:
		_ = m.Ack()
	case errors.Is(err, cases.ErrNotFound), errors.Is(err, cases.ErrIllegalTransition):
		s.log.Warn("fine result cannot apply; sent to DLQ", "case", r.CaseID, "status", r.Status, "err", err)
		s.dlq(ctx, m, err.Error())
	default:
		if lastDelivery(m) {
			s.dlq(ctx, m, err.Error())
			return
		}
		s.log.Warn("fine result failed; will retry", "case", r.CaseID, "err", err)
		_ = m.NakWithDelay(2 * time.Second)
	}
}
