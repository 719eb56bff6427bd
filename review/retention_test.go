package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// evidenceKept reports whether every evidence object of the case's detection is still stored.
func (h *harness) evidenceKept(id string) []bool {
	h.t.Helper()
	c, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(h.t, err)
	var kept []bool
	for _, e := range c.Detection.Evidence {
		rd, _, err := h.store.Get(h.ctx, e.Bucket, e.Key)
		if err == nil {
			rd.Close()
		} else {
			require.ErrorIs(h.t, err, objstore.ErrNotFound)
		}
		kept = append(kept, err == nil)
	}
	return kept
}

func TestRetentionDeletesRejectedEvidenceAfterItsPeriodOnly(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)}
	h := newHarness(t, clk.Now, func(c *Config) {
		c.RetainRejected = 48 * time.Hour
		c.RetentionInterval = 24 * time.Hour // the test sweeps itself
	})
	h.addUser("anna", pw, "nl", "reviewer")
	reviewer := cases.Actor{Name: "anna", Roles: []string{cases.RoleReviewer}}
	decide := func(id string, actor cases.Actor, in cases.Input, want cases.State) {
		t.Helper()
		_, err := h.svc.Cases().Lease(h.ctx, id, actor)
		require.NoError(t, err)
		_, err = h.svc.Cases().Decide(h.ctx, id, actor, in)
		require.NoError(t, err)
		h.waitState(id, want)
	}
	second := cases.Actor{Name: "bart", Roles: []string{cases.RoleReviewer}}
	supervisor := cases.Actor{Name: "sara", Roles: []string{cases.RoleSupervisor}}
	rejectNow := cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"}

	// A frame reference outside the evidence bucket rides along: retention must not touch it.
	require.NoError(t, h.store.EnsureBucket(h.ctx, pipeline.BucketFrames))
	frame := testJPEG(t, 64, 48, 4)
	_, err := h.store.Put(h.ctx, pipeline.BucketFrames, "ret-a.jpg", bytes.NewReader(frame), int64(len(frame)), objstoreOpts())
	require.NoError(t, err)
	foreign := pipeline.Evidence{Kind: pipeline.EvidenceDriverCrop, Bucket: pipeline.BucketFrames, Key: "ret-a.jpg"}
	// A detector that wrote a's crop into a folder shared with other passages: the crop
	// goes, the folder's other objects stay.
	sharedCrop := h.putEvidence("day/ret-a-crop.jpg", pipeline.EvidencePlateCrop, frame)
	other := h.putEvidence("day/other-passage.jpg", pipeline.EvidenceOriginal, frame)
	a := h.publishDetection("ret-a", clk.Now(), foreign, sharedCrop)
	b := h.publishDetection("ret-b", clk.Now())
	// Evidence of a view that came after a's passage was published: under a's folder, named by
	// no case. A folder whose name merely starts like a's is another passage's.
	h.putEvidence("ret-a/original-rear-late.jpg", pipeline.EvidenceOriginal, frame)
	sibling := h.putEvidence("ret-ab/original.jpg", pipeline.EvidenceOriginal, frame)
	open := h.publishDetection("ret-open", clk.Now())
	// a: the first reviewer corrects the plate and confirms, the second disagrees, the
	// supervisor rejects; b is rejected at once.
	decide(a, reviewer, cases.Input{Outcome: pipeline.OutcomeConfirm, Plate: "1XYZ987"}, cases.FirstConfirmed)
	decide(a, second, rejectNow, cases.Disputed)
	decide(a, supervisor, rejectNow, cases.Rejected)
	clk.Add(24 * time.Hour)
	decide(b, reviewer, rejectNow, cases.Rejected)
	clk.Add(24*time.Hour + time.Minute) // a: 48 h 1 min after its rejection, b: 24 h 1 min
	before, _, err := h.svc.Cases().Get(h.ctx, a)
	require.NoError(t, err)
	raw, err := json.Marshal(before)
	require.NoError(t, err)
	require.Contains(t, string(raw), "1XYZ987", "the corrected plate is in a's decisions before the sweep")

	n, err := h.svc.PurgeExpired(h.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []bool{false, false, false, true, false}, h.evidenceKept(a), "a's evidence copies deleted, the frames-bucket object kept")
	_, err = h.store.Stat(h.ctx, other.Bucket, other.Key)
	assert.NoError(t, err, "a shared folder's other objects are not a's")
	_, err = h.store.Stat(h.ctx, pipeline.BucketEvidence, "ret-a/original-rear-late.jpg")
	assert.ErrorIs(t, err, objstore.ErrNotFound, "the late view's orphan evidence goes with its passage")
	_, err = h.store.Stat(h.ctx, sibling.Bucket, sibling.Key)
	assert.NoError(t, err, "another passage's folder is untouched")
	assert.Equal(t, []bool{true, true, true}, h.evidenceKept(b), "b is within its period")
	assert.Equal(t, []bool{true, true, true}, h.evidenceKept(open), "an open case keeps its evidence")

	ca, _, err := h.svc.Cases().Get(h.ctx, a)
	require.NoError(t, err)
	assert.Equal(t, clk.Now(), ca.EvidencePurgedAt.In(time.UTC))
	assert.Equal(t, cases.Rejected, ca.State, "the state and decisions stay")
	require.Len(t, ca.Decisions, 3)
	assert.Equal(t, "not_phone", ca.Decisions[2].Reason)
	raw, err = json.Marshal(ca)
	require.NoError(t, err)
	for _, plate := range []string{"1ABC234", "1XYZ987"} {
		assert.NotContains(t, string(raw), plate, "no plate reading is left in the case record")
	}
	cb, _, err := h.svc.Cases().Get(h.ctx, b)
	require.NoError(t, err)
	assert.Equal(t, "1ABC234", cb.Plate, "b keeps its plate until its period ends")

	// The deletion is in AUDIT, without the plate; evidence views of a are refused as gone.
	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityCase, a)}})
	require.NoError(t, err)
	var purges []pipeline.AuditEvent
	for _, r := range recs {
		if r.Event.Action == "evidence_purged" {
			purges = append(purges, r.Event)
		}
	}
	require.Len(t, purges, 1)
	assert.Equal(t, cases.ActorRetention, purges[0].Actor)
	assert.Equal(t, "5", purges[0].Details["objects"], "four named, one orphan in a's own folder")
	assert.Empty(t, purges[0].PlateBefore+purges[0].PlateAfter)
	assert.Equal(t, 1.0, h.metric("offencecam_review_evidence_purged_total,state=rejected"))

	anna := h.client()
	require.Equal(t, http.StatusOK, anna.login("anna", pw).StatusCode)
	res, body := anna.do(http.MethodGet, "/evidence/"+a+"/0", nil, nil)
	assert.Equal(t, http.StatusGone, res.StatusCode, string(body))
	res, body = anna.do(http.MethodGet, "/cases/"+a, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), `id="purged"`)
	assert.NotContains(t, string(body), "/evidence/"+a+"/", "the page links no deleted image")
	res, body = anna.api(http.MethodGet, "/api/cases/"+a, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.NotContains(t, string(body), "/evidence/")
	assert.Contains(t, string(body), `"evidence_purged_at"`)

	// A second sweep finds nothing new; b goes once its own period has run out.
	n, err = h.svc.PurgeExpired(h.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	clk.Add(24 * time.Hour)
	n, err = h.svc.PurgeExpired(h.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []bool{false, false, false}, h.evidenceKept(b))
	assert.Equal(t, []bool{true, true, true}, h.evidenceKept(open))
	assert.Equal(t, 2.0, h.metric("offencecam_review_evidence_purged_total,state=rejected"))
}

func TestRetentionOfFinedCasesIsTheOperatorsChoice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		retain time.Duration
		purged bool
	}{{"kept by default", 0, false}, {"deleted after retain_fined", 365 * 24 * time.Hour, true}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{t: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
			h := newHarness(t, clk.Now, func(c *Config) { c.RetainFined = tc.retain; c.RetentionInterval = 24 * time.Hour })
			id := h.publishDetection("fine-1", clk.Now())
			for _, who := range []string{"a", "b"} {
				actor := cases.Actor{Name: who, Roles: []string{cases.RoleReviewer}}
				_, err := h.svc.Cases().Lease(h.ctx, id, actor)
				require.NoError(t, err)
				_, err = h.svc.Cases().Decide(h.ctx, id, actor, cases.Input{Outcome: pipeline.OutcomeConfirm})
				require.NoError(t, err)
			}
			for _, r := range []pipeline.FineResult{{V: 1, CaseID: id, Status: pipeline.FineSent},
				{V: 1, CaseID: id, Status: pipeline.FineCreated, Reference: "PV-1"}} {
				data, _ := json.Marshal(r)
				_, err := h.nats.JS.Publish(h.ctx, pipeline.FineResultSubject(id), data)
				require.NoError(t, err)
			}
			h.waitState(id, cases.FineCreated)
			clk.Add(400 * 24 * time.Hour)
			n, err := h.svc.PurgeExpired(h.ctx)
			require.NoError(t, err)
			if !tc.purged {
				assert.Zero(t, n)
				assert.Equal(t, []bool{true, true, true}, h.evidenceKept(id))
				return
			}
			assert.Equal(t, 1, n)
			assert.Equal(t, []bool{false, false, false}, h.evidenceKept(id))
			c, _, err := h.svc.Cases().Get(h.ctx, id)
			require.NoError(t, err)
			assert.Equal(t, "PV-1", c.FineReference, "the platform reference stays")
			assert.Empty(t, c.Plate)
		})
	}
}

// A store that cannot delete leaves the case unmarked, so the next sweep retries it.
func TestRetentionRetriesWhenTheStoreFails(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)}
	var broken atomic.Bool
	h := newHarnessWith(t, clk.Now, func(c *Config) { c.RetainRejected = time.Hour; c.RetentionInterval = 24 * time.Hour },
		func(st objstore.Store) objstore.Store { return failingDelete{st, &broken} })
	id := h.publishDetection("fail-1", clk.Now())
	actor := cases.Actor{Name: "a", Roles: []string{cases.RoleReviewer}}
	_, err := h.svc.Cases().Lease(h.ctx, id, actor)
	require.NoError(t, err)
	_, err = h.svc.Cases().Decide(h.ctx, id, actor, cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	require.NoError(t, err)
	h.waitState(id, cases.Rejected)
	clk.Add(2 * time.Hour)

	broken.Store(true)
	n, err := h.svc.PurgeExpired(h.ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fail-1")
	assert.Zero(t, n)
	c, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.True(t, c.EvidencePurgedAt.IsZero(), "not recorded as purged")
	assert.Equal(t, "1ABC234", c.Plate)

	broken.Store(false)
	n, err = h.svc.PurgeExpired(h.ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []bool{false, false, false}, h.evidenceKept(id))
}

// failingDelete is the store with Delete failing while broken is set, as an S3 endpoint
// that answers 503.
type failingDelete struct {
	objstore.Store
	broken *atomic.Bool
}

func (f failingDelete) Delete(ctx context.Context, bucket, key string) error {
	if f.broken.Load() {
		return errors.New("503 Service Unavailable")
	}
	return f.Store.Delete(ctx, bucket, key)
}

func TestRetentionConfigValidated(t *testing.T) {
	for field, tune := range map[string]func(*Config){
		"review.retain_rejected":    func(c *Config) { c.RetainRejected = -time.Hour },
		"review.retain_fined":       func(c *Config) { c.RetainFined = -time.Hour },
		"review.retention_interval": func(c *Config) { c.RetentionInterval = 0 },
	} {
		c := DefaultConfig()
		tune(&c)
		err := c.Validate()
		require.Error(t, err, field)
		assert.Contains(t, err.Error(), field)
	}
}
