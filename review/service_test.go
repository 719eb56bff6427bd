package review

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/crossborder/offencecam/review/i18n"
	"github.com/crossborder/offencecam/review/web"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidateNamesField(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for field, mut := range map[string]func(*Config){
		"review.reason_codes":      func(c *Config) { c.ReasonCodes = nil },
		"review.lease_duration":    func(c *Config) { c.LeaseDuration = 0 },
		"review.session_absolute":  func(c *Config) { c.SessionAbsolute = time.Minute },
		"review.lockout_threshold": func(c *Config) { c.LockoutThreshold = 0 },
		"review.secure_cookies":    func(c *Config) { c.SecureCookies = "sometimes" },
		"review.default_language":  func(c *Config) { c.DefaultLanguage = "de" },
		"review.original_roles":    func(c *Config) { c.OriginalRoles = []string{"admin"} },
		"review.reason_codes[1]":   func(c *Config) { c.ReasonCodes = []string{"a", "a"} },
	} {
		c := DefaultConfig()
		mut(&c)
		err := c.Validate()
		require.Error(t, err, field)
		assert.Contains(t, err.Error(), field)
	}
}

func TestCataloguesCompleteAndTemplatesCovered(t *testing.T) {
	en := i18n.Keys("en")
	require.NotEmpty(t, en)
	for _, l := range i18n.Languages {
		assert.Equal(t, en, i18n.Keys(l), "catalogue %s has the same keys as en", l)
	}
	// Every key a template asks for exists.
	re := regexp.MustCompile(`\.T "([a-z0-9_.]+)"`)
	entries, err := web.FS.ReadDir("templates")
	require.NoError(t, err)
	for _, e := range entries {
		data, err := web.FS.ReadFile("templates/" + e.Name())
		require.NoError(t, err)
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			assert.True(t, slices.Contains(en, m[1]), "%s uses unknown key %q", e.Name(), m[1])
		}
	}
	// Every state, offence, role and default reason code has a label in every language.
	var codes []string
	for _, s := range cases.AllStates {
		codes = append(codes, "state."+string(s))
	}
	for _, o := range pipeline.OffenceKinds {
		codes = append(codes, "offence."+o)
	}
	for _, r := range DefaultConfig().ReasonCodes {
		codes = append(codes, "reason."+r)
	}
	for _, k := range codes {
		assert.True(t, slices.Contains(en, k), "missing label %s", k)
	}
	assert.Equal(t, "Betwist", i18n.For("nl").T("state.disputed"))
	assert.Equal(t, "27/11/2026 09:15:00", i18n.For("fr").Time(time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)))
	assert.Equal(t, "27/07/2026 10:15:00", i18n.For("nl").Time(time.Date(2026, 7, 27, 8, 15, 0, 0, time.UTC)), "summer time")
}

// TestEveryPageRendersInEveryLanguage renders each page for its role in fr, nl and en.
func TestEveryPageRendersInEveryLanguage(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("rev", pw, "fr", "reviewer")
	h.addUser("all", pw, "fr", "reviewer", "supervisor", "auditor", "admin")
	id := h.publishDetection("pages-1", time.Now())
	r := h.client()
	require.Equal(t, http.StatusOK, r.login("rev", pw).StatusCode)
	res, _ := r.api(http.MethodPost, "/api/next", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = r.api(http.MethodPost, "/api/cases/"+id+"/decision", cases.Input{Outcome: pipeline.OutcomeConfirm, Plate: "1ABC235"})
	require.Equal(t, http.StatusOK, res.StatusCode)

	c := h.client()
	require.Equal(t, http.StatusOK, c.login("all", pw).StatusCode)
	titles := map[string]map[string]string{
		"fr": {"/queue": "File de contrôle", "/supervisor": "Supervision", "/audit?case=" + id: "Piste d'audit", "/admin": "Comptes", "/cases/" + id: "Dossier"},
		"nl": {"/queue": "Controlewachtrij", "/supervisor": "Supervisie", "/audit?user=rev": "Audittrail", "/admin": "Accounts", "/cases/" + id: "Dossier"},
		"en": {"/queue": "Review queue", "/supervisor": "Supervision", "/audit?case=" + id: "Audit trail", "/admin": "Accounts", "/cases/" + id: "Case"},
	}
	for _, lang := range i18n.Languages {
		res, body := c.api(http.MethodPost, "/api/lang", map[string]string{"lang": lang})
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		for path, want := range titles[lang] {
			res, body := c.do(http.MethodGet, path, nil, nil)
			require.Equal(t, http.StatusOK, res.StatusCode, "%s %s: %s", lang, path, body)
			assert.Contains(t, string(body), "<h1", path)
			assert.Contains(t, html.UnescapeString(string(body)), want, "%s %s", lang, path)
			assert.Contains(t, string(body), `lang="`+lang+`"`)
			assert.NotRegexp(t, `\b(case|queue|sup|audit|admin|err)\.[a-z_]+\b`, stripTags(string(body)), "untranslated key on %s %s", lang, path)
		}
	}
	// The audit page shows the first review with the corrected plate.
	res, body := c.do(http.MethodGet, "/audit?case="+id, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "1ABC234 → 1ABC235")
	// Per user: only that user's entries (login, the decision), from the AUDIT stream.
	res, body = c.api(http.MethodGet, "/api/audit?user=rev", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var trail struct {
		Events []struct{ Event pipeline.AuditEvent } `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &trail))
	var actions []string
	for _, e := range trail.Events {
		assert.Equal(t, "rev", e.Event.Actor)
		actions = append(actions, e.Event.Action)
	}
	assert.Equal(t, []string{"login", "decision_first"}, actions)
	// The supervisor API reports throughput and precision.
	res, body = c.api(http.MethodGet, "/api/supervisor", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var st supervisorStats
	require.NoError(t, json.Unmarshal(body, &st))
	require.Len(t, st.Throughput, 1)
	assert.Equal(t, throughputRow{Reviewer: "rev", Day: 1, Week: 1}, st.Throughput[0])
	require.Len(t, st.Precision, 1)
	assert.Equal(t, 1, st.Precision[0].Flagged)
}

func stripTags(s string) string {
	s = regexp.MustCompile(`(?s)<head>.*?</head>`).ReplaceAllString(s, "")
	return regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, " ")
}

func TestConsumersApplyResultsAndDeadLetterBadInput(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newHarness(t, clk.Now, func(c *Config) { c.LeaseDuration = time.Minute; c.ReaperInterval = 10 * time.Millisecond })
	id := h.publishDetection("cons-1", clk.Now())
	require.NoError(t, h.svc.Ready(h.ctx))

	// Redelivery of the same detection (a new message id) makes no second case.
	d, err := json.Marshal(pipeline.Detection{V: 1, PassageID: "cons-1", Camera: "cam-e40-1", Flagged: true,
		Offences: []pipeline.Offence{{Kind: pipeline.OffenceSeatbelt}}})
	require.NoError(t, err)
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject("cam-e40-1"), d)
	require.NoError(t, err)
	// A non-flagged passage makes none; garbage goes to the DLQ.
	nf, _ := json.Marshal(pipeline.Detection{V: 1, PassageID: "cons-2", Camera: "cam-e40-1"})
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject("cam-e40-1"), nf)
	require.NoError(t, err)
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject("cam-e40-1"), []byte(`{"v":1,"passage_id":`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return h.metric("offencecam_review_detections_total,result=invalid") == 1 &&
			h.metric("offencecam_review_detections_total,result=duplicate") == 1 &&
			h.metric("offencecam_review_detections_total,result=not_flagged") == 1
	}, 10*time.Second, 20*time.Millisecond)
	c, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []string{pipeline.OffencePhone}, c.Flagged, "the first detection's case is kept")
	_, _, err = h.svc.Cases().Get(h.ctx, "cons-2")
	require.ErrorIs(t, err, cases.ErrNotFound)
	dlq, err := h.nats.JS.Stream(h.ctx, pipeline.StreamDLQ)
	require.NoError(t, err)
	m, err := dlq.GetLastMsgForSubject(h.ctx, pipeline.DLQSubject("review"))
	require.NoError(t, err)
	entry, err := pipeline.Decode[pipeline.DLQEntry](m.Data)
	require.NoError(t, err)
	assert.Equal(t, `{"v":1,"passage_id":`, string(entry.RawData))

	// Metrics: one pending case, its age from the injected clock.
	clk.Add(90 * time.Second)
	// The gauges read the case index, which follows the KV asynchronously.
	require.Eventually(t, func() bool { return h.metric("offencecam_review_cases,state=pending") == 1 },
		10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 0.0, h.metric("offencecam_review_cases,state=confirmed"))
	assert.InDelta(t, 90, h.metric("offencecam_review_queue_oldest_pending_age_seconds"), 1)

	// A lease left to expire comes back through the running reaper and is counted.
	actorA := cases.Actor{Name: "a", Roles: []string{cases.RoleReviewer}}
	_, err = h.svc.Cases().Lease(h.ctx, id, actorA)
	require.NoError(t, err)
	clk.Add(2 * time.Minute)
	require.Eventually(t, func() bool {
		c, _, err := h.svc.Cases().Get(h.ctx, id)
		return err == nil && c.Lease == nil
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, h.metric("offencecam_review_lease_expiries_total"))

	// Two confirmations, then the platform's results arrive on fines.result.<id>.
	actorB := cases.Actor{Name: "b", Roles: []string{cases.RoleReviewer}}
	_, err = h.svc.Cases().Lease(h.ctx, id, actorA)
	require.NoError(t, err)
	_, err = h.svc.Cases().Decide(h.ctx, id, actorA, cases.Input{Outcome: pipeline.OutcomeConfirm})
	require.NoError(t, err)
	_, err = h.svc.Cases().Lease(h.ctx, id, actorB)
	require.NoError(t, err)
	_, err = h.svc.Cases().Decide(h.ctx, id, actorB, cases.Input{Outcome: pipeline.OutcomeConfirm})
	require.NoError(t, err)
	assert.Equal(t, 2.0, h.metric("offencecam_review_decisions_total,outcome=confirm"))
	for _, r := range []pipeline.FineResult{
		{V: 1, CaseID: id, Status: pipeline.FineSent},
		{V: 1, CaseID: id, Status: pipeline.FineCreated, Reference: "PV-2026-000123"},
		{V: 1, CaseID: id, Status: pipeline.FineCreated, Reference: "PV-2026-000123"}, // redelivered
	} {
		data, _ := json.Marshal(r)
		_, err := h.nats.JS.Publish(h.ctx, pipeline.FineResultSubject(id), data)
		require.NoError(t, err)
	}
	h.waitState(id, cases.FineCreated)
	c, _, err = h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "PV-2026-000123", c.FineReference)
	// Every result message was acknowledged (the WorkQueue stream keeps none).
	fines, err := h.nats.JS.Stream(h.ctx, pipeline.StreamFines)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := fines.Info(h.ctx, jetstream.WithSubjectFilter(pipeline.SubjectFineResults))
		return err == nil && len(info.State.Subjects) == 0
	}, 10*time.Second, 20*time.Millisecond)
}

// metric reads one gauge or counter from the harness's registry: "name,label=value,…".
func (h *harness) metric(key string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(h.t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			if name != key {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
		}
	}
	return 0
}
