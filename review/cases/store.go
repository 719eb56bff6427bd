package cases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/nats-io/nats.go/jetstream"
)

// Lease reserves a case for one reviewer until Expires; it lives in the case record so that a
// KV update at the last revision is the only arbiter of who holds it.
type Lease struct {
	Holder   string    `json:"holder"`
	Stage    string    `json:"stage"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Case is one flagged passage under review, the value stored at its id in the `cases` KV.
type Case struct {
	V     int    `json:"v"`
	ID    string `json:"id"`
	State State  `json:"state"`
	// Detection is the detector's message as received (unknown fields kept).
	Detection pipeline.Detection `json:"detection"`
	// Flagged are the offence kinds the detector flagged; Offences the subset the reviews
	// confirmed so far.
	Flagged  []string `json:"flagged"`
	Offences []string `json:"offences,omitempty"`
	// Plate and Country are the current reading: the detector's, then each reviewer's correction.
	Plate           string              `json:"plate"`
	Country         string              `json:"country"`
	DetectedPlate   string              `json:"detected_plate,omitempty"`
	DetectedCountry string              `json:"detected_country,omitempty"`
	ModelVersion    string              `json:"model_version,omitempty"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	FirstReviewer   string              `json:"first_reviewer,omitempty"`
	Decisions       []pipeline.Decision `json:"decisions,omitempty"`
	Lease           *Lease              `json:"lease,omitempty"`
	Reason          string              `json:"reason,omitempty"`
	ConfirmedAt     time.Time           `json:"confirmed_at,omitzero"`
	// FinePublished is set once the FINES message is stored; the reaper republishes
	// (deduplicated by case id) confirmed cases where a crash left it unset.
	FinePublished   bool   `json:"fine_published,omitempty"`
	FineReference   string `json:"fine_reference,omitempty"`
	PlatformMessage string `json:"platform_message,omitempty"`
	// AuditOutbox holds the AUDIT entries of transitions stored but not yet known to be in the
	// AUDIT stream. Each entry is written in the same KV update as its transition, so a crash
	// between the update and the publish cannot lose it: the writer, or else the reaper,
	// publishes it (deduplicated by MsgID) and clears it.
	AuditOutbox []PendingAudit `json:"audit_outbox,omitempty"`
	// EvidencePurgedAt is when the retention sweep deleted the case's evidence images and
	// removed its plate readings; zero while they are kept.
	EvidencePurgedAt time.Time `json:"evidence_purged_at,omitzero"`
}

// PendingAudit is one AUDIT entry waiting in a case's outbox.
type PendingAudit struct {
	MsgID string              `json:"msg_id"`
	Event pipeline.AuditEvent `json:"event"`
}

// LeaseActive reports whether someone holds an unexpired lease at now.
func (c *Case) LeaseActive(now time.Time) bool { return c.Lease != nil && now.Before(c.Lease.Expires) }

// LeasedTo reports whether name holds an unexpired lease at now.
func (c *Case) LeasedTo(name string, now time.Time) bool {
	return c.LeaseActive(now) && c.Lease.Holder == name
}

// IDFor is the case id of a passage: the passage id made safe as a KV key and URL segment.
func IDFor(passageID string) string { return pipeline.Token(passageID) }

// Hooks let the service count what the store does without the store knowing Prometheus.
type Hooks struct {
	Decision     func(outcome string)
	LeaseExpired func()
}

// Config configures the store.
type Config struct {
	LeaseDuration time.Duration
	// ReasonCodes are the accepted reasons for a rejection or a dispute.
	ReasonCodes []string
	Now         func() time.Time
	Log         *slog.Logger
	Hooks       Hooks
}

// Store is the case store over the `cases` KV bucket.
type Store struct {
	kv    jetstream.KeyValue
	js    jetstream.JetStream
	audit *audit.Publisher
	cfg   Config
	log   *slog.Logger
	index *Index
}

// Open opens the case store and starts its in-memory index, which follows the bucket until
// ctx ends.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.LeaseDuration <= 0 {
		return nil, errors.New("cases: lease duration must be > 0")
	}
	kv, err := js.KeyValue(ctx, pipeline.KVCases)
	if err != nil {
		return nil, fmt.Errorf("cases: open KV %s: %w", pipeline.KVCases, err)
	}
	s := &Store{kv: kv, js: js, cfg: cfg, log: cfg.Log, audit: &audit.Publisher{JS: js, Now: cfg.Now}}
	s.index, err = startIndex(ctx, kv, cfg.Log)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.cfg.Now() }

// Index is the store's in-memory view of every case.
func (s *Store) Index() *Index { return s.index }

// Get reads a case and the revision it was read at.
func (s *Store) Get(ctx context.Context, id string) (*Case, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, 0, fmt.Errorf("case %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("case %q: get: %w", id, err)
	}
	var c Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return nil, 0, fmt.Errorf("case %q: decode: %w", id, err)
	}
	return &c, e.Revision(), nil
}

// put writes c at revision rev; a revision mismatch is ErrConflict.
func (s *Store) put(ctx context.Context, c *Case, rev uint64) (uint64, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("case %q: encode: %w", c.ID, err)
	}
	nrev, err := s.kv.Update(ctx, c.ID, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("case %q at revision %d: %w", c.ID, rev, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("case %q: update: %w", c.ID, err)
	}
	return nrev, nil
}

// CreateFromDetection makes the case of a flagged passage. It is idempotent: a redelivered
// Detection finds the key and succeeds without a second case. created says whether this call
// made it.
func (s *Store) CreateFromDetection(ctx context.Context, d pipeline.Detection) (created bool, err error) {
	if !d.Flagged {
		return false, nil
	}
	if strings.TrimSpace(d.PassageID) == "" {
		return false, errors.New("cases: detection without passage_id")
	}
	now := s.cfg.Now().UTC()
	c := &Case{V: pipeline.Version, ID: IDFor(d.PassageID), State: Pending, Detection: d,
		CreatedAt: now, UpdatedAt: now}
	for _, o := range d.Offences {
		if !slices.Contains(c.Flagged, o.Kind) {
			c.Flagged = append(c.Flagged, o.Kind)
		}
	}
	if p := BestPlate(d); p != nil {
		c.Plate, c.Country = p.Text, p.Country
		c.DetectedPlate, c.DetectedCountry = p.Text, p.Country
	}
	c.ModelVersion = ModelVersionOf(d)
	ev := pipeline.AuditEvent{V: pipeline.Version, At: now, Actor: "system:review", Action: "case_created",
		Entity: audit.EntityCase, EntityID: c.ID, To: string(Pending), PlateAfter: c.Plate,
		Details: map[string]string{"passage_id": d.PassageID, "camera": d.Camera, "offences": strings.Join(c.Flagged, ",")}}
	c.AuditOutbox = []PendingAudit{{MsgID: "case/" + c.ID + "/created", Event: ev}}
	data, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("case %q: encode: %w", c.ID, err)
	}
	rev, err := s.kv.Create(ctx, c.ID, data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		return false, fmt.Errorf("case %q: create: %w", c.ID, err)
	}
	// A failed flush leaves the entry in the outbox for the reaper.
	s.flushAudit(ctx, c, rev)
	return true, nil
}

// BestPlate is the detector's plate reading of the vehicle the first offence is about.
func BestPlate(d pipeline.Detection) *pipeline.Plate {
	if len(d.Offences) > 0 {
		if i := d.Offences[0].Vehicle; i >= 0 && i < len(d.Vehicles) && d.Vehicles[i].Plate != nil {
			return d.Vehicles[i].Plate
		}
	}
	for _, v := range d.Vehicles {
		if v.Plate != nil {
			return v.Plate
		}
	}
	return nil
}

// ModelVersionOf summarises the models that flagged a passage ("name@version+…") so that
// precision can be compared per model set.
func ModelVersionOf(d pipeline.Detection) string {
	parts := make([]string, 0, len(d.Models))
	for _, m := range d.Models {
		parts = append(parts, m.Name+"@"+m.Version)
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, "+")
}

// transition applies one state change through the table, writes it at rev and audits it.
// mutate adjusts the other fields; it runs after the table allowed the change.
func (s *Store) transition(ctx context.Context, c *Case, rev uint64, to State, actor Actor, action, reason string, mutate func(*Case)) (*Case, uint64, error) {
	if err := Allowed(c, to, actor); err != nil {
		return nil, 0, fmt.Errorf("case %q: %w", c.ID, err)
	}
	next := *c
	next.Decisions = slices.Clone(c.Decisions)
	from := c.State
	plateBefore := c.Plate
	now := s.cfg.Now().UTC()
	next.State = to
	next.UpdatedAt = now
	if mutate != nil {
		mutate(&next)
	}
	if to == Confirmed {
		next.ConfirmedAt = now
	}
	ev := pipeline.AuditEvent{V: pipeline.Version, At: now, Actor: actor.Name, Action: action, Entity: audit.EntityCase,
		EntityID: c.ID, From: string(from), To: string(to), Reason: reason, PlateBefore: plateBefore, PlateAfter: next.Plate,
		Details: map[string]string{"from_revision": fmt.Sprint(rev)}}
	if next.Country != c.Country {
		ev.Details["country_before"], ev.Details["country_after"] = c.Country, next.Country
	}
	if len(next.Offences) > 0 {
		ev.Details["offences"] = strings.Join(next.Offences, ",")
	}
	// The revision read is unique per transition of this case, so it names the entry.
	next.AuditOutbox = append(slices.Clone(c.AuditOutbox), PendingAudit{MsgID: fmt.Sprintf("case/%s/r%d", c.ID, rev), Event: ev})
	nrev, err := s.put(ctx, &next, rev)
	if err != nil {
		return nil, 0, err
	}
	if to == Confirmed {
		r, err := s.publishFine(ctx, &next, nrev)
		if err == nil {
			return &next, r, nil
		}
		s.log.Warn("FINES publish deferred to the reaper", "case", c.ID, "err", err)
	}
	if r, ok := s.flushAudit(ctx, &next, nrev); ok {
		nrev = r
	}
	return &next, nrev, nil
}

// publishOutbox publishes every pending AUDIT entry of c; false when one failed (it stays in
// the outbox for the reaper).
func (s *Store) publishOutbox(ctx context.Context, c *Case) bool {
	for _, p := range c.AuditOutbox {
		if err := s.audit.Publish(ctx, p.Event, p.MsgID); err != nil {
			s.log.Error("AUDIT publish failed; the entry stays in the case's outbox", "case", c.ID, "msg_id", p.MsgID, "err", err)
			return false
		}
	}
	return true
}

// flushAudit publishes c's outbox and clears it with an update at rev. When either step fails
// the stored outbox is left for the reaper (a republish is deduplicated by message id).
func (s *Store) flushAudit(ctx context.Context, c *Case, rev uint64) (uint64, bool) {
	if len(c.AuditOutbox) == 0 {
		return rev, true
	}
	if !s.publishOutbox(ctx, c) {
		return rev, false
	}
	pending := c.AuditOutbox
	c.AuditOutbox = nil
	nrev, err := s.put(ctx, c, rev)
	if err != nil {
		c.AuditOutbox = pending
		return rev, false
	}
	return nrev, true
}

// FineRecordOf is the FINES message of a confirmed case.
func FineRecordOf(c *Case) pipeline.FineRecord {
	d := c.Detection
	return pipeline.FineRecord{V: pipeline.Version, CaseID: c.ID, PassageID: d.PassageID, Camera: d.Camera,
		Site: d.Site, Location: d.Location, OffenceAt: d.CapturedAt, Offences: slices.Clone(c.Offences),
		Plate: c.Plate, Country: c.Country, Evidence: d.Evidence, Decisions: c.Decisions, Models: d.Models,
		ConfirmedAt: c.ConfirmedAt}
}

// publishFine puts the case on FINES (Nats-Msg-Id = case id, so a republish is a no-op) and
// records that it did.
func (s *Store) publishFine(ctx context.Context, c *Case, rev uint64) (uint64, error) {
	data, err := json.Marshal(FineRecordOf(c))
	if err != nil {
		return 0, fmt.Errorf("case %q: encode fine: %w", c.ID, err)
	}
	if _, err := s.js.Publish(ctx, pipeline.SubjectFinesCreate, data, jetstream.WithMsgID(c.ID)); err != nil {
		return 0, fmt.Errorf("case %q: publish fine: %w", c.ID, err)
	}
	c.FinePublished = true
	pending := c.AuditOutbox
	if len(pending) > 0 && s.publishOutbox(ctx, c) {
		c.AuditOutbox = nil // one update records both
	}
	nrev, err := s.put(ctx, c, rev)
	if err != nil {
		c.FinePublished, c.AuditOutbox = false, pending
		return 0, err
	}
	return nrev, nil
}

// Input is what a reviewer decides.
type Input struct {
	Outcome  string   `json:"outcome"` // pipeline.OutcomeConfirm or OutcomeReject
	Plate    string   `json:"plate,omitempty"`
	Country  string   `json:"country,omitempty"`
	Offences []string `json:"offences,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// NormalisePlate upper-cases a plate and strips separators, as the detector does.
func NormalisePlate(p string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(p) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (s *Store) validReason(r string) bool { return slices.Contains(s.cfg.ReasonCodes, r) }

// Decide records a human decision on a case the actor holds the lease of, at the revision
// read now: a concurrent change makes it ErrConflict, never a silent overwrite.
//
// Stage by stage: pending → first_confirmed (confirm) or rejected (reject with reason);
// first_confirmed → confirmed when the second reviewer confirms the same plate, country and
// offences, or disputed when they disagree or reject; disputed → confirmed or rejected by a
// supervisor.
func (s *Store) Decide(ctx context.Context, id string, actor Actor, in Input) (*Case, error) {
	c, rev, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.DecideAt(ctx, c, rev, actor, in)
}

// DecideAt is Decide on a case already read at rev.
func (s *Store) DecideAt(ctx context.Context, c *Case, rev uint64, actor Actor, in Input) (*Case, error) {
	now := s.cfg.Now()
	if !c.State.Reviewable() {
		return nil, fmt.Errorf("case %q is %s: %w", c.ID, c.State, ErrIllegalTransition)
	}
	if !c.LeasedTo(actor.Name, now) {
		return nil, fmt.Errorf("case %q: %w", c.ID, ErrNotLeased)
	}
	stage := StageFor(c.State)
	dec := pipeline.Decision{V: pipeline.Version, CaseID: c.ID, Stage: stage, Reviewer: actor.Name,
		Note: in.Note, DecidedAt: now.UTC()}
	var to State
	var reason string
	plate, country := c.Plate, c.Country
	offences := c.Offences
	if len(offences) == 0 {
		offences = c.Flagged
	}
	switch in.Outcome {
	case pipeline.OutcomeConfirm:
		if in.Plate != "" {
			plate = NormalisePlate(in.Plate)
		}
		if in.Country != "" {
			country = strings.ToUpper(strings.TrimSpace(in.Country))
		}
		if plate == "" {
			return nil, fmt.Errorf("%w: a confirmed case needs a plate", ErrBadDecision)
		}
		if len(country) != 2 {
			return nil, fmt.Errorf("%w: country %q is not an ISO 3166-1 alpha-2 code", ErrBadDecision, country)
		}
		chosen := in.Offences
		if chosen == nil {
			chosen = offences
		}
		var confirmed []string
		for _, k := range c.Flagged { // only flagged kinds, in the flagged order
			if slices.Contains(chosen, k) {
				confirmed = append(confirmed, k)
			}
		}
		for _, k := range chosen {
			if !slices.Contains(c.Flagged, k) {
				return nil, fmt.Errorf("%w: offence %q was not flagged", ErrBadDecision, k)
			}
		}
		if len(confirmed) == 0 {
			return nil, fmt.Errorf("%w: confirm at least one flagged offence, or reject", ErrBadDecision)
		}
		dec.Outcome, dec.Plate, dec.Country, dec.Offences = pipeline.OutcomeConfirm, plate, country, confirmed
		switch c.State {
		case Pending:
			to = FirstConfirmed
		case FirstConfirmed:
			to = Confirmed
			switch {
			case plate != c.Plate || country != c.Country:
				to, reason = Disputed, "plate_mismatch"
			case !slices.Equal(confirmed, c.Offences):
				to, reason = Disputed, "offence_mismatch"
			}
			if to == Disputed {
				dec.Outcome, dec.Reason = pipeline.OutcomeDispute, reason
			}
		case Disputed:
			to = Confirmed
		}
		offences = confirmed
	case pipeline.OutcomeReject:
		if !s.validReason(in.Reason) {
			return nil, fmt.Errorf("%w: reason %q is not one of %v", ErrBadDecision, in.Reason, s.cfg.ReasonCodes)
		}
		reason = in.Reason
		dec.Outcome, dec.Reason = pipeline.OutcomeReject, reason
		switch c.State {
		case Pending, Disputed:
			to = Rejected
		case FirstConfirmed:
			to = Disputed
			dec.Outcome = pipeline.OutcomeDispute
		}
	default:
		return nil, fmt.Errorf("%w: outcome %q", ErrBadDecision, in.Outcome)
	}
	next, _, err := s.transition(ctx, c, rev, to, actor, "decision_"+stage, reason, func(n *Case) {
		n.Plate, n.Country, n.Offences = plate, country, offences
		n.Decisions = append(n.Decisions, dec)
		n.Lease = nil
		n.Reason = reason
		if c.State == Pending && to == FirstConfirmed {
			n.FirstReviewer = actor.Name
		}
	})
	if err != nil {
		return nil, err
	}
	if s.cfg.Hooks.Decision != nil {
		s.cfg.Hooks.Decision(dec.Outcome)
	}
	return next, nil
}

// ApplyFineResult applies the platform connector's report: sent moves confirmed → sent;
// created and rejected move sent (passing through sent if that report was missed) to
// fine_created or platform_rejected. A report already applied is a no-op, so redelivery is
// harmless.
func (s *Store) ApplyFineResult(ctx context.Context, r pipeline.FineResult) error {
	sys := Actor{Name: "system:platform", Roles: []string{RoleSystem}}
	var target State
	switch r.Status {
	case pipeline.FineSent:
		target = Sent
	case pipeline.FineCreated:
		target = FineCreated
	case pipeline.FineRejected:
		target = PlatformRejected
	default:
		return fmt.Errorf("fine result for %q: unknown status %q", r.CaseID, r.Status)
	}
	for attempt := 0; attempt < 5; attempt++ {
		c, rev, err := s.Get(ctx, r.CaseID)
		if err != nil {
			return err
		}
		if c.State == target || (target == Sent && (c.State == FineCreated || c.State == PlatformRejected)) {
			return nil // already applied
		}
		if c.State == FineCreated || c.State == PlatformRejected {
			return fmt.Errorf("fine result %s for case %q in final state %s: %w", r.Status, c.ID, c.State, ErrIllegalTransition)
		}
		to := target
		if c.State == Confirmed && target != Sent {
			to = Sent // the "sent" report was lost or is late; pass through it
		}
		_, _, err = s.transition(ctx, c, rev, to, sys, "fine_"+r.Status, r.Message, func(n *Case) {
			if to == FineCreated {
				n.FineReference = r.Reference
			}
			if to == PlatformRejected {
				n.PlatformMessage = r.Message
			}
			n.FinePublished = true
		})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		if to == target {
			return nil
		}
	}
	return fmt.Errorf("fine result for %q: %w after retries", r.CaseID, ErrConflict)
}

// TransitionCase is the raw state change of a case read at rev, for administrative repair and
// tests; it goes through the same table, revision check and audit as decisions (the copy is
// not re-read, so a concurrent writer's change surfaces as ErrConflict).
func (s *Store) TransitionCase(ctx context.Context, c *Case, rev uint64, to State, actor Actor, reason string) (*Case, uint64, error) {
	return s.transition(ctx, c, rev, to, actor, "transition", reason, func(n *Case) {
		if c.State == Pending && to == FirstConfirmed {
			n.FirstReviewer = actor.Name
		}
	})
}

// ActorRetention is the actor of the evidence retention sweep in the AUDIT trail.
const ActorRetention = "system:retention"

// RecordPurge records, at rev, that the evidence objects of c are deleted (objects: how
// many) and removes every plate reading from the case: the detector's, the reviewers' and
// the current one. The states, decisions and their reasons stay, for statistics and audit.
// The AUDIT entry names the case, not the plate.
func (s *Store) RecordPurge(ctx context.Context, c *Case, rev uint64, reason string, objects int) (*Case, uint64, error) {
	if !c.EvidencePurgedAt.IsZero() {
		return c, rev, nil
	}
	now := s.cfg.Now().UTC()
	next := *c
	next.EvidencePurgedAt, next.UpdatedAt = now, now
	next.Plate, next.DetectedPlate = "", ""
	next.Detection.Vehicles = slices.Clone(c.Detection.Vehicles)
	for i := range next.Detection.Vehicles {
		next.Detection.Vehicles[i].Plate = nil
	}
	next.Decisions = slices.Clone(c.Decisions)
	for i := range next.Decisions {
		next.Decisions[i].Plate = ""
	}
	ev := pipeline.AuditEvent{V: pipeline.Version, At: now, Actor: ActorRetention, Action: "evidence_purged",
		Entity: audit.EntityCase, EntityID: c.ID, From: string(c.State), To: string(c.State), Reason: reason,
		Details: map[string]string{"objects": strconv.Itoa(objects), "from_revision": strconv.FormatUint(rev, 10)}}
	next.AuditOutbox = append(slices.Clone(c.AuditOutbox), PendingAudit{MsgID: "case/" + c.ID + "/purged", Event: ev})
	nrev, err := s.put(ctx, &next, rev)
	if err != nil {
		return nil, 0, err
	}
	if r, ok := s.flushAudit(ctx, &next, nrev); ok {
		nrev = r
	}
	return &next, nrev, nil
}

// AddLateView merges a later Detection of a case's passage (views that reached the detector
// after the passage was published) into the case: the frames the case does not have, with
// their vehicles, offences and evidence. It reports whether anything was added: a Detection
// whose frames the case already has (a redelivery) adds nothing. A case past review keeps
// what its reviewers decided on; the views are then only recorded in AUDIT.
func (s *Store) AddLateView(ctx context.Context, d pipeline.Detection) (bool, error) {
	id := IDFor(d.PassageID)
	for attempt := 0; ; attempt++ {
		c, rev, err := s.Get(ctx, id)
		if err != nil {
			return false, err
		}
		have := map[string]bool{}
		for _, f := range c.Detection.Frames {
			have[f.Bucket+"/"+f.Key] = true
		}
		var frames []pipeline.FrameRef
		var keys []string
		for _, f := range d.Frames {
			if !have[f.Bucket+"/"+f.Key] {
				frames = append(frames, f)
				keys = append(keys, f.Bucket+"/"+f.Key)
			}
		}
		if len(frames) == 0 {
			return false, nil
		}
		now := s.cfg.Now().UTC()
		kinds := make([]string, 0, len(d.Offences))
		for _, o := range d.Offences {
			kinds = append(kinds, o.Kind)
		}
		ev := pipeline.AuditEvent{V: pipeline.Version, At: now, Actor: "system:review", Action: "late_view_added",
			Entity: audit.EntityCase, EntityID: c.ID, From: string(c.State), To: string(c.State),
			Details: map[string]string{"frames": strings.Join(keys, " "), "offences": strings.Join(kinds, ",")}}
		if !c.State.Reviewable() || !c.EvidencePurgedAt.IsZero() {
			// Decided on what its reviewers saw: recorded, not merged (the AUDIT stream's
			// dedup window keeps a redelivery from recording it twice).
			ev.Action = "late_view_ignored"
			sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
			return false, s.audit.Publish(ctx, ev, "case/"+c.ID+"/late/"+hex.EncodeToString(sum[:8]))
		}
		next := *c
		next.UpdatedAt = now
		next.Detection.Frames = append(slices.Clone(c.Detection.Frames), frames...)
		offset := len(c.Detection.Vehicles)
		next.Detection.Vehicles = append(slices.Clone(c.Detection.Vehicles), d.Vehicles...)
		next.Detection.Offences = slices.Clone(c.Detection.Offences)
		next.Flagged = slices.Clone(c.Flagged)
		for _, o := range d.Offences {
			o.Vehicle += offset
			next.Detection.Offences = append(next.Detection.Offences, o)
			if !slices.Contains(next.Flagged, o.Kind) {
				next.Flagged = append(next.Flagged, o.Kind)
			}
		}
		stored := map[string]bool{}
		for _, e := range c.Detection.Evidence {
			stored[e.Bucket+"/"+e.Key] = true
		}
		next.Detection.Evidence = slices.Clone(c.Detection.Evidence)
		for _, e := range d.Evidence {
			if !stored[e.Bucket+"/"+e.Key] {
				next.Detection.Evidence = append(next.Detection.Evidence, e)
			}
		}
		// A plate the first views could not read comes from the late ones; a reading (the
		// detector's or a reviewer's) is never replaced.
		if p := BestPlate(d); p != nil && c.Plate == "" {
			next.Plate, next.Country = p.Text, p.Country
			next.DetectedPlate, next.DetectedCountry = p.Text, p.Country
		}
		ev.PlateAfter = next.Plate
		next.AuditOutbox = append(slices.Clone(c.AuditOutbox), PendingAudit{MsgID: fmt.Sprintf("case/%s/r%d", c.ID, rev), Event: ev})
		nrev, err := s.put(ctx, &next, rev)
		if errors.Is(err, ErrConflict) && attempt < 10 {
			continue // a reviewer or another instance wrote first: merge into what it wrote
		}
		if err != nil {
			return false, err
		}
		s.flushAudit(ctx, &next, nrev)
		return true, nil
	}
}
