package review

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crossborder/offencecam/review/accounts"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/crossborder/offencecam/review/i18n"
	"github.com/crossborder/offencecam/review/web"
)

const (
	sessionCookie    = "offencecam_session"
	loginCSRFCookie  = "offencecam_login"
	csrfHeader       = "X-CSRF-Token"
	csrfField        = "csrf"
	maxFormBytes     = 64 << 10
	contentSecPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(web.FS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))

	// Pages.
	mux.HandleFunc("GET /{$}", s.page(nil, func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		http.Redirect(w, r, homeFor(rc.acct), http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSubmit)
	mux.HandleFunc("POST /logout", s.page(nil, s.logoutSubmit))
	mux.HandleFunc("GET /password", s.page(nil, s.passwordPage))
	mux.HandleFunc("POST /password", s.page(nil, s.passwordSubmit))
	mux.HandleFunc("POST /lang", s.page(nil, s.langSubmit))
	reviewers := []string{cases.RoleReviewer, cases.RoleSupervisor}
	mux.HandleFunc("GET /queue", s.page(reviewers, s.queuePage))
	mux.HandleFunc("POST /next", s.page(reviewers, s.nextSubmit))
	mux.HandleFunc("GET /cases/{id}", s.page([]string{cases.RoleReviewer, cases.RoleSupervisor, cases.RoleAuditor}, s.casePage))
	mux.HandleFunc("POST /cases/{id}/decide", s.page(reviewers, s.decideSubmit))
	mux.HandleFunc("POST /cases/{id}/release", s.page(reviewers, s.releaseSubmit))
	mux.HandleFunc("POST /cases/{id}/lease", s.page(reviewers, s.leaseSubmit))
	mux.HandleFunc("GET /supervisor", s.page([]string{cases.RoleSupervisor}, s.supervisorPage))
	mux.HandleFunc("GET /audit", s.page([]string{cases.RoleAuditor}, s.auditPage))
	mux.HandleFunc("GET /admin", s.page([]string{cases.RoleAdmin}, s.adminPage))
	mux.HandleFunc("POST /admin/users/{name}/disable", s.page([]string{cases.RoleAdmin}, s.adminDisableSubmit(true)))
	mux.HandleFunc("POST /admin/users/{name}/enable", s.page([]string{cases.RoleAdmin}, s.adminDisableSubmit(false)))
	mux.HandleFunc("GET /evidence/{id}/{n}", s.api(s.cfg.EvidenceRoles, s.evidence))

	// JSON API: the same actions under the same authorisation.
	mux.HandleFunc("POST /api/login", s.apiLogin)
	mux.HandleFunc("POST /api/logout", s.api(nil, s.apiLogout))
	mux.HandleFunc("GET /api/me", s.api(nil, s.apiMe))
	mux.HandleFunc("POST /api/password", s.api(nil, s.apiPassword))
	mux.HandleFunc("POST /api/lang", s.api(nil, s.apiLang))
	mux.HandleFunc("GET /api/queue", s.api(reviewers, s.apiQueue))
	mux.HandleFunc("POST /api/next", s.api(reviewers, s.apiNext))
	mux.HandleFunc("GET /api/cases/{id}", s.api([]string{cases.RoleReviewer, cases.RoleSupervisor, cases.RoleAuditor}, s.apiCase))
	mux.HandleFunc("POST /api/cases/{id}/lease", s.api(reviewers, s.apiLease))
	mux.HandleFunc("POST /api/cases/{id}/release", s.api(reviewers, s.apiRelease))
	mux.HandleFunc("POST /api/cases/{id}/decision", s.api(reviewers, s.apiDecision))
	mux.HandleFunc("GET /api/supervisor", s.api([]string{cases.RoleSupervisor}, s.apiSupervisor))
	mux.HandleFunc("GET /api/audit", s.api([]string{cases.RoleAuditor}, s.apiAudit))
	mux.HandleFunc("GET /api/admin/users", s.api([]string{cases.RoleAdmin}, s.apiUsers))
	mux.HandleFunc("POST /api/admin/users/{name}/disable", s.api([]string{cases.RoleAdmin}, s.apiDisable(true)))
	mux.HandleFunc("POST /api/admin/users/{name}/enable", s.api([]string{cases.RoleAdmin}, s.apiDisable(false)))
	return securityHeaders(mux)
}

// reqCtx is the authenticated caller of a request.
type reqCtx struct {
	acct  *accounts.Account
	sess  *accounts.Session
	token string
}

func (rc *reqCtx) actor() cases.Actor { return cases.Actor{Name: rc.acct.Name, Roles: rc.acct.Roles} }

func (rc *reqCtx) has(roles ...string) bool {
	for _, r := range roles {
		if rc.acct.Has(r) {
			return true
		}
	}
	return false
}

func homeFor(a *accounts.Account) string {
	switch {
	case a.MustChangePassword:
		return "/password"
	case a.Has(cases.RoleReviewer):
		return "/queue"
	case a.Has(cases.RoleSupervisor):
		return "/supervisor"
	case a.Has(cases.RoleAuditor):
		return "/audit"
	case a.Has(cases.RoleAdmin):
		return "/admin"
	}
	return "/password"
}

var errUnauthenticated = errors.New("not logged in")

// authenticate finds the caller's live session and enabled account.
func (s *Service) authenticate(r *http.Request) (*reqCtx, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, errUnauthenticated
	}
	sess, err := s.sessions.Lookup(r.Context(), c.Value)
	if err != nil {
		return nil, errUnauthenticated
	}
	acct, _, err := s.accounts.Get(r.Context(), sess.User)
	if err != nil || acct.Disabled {
		return nil, errUnauthenticated
	}
	// A password change (by the user or `review user passwd`) ends every older session.
	if acct.PasswordChangedAt.After(sess.CreatedAt) {
		_ = s.sessions.Delete(r.Context(), c.Value)
		return nil, errUnauthenticated
	}
	return &reqCtx{acct: acct, sess: sess, token: c.Value}, nil
}

func stateChanging(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
}

// csrfOK compares the request's token with the session's in constant time. Pages send it as
// a form field, the API as the X-CSRF-Token header.
func csrfOK(r *http.Request, sess *accounts.Session, allowForm bool) bool {
	tok := r.Header.Get(csrfHeader)
	if tok == "" && allowForm {
		tok = r.PostFormValue(csrfField)
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRF)) == 1
}

type handlerFunc func(http.ResponseWriter, *http.Request, *reqCtx)

// page wraps an HTML handler: login required (redirect), roles, CSRF on state changes, and
// the forced password change.
func (s *Service) page(roles []string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, err := s.authenticate(r)
		if err != nil {
			if stateChanging(r) {
				http.Error(w, "not logged in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if stateChanging(r) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !csrfOK(r, rc.sess, true) {
				s.renderError(w, r, rc, http.StatusForbidden, "err.csrf")
				return
			}
		}
		if rc.acct.MustChangePassword && r.URL.Path != "/password" && r.URL.Path != "/logout" && r.URL.Path != "/lang" {
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		}
		if len(roles) > 0 && !rc.has(roles...) {
			s.renderError(w, r, rc, http.StatusForbidden, "err.forbidden")
			return
		}
		h(w, r, rc)
	}
}

// api wraps a JSON handler: 401 without a session, 403 without a role or a valid
// X-CSRF-Token on state changes.
func (s *Service) api(roles []string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc, err := s.authenticate(r)
		if err != nil {
			writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "log in first")
			return
		}
		if stateChanging(r) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !csrfOK(r, rc.sess, false) {
				writeJSONError(w, http.StatusForbidden, "csrf", "missing or wrong "+csrfHeader+" header")
				return
			}
		}
		if rc.acct.MustChangePassword && !slices.Contains([]string{"/api/password", "/api/logout", "/api/me"}, r.URL.Path) {
			writeJSONError(w, http.StatusForbidden, "password_change_required", "change the one-time password first")
			return
		}
		if len(roles) > 0 && !rc.has(roles...) {
			writeJSONError(w, http.StatusForbidden, "forbidden", "your role does not allow this")
			return
		}
		h(w, r, rc)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// caseErr maps store errors to an HTTP status and a catalogue key.
func caseErr(err error) (int, string) {
	switch {
	case errors.Is(err, cases.ErrNotFound):
		return http.StatusNotFound, "err.not_found"
	case errors.Is(err, cases.ErrNoCase):
		return http.StatusNotFound, "err.no_case"
	case errors.Is(err, cases.ErrSameReviewer):
		return http.StatusForbidden, "err.same_reviewer"
	case errors.Is(err, cases.ErrForbidden):
		return http.StatusForbidden, "err.forbidden"
	case errors.Is(err, cases.ErrConflict):
		return http.StatusConflict, "err.conflict"
	case errors.Is(err, cases.ErrLeased):
		return http.StatusConflict, "err.leased"
	case errors.Is(err, cases.ErrNotLeased):
		return http.StatusConflict, "err.not_leased"
	case errors.Is(err, cases.ErrIllegalTransition):
		return http.StatusConflict, "err.illegal"
	case errors.Is(err, cases.ErrBadDecision):
		return http.StatusBadRequest, "err.bad_decision"
	}
	return http.StatusInternalServerError, "err.internal"
}

func (s *Service) apiCaseError(w http.ResponseWriter, err error) {
	status, key := caseErr(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("review API", "err", err)
		msg = "internal error"
	}
	writeJSONError(w, status, strings.TrimPrefix(key, "err."), msg)
}

// secure decides the Secure attribute of cookies (see Config.SecureCookies).
func (s *Service) secure(r *http.Request) bool {
	switch s.cfg.SecureCookies {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if host, _, err := net.SplitHostPort(a.String()); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
				return false
			}
		}
	}
	return true
}

func (s *Service) setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(s.cfg.SessionAbsolute.Seconds())})
}

func (s *Service) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter bounds login attempts per client address and user name in a one-minute
// window; it is per instance, the account lockout (in KV) is global.
type loginLimiter struct {
	mu    sync.Mutex
	limit int
	now   func() time.Time
	win   map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLoginLimiter(limit int, now func() time.Time) *loginLimiter {
	return &loginLimiter{limit: limit, now: now, win: map[string]*window{}}
}

func (l *loginLimiter) allow(ip, user string, factor int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.win) > 10000 {
		for k, w := range l.win {
			if now.Sub(w.start) > time.Minute {
				delete(l.win, k)
			}
		}
	}
	key := ip + "\x00" + user
	w := l.win[key]
	if w == nil || now.Sub(w.start) > time.Minute {
		w = &window{start: now}
		l.win[key] = w
	}
	w.n++
	return w.n <= l.limit*factor
}

// login checks credentials with rate limiting and lockout, audits the attempt, and starts a
// session.
func (s *Service) login(ctx context.Context, r *http.Request, user, password string) (*accounts.Account, string, *accounts.Session, error) {
	user = strings.ToLower(strings.TrimSpace(user))
	if len(user) > 64 {
		user = user[:64] // no valid name is longer; keeps the limiter's keys bounded
	}
	ip := clientIP(r)
	// Per address and name, and (ten times looser) per address alone, so that cycling
	// through names does not lift the limit.
	if !s.limiter.allow(ip, "\x00any", 10) || !s.limiter.allow(ip, user, 1) {
		s.metrics.logins.WithLabelValues("rate_limited").Inc()
		return nil, "", nil, errRateLimited
	}
	acct, err := s.accounts.Authenticate(ctx, user, password)
	if err != nil {
		result := "bad_credentials"
		switch {
		case errors.Is(err, accounts.ErrLocked):
			result = "locked"
		case errors.Is(err, accounts.ErrDisabled):
			result = "disabled"
		case !errors.Is(err, accounts.ErrBadCredentials):
			return nil, "", nil, err
		}
		s.metrics.logins.WithLabelValues(result).Inc()
		// Failures are audited for existing accounts only: unknown names would let anyone
		// fill the append-only stream.
		if _, _, gerr := s.accounts.Get(ctx, user); gerr == nil {
			s.auditUser(ctx, user, "login_"+result, map[string]string{"ip": ip})
		}
		return nil, "", nil, err
	}
	tok, sess, err := s.sessions.Create(ctx, acct.Name, ip)
	if err != nil {
		return nil, "", nil, err
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	s.auditUser(ctx, acct.Name, "login", map[string]string{"ip": ip})
	return acct, tok, sess, nil
}

var errRateLimited = errors.New("too many login attempts; wait a minute")

func loginErrKey(err error) string {
	switch {
	case errors.Is(err, errRateLimited):
		return "login.rate"
	case errors.Is(err, accounts.ErrLocked):
		return "login.locked"
	case errors.Is(err, accounts.ErrBadCredentials), errors.Is(err, accounts.ErrDisabled):
		return "login.failed"
	}
	return "err.internal"
}

func (s *Service) auditUser(ctx context.Context, user, action string, details map[string]string) {
	if err := s.audit.Publish(ctx, pipelineAudit(user, action, user, details), ""); err != nil {
		s.log.Error("audit publish failed", "action", action, "user", user, "err", err)
	}
}

// Templates.

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"add": func(a, b int) int { return a + b }}
	out := map[string]*template.Template{}
	for _, p := range []string{"login", "password", "error", "queue", "case", "supervisor", "audit", "admin"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(web.FS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

type langChoice struct {
	Code, Name string
	Current    bool
}

// pageData is what every template gets.
type pageData struct {
	L            i18n.Localizer
	Title        string
	User         *accounts.Account
	CSRF         string
	Path         string
	Msg          string
	Languages    []langChoice
	CanReview    bool
	CanSupervise bool
	CanAudit     bool
	LeaseURL     string
	LeaseEveryMS int64
	Data         any
}

func (s *Service) localizer(rc *reqCtx) i18n.Localizer {
	if rc != nil && rc.acct != nil {
		return i18n.For(rc.acct.Lang)
	}
	return i18n.For(s.cfg.DefaultLanguage)
}

// flashes are the messages a redirect may ask a page to show (?msg=…); anything else is
// ignored so the parameter cannot inject text.
var flashes = map[string]string{"decided": "flash.decided", "none": "flash.none", "released": "flash.released",
	"password": "password.changed", "no_case": "err.no_case", "lease": "err.leased"}

func (s *Service) newPage(r *http.Request, rc *reqCtx, titleKey string, data any) *pageData {
	L := s.localizer(rc)
	p := &pageData{L: L, Title: L.T(titleKey), Path: r.URL.Path, Data: data}
	if k, ok := flashes[r.URL.Query().Get("msg")]; ok {
		p.Msg = L.T(k)
	}
	if rc != nil {
		p.User, p.CSRF = rc.acct, rc.sess.CSRF
		p.CanReview = rc.has(cases.RoleReviewer, cases.RoleSupervisor)
		p.CanSupervise = rc.has(cases.RoleSupervisor)
		p.CanAudit = rc.has(cases.RoleAuditor)
		for _, l := range i18n.Languages {
			p.Languages = append(p.Languages, langChoice{Code: l, Name: L.T("lang." + l), Current: l == L.Lang})
		}
	}
	return p
}

func (s *Service) render(w http.ResponseWriter, status int, name string, p *pageData) {
	t, ok := s.tmpl[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

func (s *Service) renderError(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, key string) {
	p := s.newPage(r, rc, "err.title", nil)
	p.Data = p.L.T(key)
	s.render(w, status, "error", p)
}

// safeBack keeps a redirect target on this site.
// Only this site's own paths qualify (letters, digits, "/", "-", "_", "=", "."), so control
// characters, backslashes and "//" that browsers read as another host are refused.
func safeBack(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || len(p) > 512 {
		return "/"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-_=.", c) >= 0) {
			return "/"
		}
	}
	return p
}
