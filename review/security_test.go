package review

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pw = "a long test password"

func TestUnauthenticatedRequestsRefused(t *testing.T) {
	h := newHarness(t, nil, nil)
	id := h.publishDetection("unauth-1", time.Now())
	c := h.client()
	for _, p := range []string{"/", "/queue", "/cases/" + id, "/supervisor", "/audit", "/admin", "/password"} {
		res, _ := c.do(http.MethodGet, p, nil, nil)
		assert.Equal(t, http.StatusSeeOther, res.StatusCode, p)
		assert.Equal(t, "/login", res.Header.Get("Location"), p)
	}
	for _, p := range []string{"/api/me", "/api/queue", "/api/cases/" + id, "/api/supervisor", "/api/audit?case=" + id,
		"/api/admin/users", "/evidence/" + id + "/0", "/evidence/" + id + "/1"} {
		res, body := c.do(http.MethodGet, p, nil, nil)
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, p)
		assert.NotContains(t, string(body), "\xff\xd8", "no image bytes for %s", p)
	}
	for _, p := range []string{"/next", "/cases/" + id + "/decide", "/cases/" + id + "/lease", "/lang", "/logout",
		"/api/next", "/api/cases/" + id + "/decision", "/api/cases/" + id + "/lease", "/api/admin/users/x/disable"} {
		res, _ := c.do(http.MethodPost, p, "outcome=confirm", nil)
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, p)
	}
	// A forged cookie is no session.
	u, _ := url.Parse(h.web.URL)
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "forged"}})
	res, _ := c.do(http.MethodGet, "/api/me", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	// Nothing happened to the case.
	got, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Nil(t, got.Lease)
	assert.Equal(t, cases.Pending, got.State)
}

func TestSecurityHeadersAndCookieFlags(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	c := h.client()
	res, body := c.do(http.MethodGet, "/login", nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
	assert.NotContains(t, string(body), "<script>", "no inline script")
	assert.Contains(t, string(body), `<script src="/static/app.js"`)

	res = c.login("anna", pw)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var sc *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	require.NotNil(t, sc)
	assert.True(t, sc.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, sc.SameSite)
	assert.False(t, sc.Secure, "auto mode: plain HTTP on a loopback listener")
	// Behind a TLS proxy (or with secure_cookies: always) the cookie is Secure.
	res, _ = c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": pw}, map[string]string{"X-Forwarded-Proto": "https"})
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			assert.True(t, ck.Secure)
		}
	}
	res, _ = c.do(http.MethodGet, "/static/app.js", nil, nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Type"), "javascript")
}

func TestReviewerCannotDoSupervisorOrAdminActions(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	h.addUser("bart", pw, "nl", "reviewer")
	h.addUser("sara", pw, "nl", "supervisor")
	h.addUser("olga", pw, "en", "auditor")
	h.addUser("root", pw, "en", "admin")
	id := h.publishDetection("roles-1", time.Now())

	anna := h.client()
	require.Equal(t, http.StatusOK, anna.login("anna", pw).StatusCode)
	bart := h.client()
	require.Equal(t, http.StatusOK, bart.login("bart", pw).StatusCode)

	// Make the case disputed through the API: anna confirms, bart disagrees.
	res, body := anna.api(http.MethodPost, "/api/next", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	res, body = anna.api(http.MethodPost, "/api/cases/"+id+"/decision", cases.Input{Outcome: pipeline.OutcomeConfirm})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	res, body = anna.api(http.MethodPost, "/api/cases/"+id+"/lease", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "first reviewer takes the second stage: %s", body)
	res, _ = bart.api(http.MethodPost, "/api/cases/"+id+"/lease", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, body = bart.api(http.MethodPost, "/api/cases/"+id+"/decision", cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	h.waitState(id, cases.Disputed)

	// Supervisor actions: refused to reviewers.
	for _, p := range []string{"/api/supervisor", "/api/audit?case=" + id, "/api/admin/users"} {
		res, _ := anna.api(http.MethodGet, p, nil)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, p)
	}
	for _, p := range []string{"/supervisor", "/audit?case=" + id, "/admin"} {
		res, _ := anna.do(http.MethodGet, p, nil, nil)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, p)
	}
	res, _ = anna.api(http.MethodPost, "/api/cases/"+id+"/lease", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "reviewer takes a disputed case")
	res, _ = anna.api(http.MethodPost, "/api/next", cases.Filter{Stage: "supervisor"})
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "no disputed case is offered to a reviewer")
	res, _ = anna.api(http.MethodPost, "/api/cases/"+id+"/decision", cases.Input{Outcome: pipeline.OutcomeConfirm})
	assert.Equal(t, http.StatusConflict, res.StatusCode)
	res, _ = anna.api(http.MethodPost, "/api/admin/users/bart/disable", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res, _ = anna.do(http.MethodPost, "/admin/users/bart/disable", "csrf="+url.QueryEscape(anna.csrf), nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	got, _, err := h.svc.Accounts().Get(h.ctx, "bart")
	require.NoError(t, err)
	assert.False(t, got.Disabled)
	c, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Equal(t, cases.Disputed, c.State)

	// The supervisor can settle it, the auditor read the trail, the admin disable an account.
	sara := h.client()
	require.Equal(t, http.StatusOK, sara.login("sara", pw).StatusCode)
	res, body = sara.api(http.MethodPost, "/api/next", cases.Filter{Stage: "supervisor"})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	res, body = sara.api(http.MethodPost, "/api/cases/"+id+"/decision", cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	res, _ = sara.api(http.MethodGet, "/api/supervisor", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)

	olga := h.client()
	require.Equal(t, http.StatusOK, olga.login("olga", pw).StatusCode)
	res, body = olga.api(http.MethodGet, "/api/audit?case="+id, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var trail struct {
		Events []struct{ Event pipeline.AuditEvent } `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &trail))
	var actors []string
	for _, e := range trail.Events {
		if e.Event.Entity == audit.EntityCase {
			actors = append(actors, e.Event.Actor+":"+e.Event.To)
		}
	}
	assert.Equal(t, []string{"system:review:pending", "anna:first_confirmed", "bart:disputed", "sara:rejected"}, actors)
	res, _ = olga.api(http.MethodPost, "/api/next", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "auditors do not review")

	root := h.client()
	require.Equal(t, http.StatusOK, root.login("root", pw).StatusCode)
	res, _ = root.api(http.MethodPost, "/api/admin/users/bart/disable", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = bart.api(http.MethodGet, "/api/me", nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "a disabled account's session ends")
	res, _ = root.api(http.MethodGet, "/api/cases/"+id, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "admins do not see cases")
	res, _ = root.do(http.MethodGet, "/evidence/"+id+"/0", nil, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "admins do not see evidence")
}

func TestCSRFTokenRequired(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	id := h.publishDetection("csrf-1", time.Now())
	c := h.client()
	require.Equal(t, http.StatusOK, c.login("anna", pw).StatusCode)

	res, body := c.do(http.MethodPost, "/api/next", nil, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, string(body))
	assert.Contains(t, string(body), `"csrf"`)
	res, _ = c.do(http.MethodPost, "/api/next", nil, map[string]string{csrfHeader: c.csrf + "x"})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res, _ = c.do(http.MethodPost, "/next", "offence=", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "form without token")
	res, _ = c.do(http.MethodPost, "/next", "csrf=nope", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "form with a wrong token")
	res, _ = c.do(http.MethodPost, "/lang", "lang=nl", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	got, _, err := h.svc.Cases().Get(h.ctx, id)
	require.NoError(t, err)
	assert.Nil(t, got.Lease, "refused requests leased nothing")
	a, _, err := h.svc.Accounts().Get(h.ctx, "anna")
	require.NoError(t, err)
	assert.Equal(t, "fr", a.Lang)

	// With the token, the same form works.
	res, _ = c.do(http.MethodPost, "/next", "csrf="+url.QueryEscape(c.csrf), nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.True(t, strings.HasPrefix(res.Header.Get("Location"), "/cases/"+id))

	// The login form needs its own token (login CSRF).
	res, _ = h.client().do(http.MethodPost, "/login", "user=anna&password="+url.QueryEscape(pw), nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	// A JSON API login cannot come from a cross-site form.
	res, _ = h.client().do(http.MethodPost, "/api/login", "user=anna&password="+url.QueryEscape(pw), nil)
	assert.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode)
}

func TestLockoutAfterRepeatedBadLogins(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) { c.LockoutThreshold = 4; c.LoginRatePerMinute = 100 })
	h.addUser("anna", pw, "fr", "reviewer")
	c := h.client()
	for i := 1; i <= 3; i++ {
		res, body := c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": "wrong password " + fmt.Sprint(i)}, nil)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Contains(t, string(body), "bad_credentials")
	}
	res, body := c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": "wrong again!!"}, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, string(body), `"locked"`)
	res, body = c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": pw}, nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "the right password is refused while locked")
	assert.Contains(t, string(body), `"locked"`)
	a, _, err := h.svc.Accounts().Get(h.ctx, "anna")
	require.NoError(t, err)
	assert.True(t, a.LockedUntil.After(time.Now()))
	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityUser, "anna")}})
	require.NoError(t, err)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Event.Action)
	}
	assert.Equal(t, []string{"login_bad_credentials", "login_bad_credentials", "login_bad_credentials", "login_locked", "login_locked"}, actions)
}

func TestLoginRateLimitPerAddressAndUser(t *testing.T) {
	// The limit counts attempts in a one-minute window. On the wall clock some thirty logins
	// (each hashes a password) on a slow machine could outlast the window and reset it mid
	// test; on the test's clock the window ends only when the test says so.
	clk := &testClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	h := newHarness(t, clk.Now, func(c *Config) { c.LoginRatePerMinute = 3; c.LockoutThreshold = 100 })
	h.addUser("anna", pw, "fr", "reviewer")
	h.addUser("bart", pw, "fr", "reviewer")
	c := h.client()
	for i := 0; i < 3; i++ {
		res, _ := c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": "wrong password!!"}, nil)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	res, _ := c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": pw}, nil)
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.Equal(t, http.StatusOK, c.login("bart", pw).StatusCode, "another user from the same address is not limited")
	// Cycling through names hits the per-address limit (10 × 3 attempts a minute).
	limited := false
	for i := 0; i < 40 && !limited; i++ {
		res, _ := c.do(http.MethodPost, "/api/login", map[string]string{"user": fmt.Sprintf("guess%02d", i), "password": "wrong password!!"}, nil)
		limited = res.StatusCode == http.StatusTooManyRequests
	}
	assert.True(t, limited)
	// Unknown names leave no trace in AUDIT.
	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityUser, "guess00")}})
	require.NoError(t, err)
	assert.Empty(t, recs)
	// Still limited just before the minute is up; a new window opens after it.
	clk.Add(59 * time.Second)
	res, _ = c.do(http.MethodPost, "/api/login", map[string]string{"user": "anna", "password": pw}, nil)
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode, "within the minute")
	clk.Add(2 * time.Second)
	assert.Equal(t, http.StatusOK, c.login("anna", pw).StatusCode, "a minute later the same user and address may log in")
}

func TestFirstAdminOneTimePassword(t *testing.T) {
	h := newHarness(t, nil, nil)
	var out strings.Builder
	require.NoError(t, h.svc.EnsureFirstAdmin(h.ctx, &out))
	var once string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "password:"); ok {
			once = strings.TrimSpace(v)
		}
	}
	require.Len(t, once, 20, out.String())
	var again strings.Builder
	require.NoError(t, h.svc.EnsureFirstAdmin(h.ctx, &again))
	assert.Empty(t, again.String(), "printed only once")

	c := h.client()
	res := c.login("admin", once)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, body := c.api(http.MethodGet, "/api/admin/users", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, string(body), "password_change_required")
	res, _ = c.do(http.MethodGet, "/admin", nil, nil)
	assert.Equal(t, "/password", res.Header.Get("Location"))
	res, _ = c.api(http.MethodPost, "/api/password", map[string]string{"current": once, "new": once})
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "the one-time password cannot be kept")
	other := h.client()
	require.Equal(t, http.StatusOK, other.login("admin", once).StatusCode)
	res, body = c.api(http.MethodPost, "/api/password", map[string]string{"current": once, "new": "my own admin password"})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	var changed struct {
		CSRF string `json:"csrf_token"`
	}
	require.NoError(t, json.Unmarshal(body, &changed))
	require.NotEmpty(t, changed.CSRF)
	c.csrf = changed.CSRF
	res, _ = other.api(http.MethodGet, "/api/me", nil)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "a password change ends the other sessions")
	res, body = c.api(http.MethodGet, "/api/admin/users", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), `"admin"`)
	assert.Equal(t, http.StatusUnauthorized, h.client().login("admin", once).StatusCode, "the one-time password is spent")
}

func TestEvidenceAuthorisedAuditedAndVerified(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.addUser("anna", pw, "fr", "reviewer")
	h.addUser("bart", pw, "fr", "reviewer")
	h.addUser("olga", pw, "en", "auditor")
	svg := h.putEvidence("ev-1/driver.svg", pipeline.EvidenceDriverCrop, []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
	svg.ContentType = "image/svg+xml"
	id := h.publishDetection("ev-1", time.Now(), svg)
	anna, bart, olga := h.client(), h.client(), h.client()
	require.Equal(t, http.StatusOK, anna.login("anna", pw).StatusCode)
	require.Equal(t, http.StatusOK, bart.login("bart", pw).StatusCode)
	require.Equal(t, http.StatusOK, olga.login("olga", pw).StatusCode)

	res, _ := anna.api(http.MethodPost, "/api/next", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, body := anna.do(http.MethodGet, "/evidence/"+id+"/0", nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, []byte{0xff, 0xd8}, body[:2])
	res, _ = anna.do(http.MethodGet, "/evidence/"+id+"/1", nil, nil)
	assert.Equal(t, http.StatusOK, res.StatusCode, "reviewers may see the original")

	res, _ = bart.do(http.MethodGet, "/evidence/"+id+"/0", nil, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a reviewer without the case")
	res, _ = olga.do(http.MethodGet, "/evidence/"+id+"/0", nil, nil)
	assert.Equal(t, http.StatusOK, res.StatusCode, "auditors may see the annotated image")
	res, _ = olga.do(http.MethodGet, "/evidence/"+id+"/1", nil, nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "but not the original by default")
	res, _ = anna.do(http.MethodGet, "/evidence/"+id+"/3", nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/octet-stream", res.Header.Get("Content-Type"), "an SVG is never served as a document")
	assert.Equal(t, "attachment", res.Header.Get("Content-Disposition"))
	res, _ = anna.do(http.MethodGet, "/evidence/"+id+"/9", nil, nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)

	recs, err := audit.Read(h.ctx, h.nats.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(audit.EntityEvidence, id)}})
	require.NoError(t, err)
	var views []string
	for _, r := range recs {
		views = append(views, r.Event.Actor+":"+r.Event.Details["kind"])
	}
	assert.Equal(t, []string{"anna:annotated", "anna:original", "olga:annotated", "anna:driver_crop"}, views, "every served image, and only those, is audited")

	// A tampered object is not served.
	_, err = h.store.Put(h.ctx, pipeline.BucketEvidence, "ev-1/annotated.jpg", strings.NewReader("tampered"), 8, objstoreOpts())
	require.NoError(t, err)
	res, body = anna.do(http.MethodGet, "/evidence/"+id+"/0", nil, nil)
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
	assert.Contains(t, string(body), "integrity")
}
