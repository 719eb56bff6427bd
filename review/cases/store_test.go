package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var reasons = []string{"not_driver", "not_phone", "belt_visible", "plate_unreadable", "priority_vehicle", "duplicate"}

type env struct {
	srv   *natstest.Server
	store *Store
	clock *fakeClock
	ctx   context.Context
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := natstest.Start(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clk := &fakeClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	st, err := Open(ctx, srv.JS, Config{LeaseDuration: 5 * time.Minute, ReasonCodes: reasons, Now: clk.Now})
	require.NoError(t, err)
	return &env{srv: srv, store: st, clock: clk, ctx: ctx}
}

func detection(id string, at time.Time) pipeline.Detection {
	return pipeline.Detection{V: pipeline.Version, PassageID: id, Camera: "cam-1", Site: "E40-km12", CapturedAt: at,
		DetectedAt: at.Add(time.Second), Flagged: true,
		Vehicles: []pipeline.Vehicle{{Class: "car", Score: .9, Plate: &pipeline.Plate{Text: "1ABC234", Country: "BE", Confidence: .8}}},
		Offences: []pipeline.Offence{{Kind: pipeline.OffencePhone, Score: .9}, {Kind: pipeline.OffenceSeatbelt, Score: .7}},
		Models:   []pipeline.ModelRef{{Name: "yolox-nano", Version: "1"}},
		Evidence: []pipeline.Evidence{{Kind: pipeline.EvidenceAnnotated, Bucket: pipeline.BucketEvidence, Key: id + "/a.jpg", SHA256: "00"}}}
}

// seed stores a case directly in the given state (bypassing the workflow) for table tests.
func (e *env) seed(t testing.TB, id string, st State, first string) {
	t.Helper()
	created, err := e.store.CreateFromDetection(e.ctx, detection(id, e.clock.Now()))
	require.NoError(t, err)
	require.True(t, created)
	c, rev, err := e.store.Get(e.ctx, id)
	require.NoError(t, err)
	c.State, c.FirstReviewer = st, first
	c.Offences = c.Flagged
	_, err = e.store.put(e.ctx, c, rev)
	require.NoError(t, err)
}

var everyone = Actor{Name: "boss", Roles: []string{RoleReviewer, RoleSupervisor, RoleSystem}}

func TestEveryLegalTransition(t *testing.T) {
	e := newEnv(t)
	for i, r := range transitions {
		id := fmt.Sprintf("legal-%d", i)
		e.seed(t, id, r.from, "alice")
		actor := Actor{Name: "bob", Roles: r.roles[:1]}
		c, rev, err := e.store.Get(e.ctx, id)
		require.NoError(t, err)
		got, _, err := e.store.TransitionCase(e.ctx, c, rev, r.to, actor, "")
		require.NoError(t, err, "%s → %s", r.from, r.to)
		assert.Equal(t, r.to, got.State)
		stored, _, err := e.store.Get(e.ctx, id)
		require.NoError(t, err)
		assert.Equal(t, r.to, stored.State, "%s → %s stored", r.from, r.to)
	}
}

func TestEveryIllegalTransitionRefused(t *testing.T) {
	e := newEnv(t)
	legal := map[[2]State]rule{}
	for _, r := range transitions {
		legal[[2]State{r.from, r.to}] = r
	}
	n := 0
	for _, from := range AllStates {
		id := "illegal-" + string(from)
		e.seed(t, id, from, "alice")
		for _, to := range AllStates {
			c, rev, err := e.store.Get(e.ctx, id)
			require.NoError(t, err)
			r, ok := legal[[2]State{from, to}]
			if !ok {
				_, _, err = e.store.TransitionCase(e.ctx, c, rev, to, everyone, "")
				require.ErrorIs(t, err, ErrIllegalTransition, "%s → %s", from, to)
				n++
				continue
			}
			// A legal edge taken by the wrong role is refused too.
			wrong := Actor{Name: "bob", Roles: []string{RoleAuditor, RoleAdmin}}
			_, _, err = e.store.TransitionCase(e.ctx, c, rev, to, wrong, "")
			require.ErrorIs(t, err, ErrForbidden, "%s → %s by auditor/admin", from, to)
			if r.distinctFromFirst {
				_, _, err = e.store.TransitionCase(e.ctx, c, rev, to, Actor{Name: "alice", Roles: r.roles}, "")
				require.ErrorIs(t, err, ErrSameReviewer, "%s → %s by the first reviewer", from, to)
			}
			after, _, err := e.store.Get(e.ctx, id)
			require.NoError(t, err)
			require.Equal(t, from, after.State, "a refused transition must not change the case")
		}
	}
	assert.Equal(t, len(AllStates)*len(AllStates)-len(transitions), n)
	// A reviewer (not supervisor) cannot settle a dispute.
	c, rev, err := e.store.Get(e.ctx, "illegal-disputed")
	require.NoError(t, err)
	_, _, err = e.store.TransitionCase(e.ctx, c, rev, Confirmed, Actor{Name: "r", Roles: []string{RoleReviewer}}, "")
	require.ErrorIs(t, err, ErrForbidden)
}

func TestRevisionRaceBetweenTwoWriters(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "race", Pending, "")
	c1, rev1, err := e.store.Get(e.ctx, "race")
	require.NoError(t, err)
	c2, rev2, err := e.store.Get(e.ctx, "race")
	require.NoError(t, err)
	require.Equal(t, rev1, rev2)

	_, _, err = e.store.TransitionCase(e.ctx, c1, rev1, FirstConfirmed, Actor{Name: "a", Roles: []string{RoleReviewer}}, "")
	require.NoError(t, err)
	_, _, err = e.store.TransitionCase(e.ctx, c2, rev2, Rejected, Actor{Name: "b", Roles: []string{RoleReviewer}}, "not_driver")
	require.ErrorIs(t, err, ErrConflict, "the second writer read an old revision and must lose")

	got, _, err := e.store.Get(e.ctx, "race")
	require.NoError(t, err)
	assert.Equal(t, FirstConfirmed, got.State)
	assert.Equal(t, "a", got.FirstReviewer)

	// Many writers at once on one revision: exactly one wins.
	e.seed(t, "race2", Pending, "")
	c, rev, err := e.store.Get(e.ctx, "race2")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := *c
			_, _, err := e.store.TransitionCase(e.ctx, &cc, rev, FirstConfirmed, Actor{Name: fmt.Sprint("w", i), Roles: []string{RoleReviewer}}, "")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if errors.Is(err, ErrConflict) {
				conflicts++
			} else {
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, wins)
	assert.Equal(t, 19, conflicts)
}

func TestCreateIsIdempotentAndOnlyForFlagged(t *testing.T) {
	e := newEnv(t)
	d := detection("p/1 x", e.clock.Now())
	created, err := e.store.CreateFromDetection(e.ctx, d)
	require.NoError(t, err)
	require.True(t, created)
	created, err = e.store.CreateFromDetection(e.ctx, d)
	require.NoError(t, err)
	assert.False(t, created, "a redelivered detection must not make a second case")
	c, _, err := e.store.Get(e.ctx, IDFor("p/1 x"))
	require.NoError(t, err)
	assert.Equal(t, "p_1_x", c.ID)
	assert.Equal(t, Pending, c.State)
	assert.Equal(t, "1ABC234", c.Plate)
	assert.Equal(t, []string{pipeline.OffencePhone, pipeline.OffenceSeatbelt}, c.Flagged)

	nf := detection("p2", e.clock.Now())
	nf.Flagged = false
	created, err = e.store.CreateFromDetection(e.ctx, nf)
	require.NoError(t, err)
	assert.False(t, created)
	_, _, err = e.store.Get(e.ctx, "p2")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestHundredReviewersFiftyCasesEachLeasedOnce(t *testing.T) {
	e := newEnv(t)
	base := e.clock.Now()
	for i := 0; i < 50; i++ {
		_, err := e.store.CreateFromDetection(e.ctx, detection(fmt.Sprintf("p%02d", i), base.Add(time.Duration(i)*time.Second)))
		require.NoError(t, err)
	}
	require.NoError(t, e.store.Index().Sync(e.ctx))
	require.Equal(t, 50, e.store.Index().Len())

	var mu sync.Mutex
	got := map[string]string{}
	noCase := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 100; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			actor := Actor{Name: fmt.Sprintf("rev%03d", g), Roles: []string{RoleReviewer}}
			c, err := e.store.Next(e.ctx, actor, Filter{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNoCase):
				noCase++
			case err != nil:
				t.Errorf("next: %v", err)
			default:
				if prev, dup := got[c.ID]; dup {
					t.Errorf("case %s leased to %s and %s", c.ID, prev, actor.Name)
				}
				got[c.ID] = actor.Name
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Len(t, got, 50, "every case leased")
	assert.Equal(t, 50, noCase)
	// The store agrees: every case holds exactly the lease the caller was told about.
	for id, holder := range got {
		c, _, err := e.store.Get(e.ctx, id)
		require.NoError(t, err)
		require.NotNil(t, c.Lease)
		assert.Equal(t, holder, c.Lease.Holder)
	}

	// Expired leases come back to the queue: nobody can get a case, then time passes.
	late := Actor{Name: "late", Roles: []string{RoleReviewer}}
	_, err := e.store.Next(e.ctx, late, Filter{})
	require.ErrorIs(t, err, ErrNoCase)
	e.clock.Add(5*time.Minute + time.Second)
	expired := 0
	e.store.cfg.Hooks.LeaseExpired = func() { expired++ }
	res, err := e.store.Reap(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 50, res.LeasesExpired)
	assert.Equal(t, 50, expired)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	c, err := e.store.Next(e.ctx, late, Filter{})
	require.NoError(t, err)
	assert.Equal(t, "p00", c.ID, "the oldest case comes first")
	// Asking again returns the same leased case, not a second one.
	again, err := e.store.Next(e.ctx, late, Filter{})
	require.NoError(t, err)
	assert.Equal(t, "p00", again.ID)
}

func TestExpiredLeaseTakenOverWithoutReaper(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.CreateFromDetection(e.ctx, detection("solo", e.clock.Now()))
	require.NoError(t, err)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	a := Actor{Name: "a", Roles: []string{RoleReviewer}}
	b := Actor{Name: "b", Roles: []string{RoleReviewer}}
	_, err = e.store.Next(e.ctx, a, Filter{})
	require.NoError(t, err)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	_, err = e.store.Next(e.ctx, b, Filter{})
	require.ErrorIs(t, err, ErrNoCase)
	// A renewed lease stays; an abandoned one lapses.
	e.clock.Add(4 * time.Minute)
	_, err = e.store.Renew(e.ctx, "solo", a)
	require.NoError(t, err)
	e.clock.Add(4 * time.Minute)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	_, err = e.store.Next(e.ctx, b, Filter{})
	require.ErrorIs(t, err, ErrNoCase, "renewed lease still valid")
	e.clock.Add(2 * time.Minute)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	c, err := e.store.Next(e.ctx, b, Filter{})
	require.NoError(t, err)
	assert.Equal(t, "b", c.Lease.Holder)
	// a's decision after losing the lease is refused.
	_, err = e.store.Decide(e.ctx, "solo", a, Input{Outcome: pipeline.OutcomeConfirm})
	require.ErrorIs(t, err, ErrNotLeased)
}

func TestFiltersSelectCases(t *testing.T) {
	e := newEnv(t)
	d1 := detection("f1", e.clock.Now())
	d1.Offences = d1.Offences[1:] // seatbelt only
	d2 := detection("f2", e.clock.Now().Add(time.Second))
	d2.Camera, d2.Site = "cam-2", "N4"
	for _, d := range []pipeline.Detection{d1, d2} {
		_, err := e.store.CreateFromDetection(e.ctx, d)
		require.NoError(t, err)
	}
	require.NoError(t, e.store.Index().Sync(e.ctx))
	r := Actor{Name: "r", Roles: []string{RoleReviewer}}
	c, err := e.store.Next(e.ctx, r, Filter{Offence: pipeline.OffencePhone})
	require.NoError(t, err)
	assert.Equal(t, "f2", c.ID)
	require.NoError(t, e.store.Release(e.ctx, "f2", r))
	require.NoError(t, e.store.Index().Sync(e.ctx))
	c, err = e.store.Next(e.ctx, r, Filter{Camera: "cam-2"})
	require.NoError(t, err)
	assert.Equal(t, "f2", c.ID)
	_, err = e.store.Next(e.ctx, r, Filter{Site: "nowhere"})
	require.ErrorIs(t, err, ErrNoCase)
}

func fineMessages(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, pipeline.StreamFines)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err == nil && m.Subject == pipeline.SubjectFinesCreate {
			out = append(out, m)
		}
	}
	return out
}

func TestTwoStageConfirmPublishesOneFine(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.CreateFromDetection(e.ctx, detection("tw", e.clock.Now()))
	require.NoError(t, err)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	a := Actor{Name: "anna", Roles: []string{RoleReviewer}}
	b := Actor{Name: "bart", Roles: []string{RoleReviewer}}

	_, err = e.store.Decide(e.ctx, "tw", a, Input{Outcome: pipeline.OutcomeConfirm})
	require.ErrorIs(t, err, ErrNotLeased, "no decision without the lease")
	_, err = e.store.Next(e.ctx, a, Filter{})
	require.NoError(t, err)
	_, err = e.store.Decide(e.ctx, "tw", a, Input{Outcome: pipeline.OutcomeReject, Reason: "made_up"})
	require.ErrorIs(t, err, ErrBadDecision)
	c, err := e.store.Decide(e.ctx, "tw", a, Input{Outcome: pipeline.OutcomeConfirm, Plate: "2-xyz-987", Country: "be", Offences: []string{pipeline.OffencePhone}})
	require.NoError(t, err)
	assert.Equal(t, FirstConfirmed, c.State)
	assert.Equal(t, "2XYZ987", c.Plate)
	assert.Nil(t, c.Lease)

	require.NoError(t, e.store.Index().Sync(e.ctx))
	_, err = e.store.Next(e.ctx, a, Filter{})
	require.ErrorIs(t, err, ErrNoCase, "the first reviewer never gets the second stage")
	_, err = e.store.Lease(e.ctx, "tw", a)
	require.ErrorIs(t, err, ErrSameReviewer)

	_, err = e.store.Next(e.ctx, b, Filter{})
	require.NoError(t, err)
	c, err = e.store.Decide(e.ctx, "tw", b, Input{Outcome: pipeline.OutcomeConfirm, Offences: []string{pipeline.OffencePhone}})
	require.NoError(t, err)
	assert.Equal(t, Confirmed, c.State)
	assert.True(t, c.FinePublished)

	fines := fineMessages(t, e.srv.JS)
	require.Len(t, fines, 1)
	fr, err := pipeline.Decode[pipeline.FineRecord](fines[0].Data)
	require.NoError(t, err)
	assert.Equal(t, "2XYZ987", fr.Plate)
	assert.Equal(t, "BE", fr.Country)
	assert.Equal(t, []string{pipeline.OffencePhone}, fr.Offences)
	assert.Len(t, fr.Decisions, 2)
	assert.Equal(t, "tw", fines[0].Header.Get("Nats-Msg-Id"))

	// A reaper pass does not publish a second fine.
	require.NoError(t, e.store.Index().Sync(e.ctx))
	res, err := e.store.Reap(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.FinesPublished)

	recs, err := audit.Read(e.ctx, e.srv.JS, audit.Query{Subjects: audit.CaseSubjects("tw")})
	require.NoError(t, err)
	var steps []string
	for _, r := range recs {
		steps = append(steps, r.Event.Actor+":"+r.Event.From+">"+r.Event.To)
	}
	assert.Equal(t, []string{"system:review:>pending", "anna:pending>first_confirmed", "bart:first_confirmed>confirmed"}, steps)
	assert.Equal(t, "1ABC234", recs[1].Event.PlateBefore)
	assert.Equal(t, "2XYZ987", recs[1].Event.PlateAfter)

	// Platform results: sent, created, and a redelivered created are applied once.
	require.NoError(t, e.store.ApplyFineResult(e.ctx, pipeline.FineResult{CaseID: "tw", Status: pipeline.FineSent}))
	require.NoError(t, e.store.ApplyFineResult(e.ctx, pipeline.FineResult{CaseID: "tw", Status: pipeline.FineCreated, Reference: "R-1"}))
	require.NoError(t, e.store.ApplyFineResult(e.ctx, pipeline.FineResult{CaseID: "tw", Status: pipeline.FineCreated, Reference: "R-1"}))
	require.NoError(t, e.store.ApplyFineResult(e.ctx, pipeline.FineResult{CaseID: "tw", Status: pipeline.FineSent}))
	c, _, err = e.store.Get(e.ctx, "tw")
	require.NoError(t, err)
	assert.Equal(t, FineCreated, c.State)
	assert.Equal(t, "R-1", c.FineReference)
	require.ErrorIs(t, e.store.ApplyFineResult(e.ctx, pipeline.FineResult{CaseID: "tw", Status: pipeline.FineRejected}), ErrIllegalTransition)
}

func TestSecondReviewerDisagreementIsDisputedAndSupervisorSettles(t *testing.T) {
	e := newEnv(t)
	_, err := e.store.CreateFromDetection(e.ctx, detection("dp", e.clock.Now()))
	require.NoError(t, err)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	a := Actor{Name: "a", Roles: []string{RoleReviewer}}
	b := Actor{Name: "b", Roles: []string{RoleReviewer}}
	sup := Actor{Name: "s", Roles: []string{RoleSupervisor}}
	_, err = e.store.Lease(e.ctx, "dp", a)
	require.NoError(t, err)
	_, err = e.store.Decide(e.ctx, "dp", a, Input{Outcome: pipeline.OutcomeConfirm})
	require.NoError(t, err)
	_, err = e.store.Lease(e.ctx, "dp", b)
	require.NoError(t, err)
	c, err := e.store.Decide(e.ctx, "dp", b, Input{Outcome: pipeline.OutcomeConfirm, Plate: "9ZZZ999"})
	require.NoError(t, err)
	assert.Equal(t, Disputed, c.State)
	assert.Equal(t, "plate_mismatch", c.Reason)

	_, err = e.store.Lease(e.ctx, "dp", b)
	require.ErrorIs(t, err, ErrForbidden, "a reviewer cannot take a disputed case")
	require.NoError(t, e.store.Index().Sync(e.ctx))
	_, err = e.store.Next(e.ctx, sup, Filter{Stage: "supervisor"})
	require.NoError(t, err)
	c, err = e.store.Decide(e.ctx, "dp", sup, Input{Outcome: pipeline.OutcomeReject, Reason: "plate_unreadable"})
	require.NoError(t, err)
	assert.Equal(t, Rejected, c.State)
	assert.Empty(t, fineMessages(t, e.srv.JS))
}

func TestFineRepublishedAfterCrash(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "crash", Confirmed, "a")
	require.NoError(t, e.store.Index().Sync(e.ctx))
	res, err := e.store.Reap(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.FinesPublished)
	require.Len(t, fineMessages(t, e.srv.JS), 1)
	c, _, err := e.store.Get(e.ctx, "crash")
	require.NoError(t, err)
	assert.True(t, c.FinePublished)
	b, _ := json.Marshal(c)
	assert.Contains(t, string(b), `"fine_published":true`)
}

func TestAuditOutboxFlushedAfterCrash(t *testing.T) {
	e := newEnv(t)
	e.seed(t, "ob", Pending, "")
	// A normal transition leaves nothing behind.
	c, rev, err := e.store.Get(e.ctx, "ob")
	require.NoError(t, err)
	got, _, err := e.store.TransitionCase(e.ctx, c, rev, FirstConfirmed, Actor{Name: "a", Roles: []string{RoleReviewer}}, "")
	require.NoError(t, err)
	assert.Empty(t, got.AuditOutbox)
	stored, rev, err := e.store.Get(e.ctx, "ob")
	require.NoError(t, err)
	assert.Empty(t, stored.AuditOutbox)

	// A crash right after the KV update leaves the entry in the outbox: the reaper publishes it
	// once, after the writer's grace period.
	lost := pipeline.AuditEvent{V: pipeline.Version, At: e.clock.Now(), Actor: "b", Action: "decision_second",
		Entity: audit.EntityCase, EntityID: "ob", From: string(FirstConfirmed), To: string(Confirmed)}
	stored.State = Confirmed
	stored.FinePublished = true
	stored.UpdatedAt = e.clock.Now()
	stored.AuditOutbox = []PendingAudit{{MsgID: "case/ob/r99", Event: lost}}
	_, err = e.store.put(e.ctx, stored, rev)
	require.NoError(t, err)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	res, err := e.store.Reap(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.AuditFlushed, "within the grace period the writer owns the outbox")
	e.clock.Add(10 * time.Second)
	res, err = e.store.Reap(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, res.AuditFlushed)
	require.NoError(t, e.store.Index().Sync(e.ctx))
	res, err = e.store.Reap(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.AuditFlushed)

	recs, err := audit.Read(e.ctx, e.srv.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityCase, "ob")}})
	require.NoError(t, err)
	var trail []string
	for _, r := range recs {
		trail = append(trail, r.Event.Actor+":"+r.Event.To)
	}
	assert.Equal(t, []string{"system:review:pending", "a:first_confirmed", "b:confirmed"}, trail)
	after, _, err := e.store.Get(e.ctx, "ob")
	require.NoError(t, err)
	assert.Empty(t, after.AuditOutbox)
}
