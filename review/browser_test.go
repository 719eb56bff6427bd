package review

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func artifactsDir(t *testing.T) string {
	dir := os.Getenv("OFFENCECAM_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(testenv.RepoRoot(), "test-artifacts")
	}
	dir = filepath.Join(dir, "review")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Binary(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	// The first call starts the browser for bctx's lifetime; later calls get a deadline.
	start := time.Now()
	require.NoError(t, chromedp.Do(bctx), "start chromium")
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	tctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	return tctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifactsDir(t), name), png, 0o644))
}

// do runs steps with a deadline and, on failure, reports where the browser was.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		if len(html) > 4000 {
			html = html[:4000]
		}
		t.Fatalf("%s: %v\nat %s\n%s", what, err, loc, html)
	}
}

func browserLogin(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	do(t, ctx, "login as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("queue-title")),
	)
}

// text reads the element's text, retrying while the page replaces its DOM between the
// lookup and the read (chromedp reports a node id that no longer exists then).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		s, err := chromedp.Run(cctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return strings.TrimSpace(s)
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "No node with given id") {
			require.NoError(t, err, "text of %s", sel)
		}
		<-tick.C
	}
}

// TestBrowserTwoStageReview drives the real UI in headless Chromium: reviewer A corrects the
// plate and confirms, reviewer B confirms with the keyboard, the FINES message carries the
// corrected plate, the auditor's page shows both decisions, and the UI switches to Dutch
// and back.
func TestBrowserTwoStageReview(t *testing.T) {
	// A short lease, so that the page's renewal is seen within the test.
	h := newHarness(t, nil, func(c *Config) { c.LeaseDuration = 9 * time.Second })
	h.addUser("anna", pw, "fr", "reviewer")
	h.addUser("bart", pw, "nl", "reviewer")
	h.addUser("olga", pw, "en", "auditor")
	capturedAt := time.Date(2026, 11, 27, 8, 15, 0, 0, time.UTC)
	id := h.publishDetection("E40-2026-11-27T08:15:00-0001", capturedAt)
	id2 := h.publishDetection("E40-2026-11-27T08:16:00-0002", capturedAt.Add(time.Minute))
	// The rear camera's view of the first pass reached the detector late: it joins the case.
	rear := h.putEvidence("E40-0001/annotated-rear.jpg", pipeline.EvidenceAnnotated, testJPEG(t, 320, 180, 7))
	rear.View = pipeline.ViewRear
	h.publishLateView("E40-2026-11-27T08:15:00-0001", "E40-0001-rear.jpg", "E40-0001+rear", pipeline.Detection{
		Vehicles: []pipeline.Vehicle{{Class: "car", Score: .9, Phone: pipeline.Finding{State: pipeline.PhoneHeld, Score: .7}}},
		Offences: []pipeline.Offence{{Kind: pipeline.OffencePhone, Score: .7}}, Evidence: []pipeline.Evidence{rear}})
	require.Eventually(t, func() bool {
		c, _, err := h.svc.Cases().Get(h.ctx, id)
		return err == nil && len(c.Detection.Evidence) == 4
	}, 10*time.Second, 20*time.Millisecond)
	var err error
	ctx := newBrowser(t)
	base := h.web.URL

	// Reviewer A, in French.
	browserLogin(t, ctx, base, "anna")
	assert.Equal(t, "File de contrôle", text(t, ctx, "#queue-title"))
	assert.Equal(t, "2", text(t, ctx, `#counts tr[data-state="pending"] td.total`))
	screenshot(t, ctx, "queue-fr.png")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("next-case")),
		chromedp.WaitVisible(chromedp.ID("decide-form")),
		chromedp.WaitVisible(chromedp.ID("plate-crop")),
	))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('main-image').complete && document.getElementById('main-image').naturalWidth > 0`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the annotated image loads")
	naturalWidth := eval[int](t, ctx, `document.getElementById('main-image').naturalWidth`)
	assert.Equal(t, 640, naturalWidth, "the annotated image is served through the authorised URL")
	assert.Equal(t, id, text(t, ctx, "#case-id"))
	assert.Equal(t, "27/11/2026 09:15:00", text(t, ctx, "#captured"), "dates in Europe/Brussels")
	assert.Contains(t, text(t, ctx, "#shortcuts"), "confirmer")
	// The open page renews the lease (every third of its duration) without any action.
	leased, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	require.NotNil(t, leased.Lease)
	require.Eventually(t, func() bool {
		c, _, err := h.svc.Cases().Get(h.ctx, id)
		return err == nil && c.Lease != nil && c.Lease.Holder == "anna" && c.Lease.Expires.After(leased.Lease.Expires)
	}, 20*time.Second, 100*time.Millisecond, "lease renewed by the page")
	// Zoom with the keyboard, and the original for this role.
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("+")))
	transform := eval[string](t, ctx, `document.getElementById('main-image').style.transform`)
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("o")))
	src := eval[string](t, ctx, `document.getElementById('main-image').getAttribute('src')`)
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("o")))
	assert.Contains(t, transform, "scale(1.5)")
	assert.Equal(t, "/evidence/"+id+"/1", src)
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("0")))
	// "v" shows the next camera view (the late rear view, which has no original: "o" keeps
	// it), then back to the front.
	assert.Equal(t, "Arrière", text(t, ctx, "#view-rear"))
	assert.Contains(t, text(t, ctx, "#shortcuts"), "vue de caméra suivante")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("v")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('main-image').complete && document.getElementById('main-image').naturalWidth === 320`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the rear view's annotated image loads")
	assert.Equal(t, "/evidence/"+id+"/3", eval[string](t, ctx, `document.getElementById('main-image').getAttribute('src')`))
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("o")))
	assert.Equal(t, "/evidence/"+id+"/3", eval[string](t, ctx, `document.getElementById('main-image').getAttribute('src')`))
	screenshot(t, ctx, "case-rear-view-fr.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("v")))
	assert.Equal(t, "/evidence/"+id+"/0", eval[string](t, ctx, `document.getElementById('main-image').getAttribute('src')`))
	screenshot(t, ctx, "case-fr.png")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Clear(chromedp.ID("plate")),
		chromedp.SendKeys(chromedp.ID("plate"), "2-xyz-987"),
		chromedp.Click(chromedp.ID("confirm")),
	))
	// The decision leads straight to the next case, rejected here with the keyboard only:
	// "2" picks the second reason code, "x" rejects.
	waitText(t, ctx, "#case-id", id2)
	assert.Equal(t, "Décision enregistrée.", text(t, ctx, "#flash"))
	h.waitState(id, cases.FirstConfirmed)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("decide-form")), chromedp.KeyEvent("2"), chromedp.KeyEvent("x")))
	waitText(t, ctx, "#queue-title", "File de contrôle")
	h.waitState(id2, cases.Rejected)
	rejected, _, err := h.svc.Cases().Get(h.ctx, id2)
	require.NoError(t, err)
	assert.Equal(t, "not_phone", rejected.Reason)

	// The same reviewer is never offered the second stage.
	click(t, ctx, "next-case")
	waitText(t, ctx, "#flash", "Aucun dossier")

	// Switch to Dutch and back.
	click(t, ctx, "lang-nl")
	waitText(t, ctx, "#queue-title", "Controlewachtrij")
	assert.Equal(t, "Volgend dossier N", strings.Join(strings.Fields(text(t, ctx, "#next-case")), " "))
	screenshot(t, ctx, "queue-nl.png")
	a, _, err := h.svc.Accounts().Get(h.ctx, "anna")
	require.NoError(t, err)
	assert.Equal(t, "nl", a.Lang, "the choice is stored on the account")
	click(t, ctx, "lang-fr")
	waitText(t, ctx, "#queue-title", "File de contrôle")
	click(t, ctx, "logout")
	waitText(t, ctx, "#login-title", "")

	// Reviewer B, in Dutch, confirms with the keyboard.
	browserLogin(t, ctx, base, "bart")
	assert.Equal(t, "Controlewachtrij", text(t, ctx, "#queue-title"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.KeyEvent("n"),
		chromedp.WaitVisible(chromedp.ID("decide-form")),
	))
	plate, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("plate")))
	require.NoError(t, err)
	assert.Equal(t, "2XYZ987", plate, "the second reviewer sees the corrected plate")
	assert.Equal(t, "Tweede controle", text(t, ctx, "#stage"))
	screenshot(t, ctx, "case-second-nl.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("c")))
	waitText(t, ctx, "#flash", "Beslissing geregistreerd.")
	h.waitState(id, cases.Confirmed)

	// Exactly one FINES message, with the corrected plate and both decisions.
	fines := readFines(t, h)
	require.Len(t, fines, 1)
	assert.Equal(t, id, fines[0].Header.Get("Nats-Msg-Id"))
	fr, err := pipeline.Decode[pipeline.FineRecord](fines[0].Data)
	require.NoError(t, err)
	assert.Equal(t, "2XYZ987", fr.Plate)
	assert.Equal(t, "BE", fr.Country)
	assert.Equal(t, []string{pipeline.OffencePhone}, fr.Offences)
	require.Len(t, fr.Decisions, 2)
	assert.Equal(t, "anna", fr.Decisions[0].Reviewer)
	assert.Equal(t, "bart", fr.Decisions[1].Reviewer)

	// The auditor sees both decisions and the image views in the trail.
	click(t, ctx, "logout")
	waitText(t, ctx, "#login-title", "")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("user"), "olga"),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("audit-title")),
		chromedp.SendKeys(chromedp.ID("audit-case"), id),
		chromedp.Click(chromedp.ID("audit-search")),
		chromedp.WaitVisible(chromedp.ID("audit-trail")),
	))
	rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#audit-trail tr.audit-row')).map(r => r.dataset.actor + ':' + r.dataset.action)`)
	assert.Contains(t, rows, "anna:decision_first")
	assert.Contains(t, rows, "bart:decision_second")
	assert.Contains(t, rows, "anna:evidence_view")
	assert.Contains(t, text(t, ctx, "#audit-trail"), "1ABC234 → 2XYZ987")
	screenshot(t, ctx, "audit-en.png")

	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityCase, id)}})
	require.NoError(t, err)
	var trail []string
	for _, r := range recs {
		trail = append(trail, r.Event.Actor+":"+r.Event.From+">"+r.Event.To)
	}
	assert.Equal(t, []string{"system:review:>pending", "system:review:pending>pending", "anna:pending>first_confirmed", "bart:first_confirmed>confirmed"}, trail)
}

// waitText waits until the element's text contains want: after a click that navigates, the
// old page still matches a selector for a moment, so waiting for visibility is not enough.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	js, _ := json.Marshal(sel)
	w, _ := json.Marshal(want)
	expr := fmt.Sprintf(`(function(){ var e = document.querySelector(%s); return !!e && e.textContent.indexOf(%s) >= 0; })()`, js, w)
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var err error
	for time.Now().Before(deadline) {
		// A navigation in progress aborts the poll ("target navigated"); poll the new page.
		pctx, cancel := context.WithDeadline(ctx, deadline)
		_, err = chromedp.Run(pctx, chromedp.Poll[bool](expr))
		cancel()
		if err == nil {
			return
		}
		<-tick.C
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	t.Fatalf("waiting for %q in %s: %v (at %s)", want, sel, err, loc)
}

// click clicks the element with this id, retrying when the page replaced its DOM between
// the lookup and the click (chromedp reports a stale node id then).
func click(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var err error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		err = chromedp.Do(cctx, chromedp.Click(chromedp.ID(id)))
		cancel()
		if err == nil {
			return
		}
		<-tick.C
	}
	t.Fatalf("click #%s: %v", id, err)
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, "evaluate %s", expr)
	return v
}

func readFines(t *testing.T, h *harness) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := h.nats.JS.Stream(h.ctx, pipeline.StreamFines)
	require.NoError(t, err)
	info, err := s.Info(h.ctx)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(h.ctx, seq)
		if err == nil && m.Subject == pipeline.SubjectFinesCreate {
			out = append(out, m)
		}
	}
	return out
}
