// Package audit writes and reads the review stage's entries in the append-only AUDIT stream
// (who did what, when, to which case, user or evidence object).
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

// Entities the review stage writes about.
const (
	EntityCase     = "case"
	EntityEvidence = "evidence"
	EntityUser     = "user"
)

// Publisher appends events to AUDIT.
type Publisher struct {
	JS  jetstream.JetStream
	Now func() time.Time
}

// Publish appends ev on audit.<entity>.<id>. msgID, when set, makes a retried publish of the
// same event a no-op inside the stream's dedup window. The publish is retried briefly because
// a missing audit entry is worse than a slow request.
func (p *Publisher) Publish(ctx context.Context, ev pipeline.AuditEvent, msgID string) error {
	if ev.V == 0 {
		ev.V = pipeline.Version
	}
	if ev.At.IsZero() {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		ev.At = now()
	}
	ev.At = ev.At.UTC()
	data, err := ev.MarshalJSON()
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	subject := pipeline.AuditSubject(ev.Entity, ev.EntityID)
	var last error
	for attempt := 0; attempt < 4; attempt++ {
		if _, last = p.JS.Publish(ctx, subject, data, opts...); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit: publish %s: %w (last error: %v)", subject, ctx.Err(), last)
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
	return fmt.Errorf("audit: publish %s: %w", subject, last)
}

// Record is one stored audit event with its stream sequence.
type Record struct {
	Seq   uint64
	Event pipeline.AuditEvent
}

// Query selects audit events. Subjects filters by subject (e.g. audit.case.<id>); empty means
// all of AUDIT. Actor, when set, keeps only that actor's events. Only the last Scan messages
// matching Subjects are examined (0 = 10000), so a per-user view of a ten-year stream stays
// bounded; results come oldest first.
type Query struct {
	Subjects []string
	Actor    string
	Scan     int
}

// Read returns the events a query selects.
func Read(ctx context.Context, js jetstream.JetStream, q Query) ([]Record, error) {
	scan := q.Scan
	if scan <= 0 {
		scan = 10000
	}
	stream, err := js.Stream(ctx, pipeline.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("audit: open stream: %w", err)
	}
	subjects := q.Subjects
	if len(subjects) == 0 {
		subjects = []string{pipeline.SubjectAuditAll}
	}
	cc := jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	}
	if len(q.Subjects) == 0 {
		// Without a subject filter only the tail of the stream is read.
		info, err := stream.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: stream info: %w", err)
		}
		if last := info.State.LastSeq; last > uint64(scan) {
			cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cc.OptStartSeq = last - uint64(scan) + 1
		}
	}
	cons, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("audit: consumer: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	skip := uint64(0)
	if len(q.Subjects) > 0 && pending > uint64(scan) {
		skip = pending - uint64(scan)
	}
	var out []Record
	for read := uint64(0); read < pending; {
		batch, err := cons.Fetch(int(min(pending-read, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("audit: fetch: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			read++
			if read <= skip {
				continue
			}
			ev, err := pipeline.Decode[pipeline.AuditEvent](m.Data())
			if err != nil {
				continue // an entry this build cannot read is still in the stream for others
			}
			if q.Actor != "" && ev.Actor != q.Actor {
				continue
			}
			md, _ := m.Metadata()
			var seq uint64
			if md != nil {
				seq = md.Sequence.Stream
			}
			out = append(out, Record{Seq: seq, Event: ev})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("audit: fetch: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// CaseSubjects are the subjects holding everything about one case: its transitions and every
// view of its evidence.
func CaseSubjects(caseID string) []string {
	return []string{pipeline.AuditSubject(EntityCase, caseID), pipeline.AuditSubject(EntityEvidence, caseID)}
}
