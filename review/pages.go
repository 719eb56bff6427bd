package review

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/accounts"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/crossborder/offencecam/review/i18n"
)

func pipelineAudit(actor, action, user string, details map[string]string) pipeline.AuditEvent {
	return pipeline.AuditEvent{Actor: actor, Action: action, Entity: audit.EntityUser, EntityID: user, Details: details}
}

// Login.

type loginData struct {
	Error     string
	LoginCSRF string
}

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	if rc, err := s.authenticate(r); err == nil {
		http.Redirect(w, r, homeFor(rc.acct), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *Service) renderLogin(w http.ResponseWriter, r *http.Request, status int, errKey string) {
	// Login CSRF: a random token in a cookie and the form (double submit), so another site
	// cannot log a victim into an attacker's account.
	tok, err := accounts.RandomToken()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/login", HttpOnly: true,
		Secure: s.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	p := s.newPage(r, nil, "login.title", nil)
	d := loginData{LoginCSRF: tok}
	if errKey != "" {
		d.Error = p.L.T(errKey)
	}
	p.Data = d
	s.render(w, status, "login", p)
}

func (s *Service) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	c, err := r.Cookie(loginCSRFCookie)
	form := r.PostFormValue(csrfField)
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		s.renderLogin(w, r, http.StatusForbidden, "err.csrf")
		return
	}
	acct, tok, _, err := s.login(r.Context(), r, r.PostFormValue("user"), r.PostFormValue("password"))
	if err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, errRateLimited) {
			status = http.StatusTooManyRequests
		}
		s.renderLogin(w, r, status, loginErrKey(err))
		return
	}
	s.setSessionCookie(w, r, tok)
	http.Redirect(w, r, homeFor(acct), http.StatusSeeOther)
}

func (s *Service) logoutSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	_ = s.sessions.Delete(r.Context(), rc.token)
	s.auditUser(r.Context(), rc.acct.Name, "logout", nil)
	s.clearSessionCookie(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// Password.

type errData struct{ Error string }

func (s *Service) passwordPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.render(w, http.StatusOK, "password", s.newPage(r, rc, "password.title", errData{}))
}

func (s *Service) changePassword(r *http.Request, rc *reqCtx, current, next, repeat string) (int, string) {
	if next != repeat {
		return http.StatusBadRequest, "password.mismatch"
	}
	if err := accounts.CheckPassword(next); err != nil {
		return http.StatusBadRequest, "password.weak"
	}
	if next == current {
		return http.StatusBadRequest, "password.same"
	}
	if ok, err := accounts.VerifyPassword(rc.acct.Hash, current); err != nil || !ok {
		return http.StatusUnauthorized, "password.wrong"
	}
	if err := s.accounts.SetPassword(r.Context(), rc.acct.Name, next, false); err != nil {
		s.log.Error("set password", "user", rc.acct.Name, "err", err)
		return http.StatusInternalServerError, "err.internal"
	}
	s.auditUser(r.Context(), rc.acct.Name, "password_changed", nil)
	return http.StatusOK, ""
}

// renewSession replaces the caller's session after a password change (which ended it).
func (s *Service) renewSession(w http.ResponseWriter, r *http.Request, rc *reqCtx) (*accounts.Session, error) {
	_ = s.sessions.Delete(r.Context(), rc.token)
	tok, sess, err := s.sessions.Create(r.Context(), rc.acct.Name, clientIP(r))
	if err != nil {
		return nil, err
	}
	s.setSessionCookie(w, r, tok)
	return sess, nil
}

func (s *Service) passwordSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	status, key := s.changePassword(r, rc, r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("repeat"))
	if key != "" {
		p := s.newPage(r, rc, "password.title", nil)
		p.Data = errData{Error: p.L.T(key)}
		s.render(w, status, "password", p)
		return
	}
	rc.acct.MustChangePassword = false
	if _, err := s.renewSession(w, r, rc); err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, homeFor(rc.acct)+"?msg=password", http.StatusSeeOther)
}

func (s *Service) langSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	lang := r.PostFormValue("lang")
	if !i18n.Supported(lang) {
		s.renderError(w, r, rc, http.StatusBadRequest, "err.bad_request")
		return
	}
	if err := s.accounts.SetLang(r.Context(), rc.acct.Name, lang); err != nil {
		s.log.Error("set language", "user", rc.acct.Name, "err", err)
		s.renderError(w, r, rc, http.StatusInternalServerError, "err.internal")
		return
	}
	http.Redirect(w, r, safeBack(r.PostFormValue("back")), http.StatusSeeOther)
}

// Queue.

type countRow struct {
	State      cases.State `json:"state"`
	PerOffence []int       `json:"per_offence"`
	Total      int         `json:"total"`
}

type queueStats struct {
	Offences      []string      `json:"offences"`
	Rows          []countRow    `json:"counts"`
	OldestPending time.Duration `json:"-"`
	OldestSeconds float64       `json:"oldest_pending_seconds"`
	Cameras       []string      `json:"cameras"`
	Sites         []string      `json:"sites"`
	Mine          []cases.Case  `json:"-"`
	MineIDs       []string      `json:"my_leases"`
	Filter        cases.Filter  `json:"-"`
}

func (s *Service) queueStats(rc *reqCtx) queueStats {
	snap := s.cases.Index().Select(nil)
	now := s.now()
	offences := slices.Clone(pipeline.OffenceKinds)
	for _, c := range snap {
		for _, k := range c.Flagged {
			if !slices.Contains(offences, k) {
				offences = append(offences, k)
			}
		}
	}
	q := queueStats{Offences: offences}
	byState := map[cases.State]*countRow{}
	for _, st := range cases.AllStates {
		row := &countRow{State: st, PerOffence: make([]int, len(offences))}
		byState[st] = row
	}
	cams, sites := map[string]bool{}, map[string]bool{}
	var oldest time.Time
	for _, c := range snap {
		row := byState[c.State]
		if row == nil {
			continue
		}
		row.Total++
		for i, k := range offences {
			if slices.Contains(c.Flagged, k) {
				row.PerOffence[i]++
			}
		}
		if c.State.Reviewable() {
			cams[c.Detection.Camera] = true
			if c.Detection.Site != "" {
				sites[c.Detection.Site] = true
			}
		}
		if c.State == cases.Pending && (oldest.IsZero() || c.CreatedAt.Before(oldest)) {
			oldest = c.CreatedAt
		}
		if rc != nil && c.LeasedTo(rc.acct.Name, now) {
			q.Mine = append(q.Mine, *c)
			q.MineIDs = append(q.MineIDs, c.ID)
		}
	}
	for _, st := range cases.AllStates {
		q.Rows = append(q.Rows, *byState[st])
	}
	if !oldest.IsZero() {
		q.OldestPending = now.Sub(oldest)
		q.OldestSeconds = q.OldestPending.Seconds()
	}
	for c := range cams {
		q.Cameras = append(q.Cameras, c)
	}
	for c := range sites {
		q.Sites = append(q.Sites, c)
	}
	sort.Strings(q.Cameras)
	sort.Strings(q.Sites)
	return q
}

func filterFrom(v url.Values) cases.Filter {
	return cases.Filter{Offence: v.Get("offence"), Camera: v.Get("camera"), Site: v.Get("site"), Stage: v.Get("stage")}
}

func filterQuery(f cases.Filter) string {
	v := url.Values{}
	for k, val := range map[string]string{"offence": f.Offence, "camera": f.Camera, "site": f.Site, "stage": f.Stage} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v.Encode()
}

func (s *Service) queuePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := s.queueStats(rc)
	q.Filter = filterFrom(r.URL.Query())
	s.render(w, http.StatusOK, "queue", s.newPage(r, rc, "queue.title", q))
}

func (s *Service) nextSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := filterFrom(r.PostForm)
	c, err := s.cases.Next(r.Context(), rc.actor(), f)
	if errors.Is(err, cases.ErrNoCase) {
		http.Redirect(w, r, "/queue?msg=none&"+filterQuery(f), http.StatusSeeOther)
		return
	}
	if err != nil {
		status, key := caseErr(err)
		s.renderError(w, r, rc, status, key)
		return
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(c.ID)+"?"+filterQuery(f), http.StatusSeeOther)
}
