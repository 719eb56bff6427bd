package review

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
)

// canViewCase limits reviewers to the cases they hold or decided (data minimisation);
// supervisors and auditors see every case.
func (s *Service) canViewCase(rc *reqCtx, c *cases.Case) bool {
	if rc.has(cases.RoleSupervisor, cases.RoleAuditor) {
		return true
	}
	if !rc.has(cases.RoleReviewer) {
		return false
	}
	if c.LeasedTo(rc.acct.Name, s.now()) {
		return true
	}
	for _, d := range c.Decisions {
		if d.Reviewer == rc.acct.Name {
			return true
		}
	}
	return false
}

type caseData struct {
	Case      *cases.Case
	CanDecide bool
	Stage     string
	Main      string
	Original  string
	Views     []viewImages // one per camera view with an image, in evidence order
	PlateCrop string
	Reasons   []reasonOption
	// Unplaced are the detector's findings on flagged vehicles whose view shows no image
	// (purged evidence); the others are in their view's panel (viewImages.Occupants).
	Unplaced    []occupantFindings
	RejectLabel string
	DecideURL   string
	ReleaseURL  string
}

// viewImages are the image URLs of one camera view of a passage.
type viewImages struct {
	View      string
	Annotated string
	Original  string // empty when the role may not see originals
	// Occupants are the flagged vehicles of this view with their driver crops; Crops are
	// driver crops that could not be paired with a vehicle.
	Occupants []occupantFindings
	Crops     []string
}

// occupantFindings is what the detector judged about one flagged vehicle's occupants.
type occupantFindings struct {
	Vehicle           int    // 1-based, for display
	Crop              string // URL of its driver crop; "" when none is stored
	Phone, Seatbelt   pipeline.Finding
	PassengerSeatbelt *pipeline.Finding
}

// findingRow is one judged state in the findings table.
type findingRow struct {
	Class, Label string // CSS class, catalogue key of the row's title
	States       string // catalogue prefix of the state labels
	State        string
	Score        float64
	Offence      bool // the state is an offence
}

// Rows are the driver's phone and belt and, where judged, the passenger's belt.
func (o occupantFindings) Rows() []findingRow {
	row := func(class, label, states string, f pipeline.Finding, offence string) findingRow {
		st := cmp.Or(f.State, pipeline.StateUnknown)
		return findingRow{Class: class, Label: label, States: states, State: st, Score: f.Score, Offence: st == offence}
	}
	rows := []findingRow{
		row("finding-phone", "case.finding_phone", "phone_state", o.Phone, pipeline.PhoneHeld),
		row("finding-belt", "case.finding_belt", "belt_state", o.Seatbelt, pipeline.SeatbeltNotWorn),
	}
	if o.PassengerSeatbelt != nil {
		rows = append(rows, row("finding-passenger-belt", "case.finding_passenger_belt", "belt_state", *o.PassengerSeatbelt, pipeline.SeatbeltNotWorn))
	}
	return rows
}

// reasonOption is one reason code of the reject form. A reason about one offence kind (not
// a phone, belt visible) is offered only on cases that flagged that kind; it stays in the
// list, disabled, so that the digit keys pick the same reason on every case.
type reasonOption struct {
	Code     string
	Offence  string // the kind it rejects; "" for every kind
	Disabled bool
}

// reasonFits reports whether reason may reject or dispute a case that flagged these kinds.
func reasonFits(reason string, flagged []string) bool {
	k, scoped := reasonOffence[reason]
	return !scoped || slices.Contains(flagged, k)
}

// offendingVehicles are the indices of the vehicles an offence is about, ascending; every
// vehicle when the offences name none.
func offendingVehicles(d pipeline.Detection) []int {
	var out []int
	for _, o := range d.Offences {
		if o.Vehicle >= 0 && o.Vehicle < len(d.Vehicles) && !slices.Contains(out, o.Vehicle) {
			out = append(out, o.Vehicle)
		}
	}
	if len(out) == 0 {
		for i := range d.Vehicles {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// vehicleView is the camera view a vehicle was seen in: its own, else its findings'.
func vehicleView(v pipeline.Vehicle) string {
	return cmp.Or(v.View, v.Phone.View, v.Seatbelt.View)
}

// placeOccupants puts each flagged vehicle's findings in the panel of its view, beside its
// driver crop. The detector stores, per view, one driver crop per flagged vehicle in vehicle
// order, so the n-th crop of a view is its n-th flagged vehicle's; when the counts differ the
// crops are shown apart. A vehicle without a view of its own belongs to the first view.
func (d *caseData) placeOccupants(det pipeline.Detection, crops map[string][]string) {
	perView := map[string][]occupantFindings{}
	for _, i := range offendingVehicles(det) {
		v := det.Vehicles[i]
		f := occupantFindings{Vehicle: i + 1, Phone: v.Phone, Seatbelt: v.Seatbelt, PassengerSeatbelt: v.PassengerSeatbelt}
		view := vehicleView(v)
		if view == "" && len(d.Views) > 0 {
			view = d.Views[0].View
		}
		perView[view] = append(perView[view], f)
	}
	for i := range d.Views {
		vi := &d.Views[i]
		occ, cs := perView[vi.View], crops[vi.View]
		delete(perView, vi.View)
		if len(cs) == len(occ) {
			for j := range occ {
				occ[j].Crop = cs[j]
			}
			cs = nil
		}
		vi.Occupants, vi.Crops = occ, cs
	}
	for _, occ := range perView {
		d.Unplaced = append(d.Unplaced, occ...)
	}
	slices.SortFunc(d.Unplaced, func(a, b occupantFindings) int { return cmp.Compare(a.Vehicle, b.Vehicle) })
}

// offenceKeys are the shortcut letters of the offence checkboxes (skipping the letters that
// other actions use).
const offenceKeys = "abdefghijklm"

func (d caseData) OffenceKey(i int) string {
	if i < 0 || i >= len(offenceKeys) {
		return ""
	}
	return offenceKeys[i : i+1]
}

func (d caseData) OffenceChecked(k string) bool {
	if len(d.Case.Offences) == 0 {
		return true
	}
	return slices.Contains(d.Case.Offences, k)
}

func evidenceURL(id string, n int) string {
	return "/evidence/" + url.PathEscape(id) + "/" + strconv.Itoa(n)
}

func (s *Service) caseView(rc *reqCtx, c *cases.Case, filter string) caseData {
	d := caseData{Case: c, Stage: cases.StageFor(c.State)}
	for _, r := range s.cfg.ReasonCodes {
		d.Reasons = append(d.Reasons, reasonOption{Code: r, Offence: reasonOffence[r], Disabled: !reasonFits(r, c.Flagged)})
	}
	crops := map[string][]string{}
	d.CanDecide = c.State.Reviewable() && c.LeasedTo(rc.acct.Name, s.now())
	mayOriginal := rc.has(s.cfg.OriginalRoles...)
	evidence := c.Detection.Evidence
	if !c.EvidencePurgedAt.IsZero() {
		evidence = nil
	}
	view := func(name string) *viewImages {
		for i := range d.Views {
			if d.Views[i].View == name {
				return &d.Views[i]
			}
		}
		d.Views = append(d.Views, viewImages{View: name})
		return &d.Views[len(d.Views)-1]
	}
	for i, e := range evidence {
		switch e.Kind {
		case pipeline.EvidenceAnnotated:
			if v := view(e.View); v.Annotated == "" {
				v.Annotated = evidenceURL(c.ID, i)
			}
		case pipeline.EvidenceOriginal:
			if v := view(e.View); mayOriginal && v.Original == "" {
				v.Original = evidenceURL(c.ID, i)
			}
		case pipeline.EvidencePlateCrop:
			if d.PlateCrop == "" {
				d.PlateCrop = evidenceURL(c.ID, i)
			}
		case pipeline.EvidenceDriverCrop:
			crops[e.View] = append(crops[e.View], evidenceURL(c.ID, i))
		}
	}
	// A view whose only image is an original the role may not see has nothing to show.
	d.Views = slices.DeleteFunc(d.Views, func(v viewImages) bool { return v.Annotated == "" && v.Original == "" })
	for i := range d.Views {
		if d.Views[i].Annotated == "" {
			d.Views[i].Annotated = d.Views[i].Original
		}
	}
	if len(d.Views) > 0 {
		d.Main, d.Original = d.Views[0].Annotated, d.Views[0].Original
	}
	d.placeOccupants(c.Detection, crops)
	q := ""
	if filter != "" {
		q = "?" + filter
	}
	d.DecideURL = "/cases/" + url.PathEscape(c.ID) + "/decide" + q
	d.ReleaseURL = "/cases/" + url.PathEscape(c.ID) + "/release"
	return d
}

func (s *Service) casePage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	c, _, err := s.cases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		status, key := caseErr(err)
		s.renderError(w, r, rc, status, key)
		return
	}
	if !s.canViewCase(rc, c) {
		s.renderError(w, r, rc, http.StatusForbidden, "err.forbidden")
		return
	}
	filter := filterQuery(filterFrom(r.URL.Query()))
	d := s.caseView(rc, c, filter)
	p := s.newPage(r, rc, "case.title", nil)
	d.RejectLabel = p.L.T("case.reject")
	if c.State == cases.FirstConfirmed {
		d.RejectLabel = p.L.T("case.dispute")
	}
	p.Data = d
	if d.CanDecide {
		p.LeaseURL = "/api/cases/" + url.PathEscape(c.ID) + "/lease"
		p.LeaseEveryMS = max(1000, s.cfg.LeaseDuration.Milliseconds()/3)
	}
	s.render(w, http.StatusOK, "case", p)
}

func decisionFromForm(r *http.Request) cases.Input {
	in := cases.Input{Outcome: r.PostFormValue("outcome"), Plate: r.PostFormValue("plate"),
		Country: r.PostFormValue("country"), Reason: r.PostFormValue("reason"), Note: r.PostFormValue("note")}
	in.Offences = append([]string{}, r.PostForm["offence"]...) // none ticked is an explicit empty set
	return in
}

// decide records a decision (form or API). A reason about one offence kind must concern a
// kind the case flagged: "not a phone" on a seat-belt case would label a phone that nobody
// looked at (the reasons feed the training data export).
func (s *Service) decide(ctx context.Context, id string, actor cases.Actor, in cases.Input) (*cases.Case, error) {
	c, rev, err := s.cases.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if in.Outcome == pipeline.OutcomeReject && !reasonFits(in.Reason, c.Flagged) {
		return nil, fmt.Errorf("%w: reason %q is about an offence this case did not flag (%v)", cases.ErrBadDecision, in.Reason, c.Flagged)
	}
	return s.cases.DecideAt(ctx, c, rev, actor, in)
}

func (s *Service) decideSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	id := r.PathValue("id")
	if _, err := s.decide(r.Context(), id, rc.actor(), decisionFromForm(r)); err != nil {
		status, key := caseErr(err)
		s.renderError(w, r, rc, status, key)
		return
	}
	// Straight on to the next case with the same filters: reviewers decide hundreds a day.
	f := filterFrom(r.URL.Query())
	next, err := s.cases.Next(r.Context(), rc.actor(), f)
	if err != nil {
		http.Redirect(w, r, "/queue?msg=decided&"+filterQuery(f), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(next.ID)+"?msg=decided&"+filterQuery(f), http.StatusSeeOther)
}

func (s *Service) releaseSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := s.cases.Release(r.Context(), r.PathValue("id"), rc.actor()); err != nil && !errors.Is(err, cases.ErrNotLeased) {
		status, key := caseErr(err)
		s.renderError(w, r, rc, status, key)
		return
	}
	http.Redirect(w, r, "/queue?msg=released", http.StatusSeeOther)
}

func (s *Service) leaseSubmit(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	c, err := s.cases.Lease(r.Context(), r.PathValue("id"), rc.actor())
	if err != nil {
		status, key := caseErr(err)
		s.renderError(w, r, rc, status, key)
		return
	}
	http.Redirect(w, r, "/cases/"+url.PathEscape(c.ID), http.StatusSeeOther)
}

// Supervisor.

type throughputRow struct {
	Reviewer string `json:"reviewer"`
	Day      int    `json:"last_24h"`
	Week     int    `json:"last_7d"`
}

type precisionRow struct {
	Model     string  `json:"model"`
	Flagged   int     `json:"flagged"`
	Confirmed int     `json:"confirmed"`
	Rejected  int     `json:"rejected"`
	Percent   float64 `json:"precision_percent"` // confirmed ÷ flagged
}

type supervisorStats struct {
	Pending          int             `json:"pending"`
	Second           int             `json:"first_confirmed"`
	OldestPending    time.Duration   `json:"-"`
	OldestSeconds    float64         `json:"oldest_pending_seconds"`
	Disputed         []cases.Case    `json:"-"`
	DisputedIDs      []string        `json:"disputed"`
	PlatformRejected []cases.Case    `json:"-"`
	PlatformIDs      []string        `json:"platform_rejected"`
	Throughput       []throughputRow `json:"throughput"`
	// Precision is per set of models, confirmed ÷ flagged with cases under review counted
	// (the first API's figure, kept for its clients).
	Precision []precisionRow `json:"precision"`
	// ModelPrecision is per live model version and offence, on final decisions only:
	// confirmed ÷ (confirmed + rejected). Shadow is each candidate model's record on the
	// same decisions. Both come from the case store (see precision.go).
	ModelPrecision []modelPrecisionRow `json:"model_precision"`
	Shadow         []shadowRow         `json:"shadow"`
}

func (s *Service) supervisorStats() supervisorStats {
	now := s.now()
	var st supervisorStats
	tp := map[string]*throughputRow{}
	pr := map[string]*precisionRow{}
	var oldest time.Time
	all := s.cases.Index().Select(nil)
	tally := tallyDecisions(all)
	st.ModelPrecision, st.Shadow = tally.modelRows(), tally.shadowRows()
	for _, c := range all {
		switch c.State {
		case cases.Pending:
			st.Pending++
			if oldest.IsZero() || c.CreatedAt.Before(oldest) {
				oldest = c.CreatedAt
			}
		case cases.FirstConfirmed:
			st.Second++
		case cases.Disputed:
			st.Disputed = append(st.Disputed, *c)
			st.DisputedIDs = append(st.DisputedIDs, c.ID)
		case cases.PlatformRejected:
			st.PlatformRejected = append(st.PlatformRejected, *c)
			st.PlatformIDs = append(st.PlatformIDs, c.ID)
		}
		for _, d := range c.Decisions {
			age := now.Sub(d.DecidedAt)
			if age > 7*24*time.Hour {
				continue
			}
			row := tp[d.Reviewer]
			if row == nil {
				row = &throughputRow{Reviewer: d.Reviewer}
				tp[d.Reviewer] = row
			}
			row.Week++
			if age <= 24*time.Hour {
				row.Day++
			}
		}
		p := pr[c.ModelVersion]
		if p == nil {
			p = &precisionRow{Model: c.ModelVersion}
			pr[c.ModelVersion] = p
		}
		p.Flagged++
		if c.State.ConfirmedOrLater() {
			p.Confirmed++
		}
		if c.State == cases.Rejected {
			p.Rejected++
		}
	}
	if !oldest.IsZero() {
		st.OldestPending = now.Sub(oldest)
		st.OldestSeconds = st.OldestPending.Seconds()
	}
	for _, r := range tp {
		st.Throughput = append(st.Throughput, *r)
	}
	sort.Slice(st.Throughput, func(i, j int) bool { return st.Throughput[i].Reviewer < st.Throughput[j].Reviewer })
	for _, p := range pr {
		if p.Flagged > 0 {
			p.Percent = 100 * float64(p.Confirmed) / float64(p.Flagged)
		}
		st.Precision = append(st.Precision, *p)
	}
	sort.Slice(st.Precision, func(i, j int) bool { return st.Precision[i].Model < st.Precision[j].Model })
	return st
}

func (s *Service) supervisorPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.render(w, http.StatusOK, "supervisor", s.newPage(r, rc, "sup.title", s.supervisorStats()))
}

// Audit.

type auditData struct {
	Case, User string
	Searched   bool
	Records    []audit.Record
}

func (s *Service) auditQuery(r *http.Request) (auditData, error) {
	d := auditData{Case: strings.TrimSpace(r.URL.Query().Get("case")), User: strings.TrimSpace(r.URL.Query().Get("user"))}
	if d.Case == "" && d.User == "" {
		return d, nil
	}
	d.Searched = true
	q := audit.Query{Actor: d.User, Scan: s.cfg.AuditScan}
	if d.Case != "" {
		q.Subjects = audit.CaseSubjects(d.Case)
	}
	recs, err := audit.Read(r.Context(), s.deps.JS, q)
	if err != nil {
		return d, err
	}
	d.Records = recs
	return d, nil
}

func (s *Service) auditPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	d, err := s.auditQuery(r)
	if err != nil {
		s.log.Error("audit read", "err", err)
		s.renderError(w, r, rc, http.StatusInternalServerError, "err.internal")
		return
	}
	s.render(w, http.StatusOK, "audit", s.newPage(r, rc, "audit.title", d))
}

// Admin.

func (s *Service) adminPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	list, err := s.accounts.List(r.Context())
	if err != nil {
		s.renderError(w, r, rc, http.StatusInternalServerError, "err.internal")
		return
	}
	s.render(w, http.StatusOK, "admin", s.newPage(r, rc, "admin.title", list))
}

func (s *Service) setDisabled(r *http.Request, rc *reqCtx, name string, disabled bool) error {
	if name == rc.acct.Name {
		return fmt.Errorf("%w: you cannot disable yourself", errSelf)
	}
	if err := s.accounts.SetDisabled(r.Context(), name, disabled); err != nil {
		return err
	}
	action := "user_enabled"
	if disabled {
		action = "user_disabled"
	}
	if err := s.audit.Publish(r.Context(), pipelineAudit(rc.acct.Name, action, name, nil), ""); err != nil {
		s.log.Error("audit publish failed", "action", action, "err", err)
	}
	return nil
}

var errSelf = errors.New("refused")

func (s *Service) adminDisableSubmit(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		if err := s.setDisabled(r, rc, r.PathValue("name"), disabled); err != nil {
			s.renderError(w, r, rc, http.StatusBadRequest, "err.bad_request")
			return
		}
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
	}
}

// Evidence.

const maxEvidenceBytes = 64 << 20

// evidence serves one evidence object of a case after checking the role (originals need one
// of review.original_roles), the case visibility and the stored SHA-256, and after writing
// the view to AUDIT: no audit entry, no image.
func (s *Service) evidence(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	c, _, err := s.cases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		status, key := caseErr(err)
		writeJSONError(w, status, strings.TrimPrefix(key, "err."), "no such case")
		return
	}
	if !c.EvidencePurgedAt.IsZero() {
		writeJSONError(w, http.StatusGone, "purged", "the evidence of this case was deleted under the retention policy")
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(c.Detection.Evidence) {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such evidence")
		return
	}
	ev := c.Detection.Evidence[n]
	if ev.Kind == pipeline.EvidenceOriginal && !rc.has(s.cfg.OriginalRoles...) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "your role may not view original images")
		return
	}
	if !s.canViewCase(rc, c) {
		writeJSONError(w, http.StatusForbidden, "forbidden", "this case is not yours to view")
		return
	}
	if ev.Bucket != pipeline.BucketEvidence {
		s.log.Error("evidence outside the evidence bucket refused", "case", c.ID, "bucket", ev.Bucket, "key", ev.Key)
		writeJSONError(w, http.StatusNotFound, "not_found", "no such evidence")
		return
	}
	err = s.audit.Publish(r.Context(), pipeline.AuditEvent{Actor: rc.acct.Name, Action: "evidence_view",
		Entity: audit.EntityEvidence, EntityID: c.ID,
		Details: map[string]string{"kind": ev.Kind, "key": ev.Key, "index": strconv.Itoa(n), "sha256": ev.SHA256, "ip": clientIP(r)}}, "")
	if err != nil {
		s.log.Error("evidence view not audited; refused", "case", c.ID, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "audit_unavailable", "the view could not be audited")
		return
	}
	rd, _, err := s.deps.Store.Get(r.Context(), ev.Bucket, ev.Key)
	if err != nil {
		s.log.Error("evidence read", "case", c.ID, "key", ev.Key, "err", err)
		writeJSONError(w, http.StatusNotFound, "not_found", "evidence object unavailable")
		return
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, maxEvidenceBytes+1))
	if err != nil || len(data) > maxEvidenceBytes {
		writeJSONError(w, http.StatusInternalServerError, "internal", "evidence unreadable")
		return
	}
	if ev.SHA256 != "" {
		sum := sha256.Sum256(data)
		if !strings.EqualFold(hex.EncodeToString(sum[:]), ev.SHA256) {
			s.log.Error("evidence integrity check failed", "case", c.ID, "key", ev.Key)
			writeJSONError(w, http.StatusInternalServerError, "integrity", "evidence does not match its recorded SHA-256")
			return
		}
	}
	// The type is sniffed from the bytes, never taken from metadata, and only raster images are
	// shown inline: an SVG or HTML object in the evidence bucket must not run on this origin.
	ct := http.DetectContentType(data)
	disposition := "inline"
	switch ct {
	case "image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp":
	default:
		ct, disposition = "application/octet-stream", "attachment"
	}
	s.metrics.evidenceViews.WithLabelValues(ev.Kind).Inc()
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", disposition)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = io.Copy(w, bytes.NewReader(data))
}
