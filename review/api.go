package review

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/crossborder/offencecam/review/accounts"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/crossborder/offencecam/review/i18n"
)

// readJSON decodes a JSON body; a cross-site form cannot send application/json without a
// CORS preflight, which this API never answers.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "bad_request", "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "invalid JSON: "+err.Error())
		return false
	}
	return true
}

type meJSON struct {
	User               string   `json:"user"`
	Roles              []string `json:"roles"`
	Lang               string   `json:"lang"`
	MustChangePassword bool     `json:"must_change_password"`
	CSRF               string   `json:"csrf_token,omitempty"`
}

func (s *Service) apiLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	acct, tok, sess, err := s.login(r.Context(), r, in.User, in.Password)
	if err != nil {
		switch {
		case errors.Is(err, errRateLimited):
			writeJSONError(w, http.StatusTooManyRequests, "rate_limited", err.Error())
		case errors.Is(err, accounts.ErrLocked):
			writeJSONError(w, http.StatusUnauthorized, "locked", err.Error())
		case errors.Is(err, accounts.ErrBadCredentials), errors.Is(err, accounts.ErrDisabled):
			writeJSONError(w, http.StatusUnauthorized, "bad_credentials", accounts.ErrBadCredentials.Error())
		default:
			s.log.Error("login", "err", err)
			writeJSONError(w, http.StatusInternalServerError, "internal", "internal error")
		}
		return
	}
	s.setSessionCookie(w, r, tok)
	writeJSON(w, http.StatusOK, meJSON{User: acct.Name, Roles: acct.Roles, Lang: acct.Lang,
		MustChangePassword: acct.MustChangePassword, CSRF: sess.CSRF})
}

func (s *Service) apiLogout(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	_ = s.sessions.Delete(r.Context(), rc.token)
	s.auditUser(r.Context(), rc.acct.Name, "logout", nil)
	s.clearSessionCookie(w, r)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Service) apiMe(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, meJSON{User: rc.acct.Name, Roles: rc.acct.Roles, Lang: rc.acct.Lang,
		MustChangePassword: rc.acct.MustChangePassword, CSRF: rc.sess.CSRF})
}

func (s *Service) apiPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if status, key := s.changePassword(r, rc, in.Current, in.New, in.New); key != "" {
		writeJSONError(w, status, key, i18n.For("en").T(key))
		return
	}
	sess, err := s.renewSession(w, r, rc)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal", "password changed; log in again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "csrf_token": sess.CSRF})
}

func (s *Service) apiLang(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in struct {
		Lang string `json:"lang"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if !i18n.Supported(in.Lang) {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "lang must be one of fr, nl, en")
		return
	}
	if err := s.accounts.SetLang(r.Context(), rc.acct.Name, in.Lang); err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"lang": in.Lang})
}

func (s *Service) apiQueue(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, s.queueStats(rc))
}

func (s *Service) apiNext(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var f cases.Filter
	if r.ContentLength != 0 && !readJSON(w, r, &f) {
		return
	}
	c, err := s.cases.Next(r.Context(), rc.actor(), f)
	if err != nil {
		s.apiCaseError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.caseJSON(rc, c))
}

// caseJSON is the API view of a case: the record plus the evidence URLs the caller may open.
type caseJSONView struct {
	*cases.Case
	Stage    string            `json:"stage,omitempty"`
	Evidence []evidenceLink    `json:"evidence_links"`
	Links    map[string]string `json:"links"`
}

type evidenceLink struct {
	Kind string `json:"kind"`
	View string `json:"view,omitempty"`
	URL  string `json:"url"`
}

func (s *Service) caseJSON(rc *reqCtx, c *cases.Case) caseJSONView {
	v := caseJSONView{Case: c, Stage: cases.StageFor(c.State), Links: map[string]string{"page": "/cases/" + c.ID}}
	for i, e := range c.Detection.Evidence {
		if e.Kind == "original" && !rc.has(s.cfg.OriginalRoles...) || !c.EvidencePurgedAt.IsZero() {
			continue
		}
		v.Evidence = append(v.Evidence, evidenceLink{Kind: e.Kind, View: e.View, URL: evidenceURL(c.ID, i)})
	}
	return v
}

func (s *Service) apiCase(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	c, _, err := s.cases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiCaseError(w, err)
		return
	}
	if !s.canViewCase(rc, c) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "this case is not yours to view")
		return
	}
	writeJSON(w, http.StatusOK, s.caseJSON(rc, c))
}

type leaseJSON struct {
	CaseID  string    `json:"case_id"`
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// apiLease takes a free case or renews the caller's own lease (the case page calls it
// periodically).
func (s *Service) apiLease(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	c, err := s.cases.Lease(r.Context(), r.PathValue("id"), rc.actor())
	if err != nil {
		s.apiCaseError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, leaseJSON{CaseID: c.ID, Holder: c.Lease.Holder, Expires: c.Lease.Expires})
}

func (s *Service) apiRelease(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := s.cases.Release(r.Context(), r.PathValue("id"), rc.actor()); err != nil {
		s.apiCaseError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Service) apiDecision(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var in cases.Input
	if !readJSON(w, r, &in) {
		return
	}
	c, err := s.decide(r.Context(), r.PathValue("id"), rc.actor(), in)
	if err != nil {
		s.apiCaseError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.caseJSON(rc, c))
}

func (s *Service) apiSupervisor(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, s.supervisorStats())
}

func (s *Service) apiAudit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	d, err := s.auditQuery(r)
	if err != nil {
		s.log.Error("audit read", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	if !d.Searched {
		writeJSONError(w, http.StatusBadRequest, "bad_request", "give case=ID and/or user=NAME")
		return
	}
	type rec struct {
		Seq   uint64 `json:"seq"`
		Event any    `json:"event"`
	}
	out := make([]rec, 0, len(d.Records))
	for _, r := range d.Records {
		out = append(out, rec{Seq: r.Seq, Event: r.Event})
	}
	writeJSON(w, http.StatusOK, map[string]any{"case": d.Case, "user": d.User, "events": out})
}

type userJSON struct {
	Name        string    `json:"name"`
	Roles       []string  `json:"roles"`
	Lang        string    `json:"lang"`
	Disabled    bool      `json:"disabled"`
	Locked      bool      `json:"locked"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
}

func (s *Service) apiUsers(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.accounts.List(r.Context())
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	out := make([]userJSON, 0, len(list))
	for _, a := range list {
		out = append(out, userJSON{Name: a.Name, Roles: a.Roles, Lang: a.Lang, Disabled: a.Disabled,
			Locked: s.now().Before(a.LockedUntil), LastLoginAt: a.LastLoginAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) apiDisable(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		err := s.setDisabled(r, rc, r.PathValue("name"), disabled)
		switch {
		case errors.Is(err, accounts.ErrNotFound):
			writeJSONError(w, http.StatusNotFound, "not_found", err.Error())
		case err != nil:
			writeJSONError(w, http.StatusBadRequest, "bad_request", err.Error())
		default:
			writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "disabled": disabled})
		}
	}
}
