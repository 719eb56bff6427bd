package review

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/crossborder/offencecam/review/i18n"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The live models of the occupant tests: the occupant classifier serves both roles.
var (
	liveModels = []pipeline.ModelRef{{Name: "yolox-nano", Version: "0.1.1", Role: "scene"},
		{Name: "occupant", Version: "1.0.0", Role: "phone"}, {Name: "occupant", Version: "1.0.0", Role: "seatbelt"}}
	candidateModels = []pipeline.ModelRef{{Name: "occupant", Version: "1.1.0rc1", Role: "phone"},
		{Name: "occupant", Version: "1.1.0rc1", Role: "seatbelt"}}
)

// occupantDetection is a flagged passage of one car, seen from the front, with the given
// offences against vehicle 0; mutate adjusts it before it is published.
func (h *harness) occupantDetection(passage string, at time.Time, kinds []string, mutate func(*pipeline.Detection)) pipeline.Detection {
	h.t.Helper()
	d := pipeline.Detection{V: pipeline.Version, PassageID: passage, Camera: "cam-e40-1", Site: "E40 Bertem",
		CapturedAt: at, DetectedAt: at.Add(time.Second), Flagged: true,
		Frames: []pipeline.FrameRef{{Bucket: pipeline.BucketFrames, Key: passage + ".jpg", View: pipeline.ViewFront}},
		Vehicles: []pipeline.Vehicle{{Class: "car", Score: .93, View: pipeline.ViewFront,
			Phone:    pipeline.Finding{State: pipeline.PhoneNone, Score: .9},
			Seatbelt: pipeline.Finding{State: pipeline.SeatbeltWorn, Score: .9},
			Plate:    &pipeline.Plate{Text: "1ABC234", Country: "BE", Confidence: .8}}},
		Models: liveModels,
	}
	for _, k := range kinds {
		d.Offences = append(d.Offences, pipeline.Offence{Kind: k, Score: .8})
		switch k {
		case pipeline.OffencePhone:
			d.Vehicles[0].Phone = pipeline.Finding{State: pipeline.PhoneHeld, Score: .8}
		case pipeline.OffenceSeatbelt:
			d.Vehicles[0].Seatbelt = pipeline.Finding{State: pipeline.SeatbeltNotWorn, Score: .8}
		}
	}
	if mutate != nil {
		mutate(&d)
	}
	return d
}

// publishCase publishes d and waits until its case is pending in the index.
func (h *harness) publishCase(d pipeline.Detection) string {
	h.t.Helper()
	data, err := json.Marshal(d)
	require.NoError(h.t, err)
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject(d.Camera), data, jetstream.WithMsgID(d.PassageID))
	require.NoError(h.t, err)
	id := cases.IDFor(d.PassageID)
	h.waitState(id, cases.Pending)
	return id
}

// TestBrowserCaseShowsDriverCropAndScores: beside the annotated image the case page shows the
// stored driver crop at its own pixels (served, and audited, through the evidence URL) with
// the phone and belt states and scores of the driver and the passenger's belt; a second
// camera view's crop loads only when that view is shown.
func TestBrowserCaseShowsDriverCropAndScores(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	at := time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)
	const cropW, cropH = 212, 286
	front := []pipeline.Evidence{
		h.putEvidence("occ-1/annotated.jpg", pipeline.EvidenceAnnotated, testJPEG(t, 640, 360, 1)),
		h.putEvidence("occ-1/original.jpg", pipeline.EvidenceOriginal, testJPEG(t, 1280, 720, 2)),
		h.putEvidence("occ-1/plate.jpg", pipeline.EvidencePlateCrop, testJPEG(t, 160, 40, 3)),
		h.putEvidence("occ-1/driver.jpg", pipeline.EvidenceDriverCrop, testJPEG(t, cropW, cropH, 4)),
	}
	over := []pipeline.Evidence{
		h.putEvidence("occ-1/annotated-overhead.jpg", pipeline.EvidenceAnnotated, testJPEG(t, 480, 270, 5)),
		h.putEvidence("occ-1/driver-overhead.jpg", pipeline.EvidenceDriverCrop, testJPEG(t, 150, 180, 6)),
	}
	for i := range over {
		over[i].View = pipeline.ViewOverhead
	}
	d := h.occupantDetection("occ-1", at, []string{pipeline.OffencePhone, pipeline.OffenceSeatbelt}, func(d *pipeline.Detection) {
		d.Evidence = append(front, over...)
		v := &d.Vehicles[0]
		v.Driver = &pipeline.Box{X: 700, Y: 200, W: 190, H: 260}
		v.Phone = pipeline.Finding{State: pipeline.PhoneHeld, Score: .91, Box: v.Driver, View: pipeline.ViewFront}
		v.Seatbelt = pipeline.Finding{State: pipeline.SeatbeltNotWorn, Score: .83, Box: v.Driver, View: pipeline.ViewFront}
		v.PassengerSeatbelt = &pipeline.Finding{State: pipeline.SeatbeltWorn, Score: .77, View: pipeline.ViewFront}
		d.Vehicles = append(d.Vehicles, pipeline.Vehicle{Class: "van", Score: .9, View: pipeline.ViewOverhead,
			Phone:    pipeline.Finding{State: pipeline.StateUnknown, Score: .12},
			Seatbelt: pipeline.Finding{State: pipeline.SeatbeltNotWorn, Score: .66}})
		d.Offences = append(d.Offences, pipeline.Offence{Kind: pipeline.OffenceSeatbelt, Score: .66, Vehicle: 1})
	})
	id := h.publishCase(d)

	ctx := newBrowser(t)
	browserLogin(t, ctx, h.web.URL, "anna")
	do(t, ctx, "next case", chromedp.Click(chromedp.ID("next-case")), chromedp.WaitVisible(chromedp.ID("decide-form")))
	const crop = `document.querySelector('#driver-panel-front img.driver-crop-img')`
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](crop+`.complete && `+crop+`.naturalWidth > 0`, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the driver crop loads")
	assert.Equal(t, evidenceURL(id, 3), eval[string](t, ctx, crop+`.getAttribute('src')`), "served through the authorised, audited evidence URL")
	assert.Equal(t, cropW, eval[int](t, ctx, crop+`.naturalWidth`), "the stored crop's own width")
	assert.Equal(t, cropH, eval[int](t, ctx, crop+`.naturalHeight`))
	assert.Equal(t, cropW, eval[int](t, ctx, crop+`.clientWidth`), "shown at its own pixels, not scaled")
	assert.Equal(t, cropH, eval[int](t, ctx, crop+`.clientHeight`))
	assert.True(t, eval[bool](t, ctx, `(function(){ var a = document.getElementById('viewer').getBoundingClientRect(), b = `+crop+`.getBoundingClientRect(); return b.left >= a.right && b.top < a.bottom; })()`),
		"the crop stands beside the annotated image")
	waitText(t, ctx, "#driver-panel-front .dims", fmt.Sprintf("%d × %d px", cropW, cropH))
	// The driver's phone and belt and the passenger's belt, in French, with their scores.
	assert.Equal(t, "Téléphone en main", text(t, ctx, "#occupant-1 tr.finding-phone td.finding-state"))
	assert.Equal(t, "0.91", text(t, ctx, "#occupant-1 tr.finding-phone td.score"))
	assert.Equal(t, "Non portée", text(t, ctx, "#occupant-1 tr.finding-belt td.finding-state"))
	assert.Equal(t, "0.83", text(t, ctx, "#occupant-1 tr.finding-belt td.score"))
	assert.Equal(t, "Ceinture (passager)", text(t, ctx, "#occupant-1 tr.finding-passenger-belt th"))
	assert.Equal(t, "Portée", text(t, ctx, "#occupant-1 tr.finding-passenger-belt td.finding-state"))
	assert.Equal(t, "0.77", text(t, ctx, "#occupant-1 tr.finding-passenger-belt td.score"))
	// Both offence-specific reasons apply to this case.
	assert.Equal(t, 0, eval[int](t, ctx, `document.querySelectorAll('#reason option:disabled').length`))
	screenshot(t, ctx, "case-driver-crop-fr.png")

	// The overhead view's crop is not fetched (nor audited) until its tab is shown.
	assert.False(t, eval[bool](t, ctx, `document.querySelector('#driver-panel-overhead img.driver-crop-img').hasAttribute('src')`))
	views := func() []string {
		recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: audit.CaseSubjects(id)})
		require.NoError(t, err)
		var out []string
		for _, r := range recs {
			if r.Event.Action == "evidence_view" {
				out = append(out, r.Event.Details["kind"]+"/"+r.Event.Details["index"])
			}
		}
		return out
	}
	assert.Contains(t, views(), "driver_crop/3", "the crop view is audited")
	assert.NotContains(t, views(), "driver_crop/5")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("v")))
	const over2 = `document.querySelector('#driver-panel-overhead img.driver-crop-img')`
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](over2+`.complete && `+over2+`.naturalWidth === 150`, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the overhead view's crop loads with its tab")
	assert.True(t, eval[bool](t, ctx, `document.getElementById('driver-panel-front').classList.contains('hidden')`))
	assert.Equal(t, "Non jugé (pas visible)", text(t, ctx, "#occupant-2 tr.finding-phone td.finding-state"))
	assert.Equal(t, "0.66", text(t, ctx, "#occupant-2 tr.finding-belt td.score"))
	assert.Contains(t, views(), "driver_crop/5")
	screenshot(t, ctx, "case-driver-crop-overhead-fr.png")

	// The same in English.
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("v")))
	click(t, ctx, "lang-en")
	waitText(t, ctx, "#case-title", "Case")
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](crop+`.complete && `+crop+`.naturalWidth > 0`, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err)
	assert.Equal(t, "Phone in hand", text(t, ctx, "#occupant-1 tr.finding-phone td.finding-state"))
	assert.Equal(t, "Not worn", text(t, ctx, "#occupant-1 tr.finding-belt td.finding-state"))
	screenshot(t, ctx, "case-driver-crop-en.png")
}

// TestDecisionsFeedModelPrecisionOncePerCase: final decisions count against the live model
// version that raised each offence, once per case (a first review alone, a dispute, platform
// results and a redelivered detection add nothing); shadow candidates' agreement is counted
// on the same decisions; the supervisor page, the API and /metrics agree, and a restarted
// service shows the same figures.
func TestDecisionsFeedModelPrecisionOncePerCase(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	h.addUser("bart", pw, "nl", "reviewer")
	h.addUser("sara", pw, "en", "supervisor")
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	shadow := func(kinds ...string) func(*pipeline.Detection) {
		return func(d *pipeline.Detection) {
			d.Shadow = &pipeline.Shadow{Models: candidateModels, Vehicles: []pipeline.ShadowVehicle{{}}}
			for _, k := range kinds {
				d.Shadow.Offences = append(d.Shadow.Offences, pipeline.Offence{Kind: k, Score: .7})
			}
		}
	}
	anna, bart, sara := h.client(), h.client(), h.client()
	require.Equal(t, http.StatusOK, anna.login("anna", pw).StatusCode)
	require.Equal(t, http.StatusOK, bart.login("bart", pw).StatusCode)
	require.Equal(t, http.StatusOK, sara.login("sara", pw).StatusCode)
	decide := func(c *client, id string, in cases.Input) {
		t.Helper()
		res, body := c.api(http.MethodPost, "/api/cases/"+id+"/lease", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		res, body = c.api(http.MethodPost, "/api/cases/"+id+"/decision", in)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	}
	confirm := func(kinds ...string) cases.Input {
		return cases.Input{Outcome: pipeline.OutcomeConfirm, Offences: kinds}
	}
	phone, belt := pipeline.OffencePhone, pipeline.OffenceSeatbelt
	stats := func() supervisorStats {
		t.Helper()
		require.NoError(t, h.svc.Cases().Index().Sync(h.ctx))
		res, body := sara.api(http.MethodGet, "/api/supervisor", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		var st supervisorStats
		require.NoError(t, json.Unmarshal(body, &st))
		return st
	}
	live := func(outcome string) float64 {
		return h.metric("offencecam_review_model_decisions_total,model=occupant,offence=phone,outcome=" + outcome + ",version=1.0.0")
	}

	// c1: phone, the candidate agrees; two confirmations. The first alone counts nothing.
	c1 := h.publishCase(h.occupantDetection("prec-1", at, []string{phone}, shadow(phone)))
	decide(anna, c1, confirm())
	assert.Empty(t, stats().ModelPrecision, "a first review is not a final decision")
	assert.Equal(t, 0.0, live("confirmed"))
	decide(bart, c1, confirm())
	assert.Equal(t, []modelPrecisionRow{{Model: "occupant@1.0.0", Name: "occupant", Version: "1.0.0", Offence: phone,
		Confirmed: 1, Judged: true, Percent: 100}}, stats().ModelPrecision)
	assert.Equal(t, 1.0, live("confirmed"))
	// The platform's results move the case on; it still counts once. So does a redelivery.
	for _, st := range []string{pipeline.FineSent, pipeline.FineCreated} {
		data, _ := json.Marshal(pipeline.FineResult{V: 1, CaseID: c1, Status: st, Reference: "PV-1"})
		_, err := h.nats.JS.Publish(h.ctx, pipeline.FineResultSubject(c1), data)
		require.NoError(t, err)
	}
	h.waitState(c1, cases.FineCreated)
	data, err := json.Marshal(h.occupantDetection("prec-1", at, []string{phone}, shadow(phone)))
	require.NoError(t, err)
	_, err = h.nats.JS.Publish(h.ctx, pipeline.DetectionSubject("cam-e40-1"), data)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.metric("offencecam_review_detections_total,result=duplicate") == 1 },
		10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1, stats().ModelPrecision[0].Confirmed)

	// c2: phone, the candidate would not have raised it; rejected at the first review.
	c2 := h.publishCase(h.occupantDetection("prec-2", at.Add(time.Minute), []string{phone}, shadow()))
	decide(anna, c2, cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	// c3: phone and belt, the candidate raises the belt only. The second reviewer keeps the
	// belt only: disputed (not final, not counted); the supervisor confirms the belt alone.
	c3 := h.publishCase(h.occupantDetection("prec-3", at.Add(2*time.Minute), []string{phone, belt}, shadow(belt)))
	decide(anna, c3, confirm(phone, belt))
	decide(bart, c3, confirm(belt))
	h.waitState(c3, cases.Disputed)
	st := stats()
	require.Len(t, st.ModelPrecision, 1, "the disputed case is not counted yet")
	assert.Equal(t, 1, st.ModelPrecision[0].Rejected)
	decide(sara, c3, confirm(belt))
	h.waitState(c3, cases.Confirmed)
	// c4: an older live version, rejected as a duplicate passage: not about the model.
	c4 := h.publishCase(h.occupantDetection("prec-4", at.Add(3*time.Minute), []string{phone}, func(d *pipeline.Detection) {
		d.Models = []pipeline.ModelRef{{Name: "occupant", Version: "0.9.0", Role: "phone"}}
	}))
	decide(anna, c4, cases.Input{Outcome: pipeline.OutcomeReject, Reason: "duplicate_passage"})
	// c5: confirmed once, still under review.
	c5 := h.publishCase(h.occupantDetection("prec-5", at.Add(4*time.Minute), []string{phone}, shadow()))
	decide(anna, c5, confirm())

	st = stats()
	wantModels := []modelPrecisionRow{
		{Model: "occupant@0.9.0", Name: "occupant", Version: "0.9.0", Offence: phone, Excluded: 1},
		{Model: "occupant@1.0.0", Name: "occupant", Version: "1.0.0", Offence: phone, Confirmed: 1, Rejected: 2, Judged: true, Percent: 100.0 / 3},
		{Model: "occupant@1.0.0", Name: "occupant", Version: "1.0.0", Offence: belt, Confirmed: 1, Judged: true, Percent: 100},
	}
	assert.Equal(t, wantModels, st.ModelPrecision)
	wantShadow := []shadowRow{
		{Candidate: "occupant@1.1.0rc1", Offence: phone, Live: "occupant@1.0.0", Reviewed: 3, FlaggedConfirmed: 1, SilentRejected: 2,
			Judged: true, Percent: 100, Disagreements: 2, DisagreePercent: 200.0 / 3},
		{Candidate: "occupant@1.1.0rc1", Offence: belt, Live: "occupant@1.0.0", Reviewed: 1, FlaggedConfirmed: 1,
			Judged: true, Percent: 100},
	}
	assert.Equal(t, wantShadow, st.Shadow)

	// /metrics: the same counts.
	assert.Equal(t, 1.0, live("confirmed"))
	assert.Equal(t, 2.0, live("rejected"))
	assert.Equal(t, 1.0, h.metric("offencecam_review_model_decisions_total,model=occupant,offence=seatbelt,outcome=confirmed,version=1.0.0"))
	assert.Equal(t, 1.0, h.metric("offencecam_review_model_decisions_total,model=occupant,offence=phone,outcome=excluded,version=0.9.0"))
	assert.Equal(t, 0.0, h.metric("offencecam_review_model_decisions_total,model=occupant,offence=phone,outcome=rejected,version=0.9.0"))
	sh := func(offence, outcome string, flagged bool) float64 {
		return h.metric(fmt.Sprintf("offencecam_review_shadow_decisions_total,candidate=occupant@1.1.0rc1,candidate_flagged=%t,offence=%s,outcome=%s", flagged, offence, outcome))
	}
	assert.Equal(t, 1.0, sh(phone, "confirmed", true))
	assert.Equal(t, 2.0, sh(phone, "rejected", false), "the candidate disagreed with the live model twice, rightly")
	assert.Equal(t, 0.0, sh(phone, "confirmed", false))
	assert.Equal(t, 1.0, sh(belt, "confirmed", true))

	// The supervisor page, in a real browser.
	ctx := newBrowser(t)
	do(t, ctx, "login as sara",
		chromedp.Navigate(h.web.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("user"), "sara"),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("supervisor-title")),
		chromedp.WaitVisible(chromedp.ID("model-precision")),
	)
	row := `#model-precision tr[data-model="occupant@1.0.0"][data-offence="phone"] `
	assert.Equal(t, "1", text(t, ctx, row+"td.confirmed"))
	assert.Equal(t, "2", text(t, ctx, row+"td.rejected"))
	assert.Equal(t, "33.3 %", text(t, ctx, row+"td.precision"))
	assert.Equal(t, "—", text(t, ctx, `#model-precision tr[data-model="occupant@0.9.0"] td.precision`))
	assert.Equal(t, "1", text(t, ctx, `#model-precision tr[data-model="occupant@0.9.0"] td.excluded`))
	srow := `#shadow-precision tr[data-candidate="occupant@1.1.0rc1"][data-offence="phone"] `
	assert.Equal(t, "3", text(t, ctx, srow+"td.reviewed"))
	assert.Equal(t, "100.0 %", text(t, ctx, srow+"td.precision"))
	assert.Equal(t, "66.7 % (2)", text(t, ctx, srow+"td.disagreement"))
	screenshot(t, ctx, "supervisor-precision-en.png")

	// A restart: a new service on the same store shows the same figures.
	ctx2, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	svc2, err := New(ctx2, Deps{NC: h.nats.NC, JS: h.nats.JS, Store: h.store, Registry: reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, svc2.Ready(h.ctx))
	st2 := svc2.supervisorStats()
	assert.Equal(t, wantModels, st2.ModelPrecision)
	assert.Equal(t, wantShadow, st2.Shadow)
	h2 := &harness{t: t, reg: reg}
	assert.Equal(t, 2.0, h2.metric("offencecam_review_model_decisions_total,model=occupant,offence=phone,outcome=rejected,version=1.0.0"))
	assert.Equal(t, 2.0, h2.metric("offencecam_review_shadow_decisions_total,candidate=occupant@1.1.0rc1,candidate_flagged=false,offence=phone,outcome=rejected"))
	_ = c5
}

// TestRejectReasonsPerOffenceStored: the reject form offers every reason code, labelled in
// each language, those about one offence only on cases that flagged it; a rejection (and a
// second-stage disagreement) stores its reason in the decision, the case and AUDIT.
func TestRejectReasonsPerOffenceStored(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	h.addUser("bart", pw, "fr", "reviewer")
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	phoneCase := h.publishCase(h.occupantDetection("rsn-1", at, []string{pipeline.OffencePhone}, nil))
	beltCase := h.publishCase(h.occupantDetection("rsn-2", at.Add(time.Minute), []string{pipeline.OffenceSeatbelt}, nil))
	anna := h.client()
	require.Equal(t, http.StatusOK, anna.login("anna", pw).StatusCode)

	option := regexp.MustCompile(`<option value="([a-z_]+)"[^>]*?( disabled)?>\d+\. ([^<]+)</option>`)
	form := func(c *client, id string) map[string]string { // code → label, "!" before a disabled one
		t.Helper()
		res, body := c.do(http.MethodGet, "/cases/"+id, nil, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		out := map[string]string{}
		for _, m := range option.FindAllStringSubmatch(string(body), -1) {
			l := html.UnescapeString(m[3])
			if m[2] != "" {
				l = "!" + l
			}
			out[m[1]] = l
		}
		return out
	}
	lease := func(c *client, id string) {
		t.Helper()
		res, body := c.api(http.MethodPost, "/api/cases/"+id+"/lease", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	}
	lease(anna, phoneCase)
	for _, lang := range i18n.Languages {
		res, _ := anna.api(http.MethodPost, "/api/lang", map[string]string{"lang": lang})
		require.Equal(t, http.StatusOK, res.StatusCode)
		L := i18n.For(lang)
		got := form(anna, phoneCase)
		require.Len(t, got, len(DefaultConfig().ReasonCodes), lang)
		for _, code := range DefaultConfig().ReasonCodes {
			assert.True(t, L.Has("reason."+code), "%s: reason.%s", lang, code)
			want := L.T("reason." + code)
			if code == "belt_visible" {
				want = "!" + want // a phone case: "belt worn" is not a reason to reject it
			}
			assert.Equal(t, want, got[code], "%s %s", lang, code)
		}
	}
	// Without images (none stored here) the findings are listed beside the form.
	res, body := anna.do(http.MethodGet, "/cases/"+phoneCase, nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Regexp(t, `<tr class="finding-phone offence" data-state="held"><th>Phone \(driver\)</th><td class="finding-state">Phone in hand</td><td class="num score">0.80</td></tr>`, string(body))
	assert.Contains(t, string(body), `<td class="finding-state">Worn</td><td class="num score">0.90</td>`)
	assert.Equal(t, "Phone: no phone in hand (the object is not a phone)", i18n.For("en").T("reason.not_phone"))
	assert.Equal(t, "Ceinture : portée (ceinture visible)", i18n.For("fr").T("reason.belt_visible"))
	assert.Equal(t, "Gsm: geen gsm in de hand (het voorwerp is geen gsm)", i18n.For("nl").T("reason.not_phone"))
	for _, k := range []string{"phone_state.held", "phone_state.none", "phone_state.unknown", "belt_state.worn", "belt_state.not_worn",
		"belt_state.unknown", "case.finding_phone", "case.finding_belt", "case.finding_passenger_belt"} {
		for _, lang := range i18n.Languages {
			assert.True(t, i18n.For(lang).Has(k), "%s %s", lang, k)
		}
	}

	// The form's rejection with not_phone is stored with that reason, in the decision (what
	// the dataset export reads), the case and the AUDIT entry.
	post := func(c *client, id string, v url.Values) *http.Response {
		t.Helper()
		v.Set("csrf", c.csrf)
		res, _ := c.do(http.MethodPost, "/cases/"+id+"/decide", v.Encode(), nil)
		return res
	}
	res = post(anna, phoneCase, url.Values{"outcome": {"reject"}, "reason": {"not_phone"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	h.waitState(phoneCase, cases.Rejected)
	c, _, err := h.svc.Cases().Get(h.ctx, phoneCase)
	require.NoError(t, err)
	require.Len(t, c.Decisions, 1)
	assert.Equal(t, pipeline.OutcomeReject, c.Decisions[0].Outcome)
	assert.Equal(t, "not_phone", c.Decisions[0].Reason)
	assert.Equal(t, "anna", c.Decisions[0].Reviewer)
	assert.Equal(t, "not_phone", c.Reason)
	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityCase, phoneCase)}})
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	last := recs[len(recs)-1].Event
	assert.Equal(t, "decision_first", last.Action)
	assert.Equal(t, "not_phone", last.Reason)

	// On a seat-belt case "not a phone" is offered disabled and refused if sent anyway.
	lease(anna, beltCase)
	got := form(anna, beltCase)
	assert.Equal(t, "!", got["not_phone"][:1])
	assert.NotEqual(t, "!", got["belt_visible"][:1])
	res, body = anna.api(http.MethodPost, "/api/cases/"+beltCase+"/decision", cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, string(body))
	assert.Contains(t, string(body), "bad_decision")
	assert.Equal(t, http.StatusBadRequest, post(anna, beltCase, url.Values{"outcome": {"reject"}, "reason": {"not_phone"}}).StatusCode)
	// A first confirmation, then the second reviewer disagrees with belt_visible: disputed,
	// with that reason on the second decision.
	res, body = anna.api(http.MethodPost, "/api/cases/"+beltCase+"/decision", cases.Input{Outcome: pipeline.OutcomeConfirm})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	bart := h.client()
	require.Equal(t, http.StatusOK, bart.login("bart", pw).StatusCode)
	lease(bart, beltCase)
	require.Equal(t, http.StatusSeeOther, post(bart, beltCase, url.Values{"outcome": {"reject"}, "reason": {"belt_visible"}}).StatusCode)
	h.waitState(beltCase, cases.Disputed)
	c, _, err = h.svc.Cases().Get(h.ctx, beltCase)
	require.NoError(t, err)
	require.Len(t, c.Decisions, 2)
	assert.Equal(t, pipeline.OutcomeDispute, c.Decisions[1].Outcome)
	assert.Equal(t, "belt_visible", c.Decisions[1].Reason)
}
