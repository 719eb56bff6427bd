package review

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publishLateView publishes what the worker sends for views that reached it after their
// passage was published: the same passage id under its own message id.
func (h *harness) publishLateView(passage, frameKey, msgID string, d pipeline.Detection) {
	h.t.Helper()
	d.V, d.PassageID, d.Camera, d.Flagged = pipeline.Version, passage, "cam-e40-1", true
	d.Frames = []pipeline.FrameRef{{Bucket: pipeline.BucketFrames, Key: frameKey, View: pipeline.ViewRear}}
	data, err := json.Marshal(d)
	require.NoError(h.t, err)
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject(d.Camera), data, jetstream.WithMsgID(msgID))
	require.NoError(h.t, err)
}

func (h *harness) caseAudit(id string) []string {
	h.t.Helper()
	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityCase, id)}})
	require.NoError(h.t, err)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Event.Action)
	}
	return actions
}

// A view that reached the detector after its passage was published joins the case while it
// is under review (its frames, vehicles, offences and evidence, once however often it is
// delivered); once the case is decided it is only recorded.
func TestLateViewJoinsItsCaseWhileUnderReview(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	h := newHarness(t, clk.Now, nil)
	id := h.publishDetection("late-1", clk.Now())

	rear := h.putEvidence("late-1/annotated-rear.jpg", pipeline.EvidenceAnnotated, testJPEG(t, 320, 180, 9))
	late := pipeline.Detection{
		Vehicles: []pipeline.Vehicle{{Class: "car", Score: .9, Seatbelt: pipeline.Finding{State: pipeline.SeatbeltNotWorn, Score: .8},
			Plate: &pipeline.Plate{Text: "2XYZ345", Country: "BE", Confidence: .95}}},
		Offences: []pipeline.Offence{{Kind: pipeline.OffenceSeatbelt, Score: .8, Vehicle: 0}},
		Evidence: []pipeline.Evidence{rear},
	}
	h.publishLateView("late-1", "late-1-rear.jpg", "late-1+r1", late)
	// The same views again under another message id (past the stream's dedup window).
	h.publishLateView("late-1", "late-1-rear.jpg", "late-1+r1-again", late)
	require.Eventually(t, func() bool {
		return h.metric("offencecam_review_detections_total,result=late_view") == 1 &&
			h.metric("offencecam_review_detections_total,result=duplicate") == 1
	}, 10*time.Second, 20*time.Millisecond)

	c, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []string{pipeline.OffencePhone, pipeline.OffenceSeatbelt}, c.Flagged)
	require.Len(t, c.Detection.Frames, 2)
	assert.Equal(t, "late-1-rear.jpg", c.Detection.Frames[1].Key)
	require.Len(t, c.Detection.Vehicles, 2)
	require.Len(t, c.Detection.Offences, 2)
	assert.Equal(t, 1, c.Detection.Offences[1].Vehicle, "the late offence points at the late vehicle")
	require.Len(t, c.Detection.Evidence, 4)
	assert.Equal(t, rear.Key, c.Detection.Evidence[3].Key)
	assert.Equal(t, "1ABC234", c.Plate, "the first views' reading is kept")
	require.Eventually(t, func() bool {
		a := h.caseAudit(id)
		return len(a) == 2 && slices.Contains(a, "case_created") && slices.Contains(a, "late_view_added")
	}, 10*time.Second, 20*time.Millisecond)

	// Decided: another late view is recorded, not merged.
	reviewer := cases.Actor{Name: "anna", Roles: []string{cases.RoleReviewer}}
	_, err = h.svc.Cases().Lease(h.ctx, id, reviewer)
	require.NoError(t, err)
	_, err = h.svc.Cases().Decide(h.ctx, id, reviewer, cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	require.NoError(t, err)
	h.publishLateView("late-1", "late-1-side.jpg", "late-1+s1", late)
	require.Eventually(t, func() bool {
		a := h.caseAudit(id)
		return len(a) > 0 && a[len(a)-1] == "late_view_ignored"
	}, 10*time.Second, 20*time.Millisecond)
	c, _, err = h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Len(t, c.Detection.Frames, 2)
	assert.Len(t, c.Detection.Evidence, 4)
}
