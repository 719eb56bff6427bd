package review

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/cases"
	"github.com/prometheus/client_golang/prometheus"
)

// Model precision from reviewer decisions.
//
// Source: the case store (the index that follows the `cases` KV), read when the supervisor
// page, the API or a Prometheus scrape asks. A case record holds everything needed — its
// final state, the reason of its last decision, the offences confirmed, the live models that
// flagged it (Detection.Models) and the shadow candidates' verdicts (Detection.Shadow) — and
// the bucket keeps it for good (the retention sweep removes images and plates, never states
// or decisions). So the figures survive a restart and are the same on every instance, each
// case counts exactly once (one record per case, counted by its final state only: a case
// under first, second or supervisor review is not counted yet), and nothing has to be kept
// in step on each transition. The AUDIT stream would need a full scan and a join with the
// detections for the models.

// Outcomes of an offence kind in a case's final decision.
const (
	outcomeConfirmed = "confirmed"
	outcomeRejected  = "rejected"
	// outcomeExcluded: the case was rejected for a reason that says nothing about the
	// model's finding (unreadable plate, priority vehicle, duplicate passage); it counts
	// neither for nor against the model's precision.
	outcomeExcluded = "excluded"
)

// reasonsNotAboutModel are the reason codes whose rejection does not judge the detector's
// finding. Every other code (not_driver, not_phone, belt_visible, and codes an operator adds)
// rejects the flagged offences: a false positive of the model.
var reasonsNotAboutModel = map[string]bool{"plate_unreadable": true, "priority_vehicle": true, "duplicate_passage": true}

// offenceRoles are the ModelRef roles that raise an offence kind, in order of preference:
// without a phone model the scene model's phone class does (detector graph roles).
var offenceRoles = map[string][]string{
	pipeline.OffencePhone:    {"phone", "scene"},
	pipeline.OffenceSeatbelt: {"seatbelt"},
}

// reasonOffence is the offence kind a reason code rejects when it concerns one kind only;
// the reject form offers such a reason only on cases that flagged that kind.
var reasonOffence = map[string]string{"not_phone": pipeline.OffencePhone, "belt_visible": pipeline.OffenceSeatbelt}

// kindOutcome is the final outcome of one flagged offence kind of a case.
type kindOutcome struct {
	Kind, Outcome string
}

// finalOutcomes are the outcomes of a case's flagged kinds at its final decision; nil while
// the case is still under review (pending, first_confirmed, disputed). A confirmed case
// confirms the kinds its reviewers kept and rejects those they unticked; a rejected case
// rejects every flagged kind, or excludes them all when its reason is not about the model.
func finalOutcomes(c *cases.Case) []kindOutcome {
	var out []kindOutcome
	switch {
	case c.State.ConfirmedOrLater():
		for _, k := range c.Flagged {
			o := outcomeRejected
			if slices.Contains(c.Offences, k) {
				o = outcomeConfirmed
			}
			out = append(out, kindOutcome{k, o})
		}
	case c.State == cases.Rejected:
		o := outcomeRejected
		if reasonsNotAboutModel[finalReason(c)] {
			o = outcomeExcluded
		}
		for _, k := range c.Flagged {
			out = append(out, kindOutcome{k, o})
		}
	}
	return out
}

// finalReason is the reason of the case's last decision (the one that rejected it).
func finalReason(c *cases.Case) string {
	if n := len(c.Decisions); n > 0 && c.Decisions[n-1].Reason != "" {
		return c.Decisions[n-1].Reason
	}
	return c.Reason
}

// modelFor is the model among refs serving the role that raises kind; ok is false when none
// does.
func modelFor(refs []pipeline.ModelRef, kind string) (pipeline.ModelRef, bool) {
	roles, known := offenceRoles[kind]
	if !known {
		roles = []string{kind}
	}
	for _, role := range roles {
		for _, m := range refs {
			if m.Role == role {
				return m, true
			}
		}
	}
	return pipeline.ModelRef{}, false
}

// liveModel is the live model that raised kind in d ("unknown" for detections that name none).
func liveModel(d pipeline.Detection, kind string) pipeline.ModelRef {
	if m, ok := modelFor(d.Models, kind); ok {
		return m
	}
	return pipeline.ModelRef{Name: "unknown", Version: "unknown"}
}

// candidateFor is the shadow candidate that judged kind: the one with the role, or the only
// candidate when the shadow names one model without roles.
func candidateFor(sh *pipeline.Shadow, kind string) (pipeline.ModelRef, bool) {
	if sh == nil {
		return pipeline.ModelRef{}, false
	}
	if m, ok := modelFor(sh.Models, kind); ok {
		return m, true
	}
	if len(sh.Models) == 1 && sh.Models[0].Role == "" {
		return sh.Models[0], true
	}
	return pipeline.ModelRef{}, false
}

func candidateFlagged(sh *pipeline.Shadow, kind string) bool {
	return slices.ContainsFunc(sh.Offences, func(o pipeline.Offence) bool { return o.Kind == kind })
}

func modelName(m pipeline.ModelRef) string { return m.Name + "@" + m.Version }

type modelKey struct{ Name, Version, Offence string }

type shadowKey struct{ Candidate, Offence, Live string }

type shadowMetricKey struct {
	Candidate, Offence, Outcome string
	Flagged                     bool
}

// modelPrecisionRow is one live model version's record on one offence kind.
type modelPrecisionRow struct {
	Model     string  `json:"model"` // name@version
	Name      string  `json:"name"`
	Version   string  `json:"version"`
	Offence   string  `json:"offence"`
	Confirmed int     `json:"confirmed"`
	Rejected  int     `json:"rejected"`
	Excluded  int     `json:"excluded"` // rejected for a reason not about the model
	Judged    bool    `json:"judged"`   // confirmed + rejected > 0
	Percent   float64 `json:"precision_percent"`
}

// shadowRow is one shadow candidate's record on one offence kind against one live model, on
// the cases the live model raised and reviewers decided.
type shadowRow struct {
	Candidate string `json:"candidate"` // name@version
	Offence   string `json:"offence"`
	Live      string `json:"live_model"`
	Reviewed  int    `json:"reviewed"` // final decisions, excluded ones included
	// The candidate would also have raised the offence: confirmed / rejected by reviewers.
	FlaggedConfirmed int `json:"flagged_confirmed"`
	FlaggedRejected  int `json:"flagged_rejected"`
	// The candidate would not have raised it: confirmed (it would have missed a real
	// offence) / rejected (it was right to stay silent).
	SilentConfirmed int     `json:"silent_confirmed"`
	SilentRejected  int     `json:"silent_rejected"`
	Judged          bool    `json:"judged"` // FlaggedConfirmed + FlaggedRejected > 0
	Percent         float64 `json:"precision_percent"`
	Disagreements   int     `json:"disagreements"` // cases where it would not have raised the offence
	DisagreePercent float64 `json:"disagreement_percent"`
}

// decisionTally is the per-model and per-candidate count of final decisions.
type decisionTally struct {
	models  map[modelKey]*modelPrecisionRow
	shadows map[shadowKey]*shadowRow
	// shadowMetric is the shadow count by the metric's labels.
	shadowMetric map[shadowMetricKey]int
}

// tallyDecisions counts the final decisions of cs, once per case and offence kind.
func tallyDecisions(cs []*cases.Case) decisionTally {
	t := decisionTally{models: map[modelKey]*modelPrecisionRow{}, shadows: map[shadowKey]*shadowRow{},
		shadowMetric: map[shadowMetricKey]int{}}
	for _, c := range cs {
		for _, ko := range finalOutcomes(c) {
			live := liveModel(c.Detection, ko.Kind)
			mk := modelKey{live.Name, live.Version, ko.Kind}
			row := t.models[mk]
			if row == nil {
				row = &modelPrecisionRow{Model: modelName(live), Name: live.Name, Version: live.Version, Offence: ko.Kind}
				t.models[mk] = row
			}
			switch ko.Outcome {
			case outcomeConfirmed:
				row.Confirmed++
			case outcomeRejected:
				row.Rejected++
			default:
				row.Excluded++
			}
			cand, ok := candidateFor(c.Detection.Shadow, ko.Kind)
			if !ok {
				continue
			}
			flagged := candidateFlagged(c.Detection.Shadow, ko.Kind)
			t.shadowMetric[shadowMetricKey{modelName(cand), ko.Kind, ko.Outcome, flagged}]++
			sk := shadowKey{modelName(cand), ko.Kind, modelName(live)}
			sr := t.shadows[sk]
			if sr == nil {
				sr = &shadowRow{Candidate: sk.Candidate, Offence: sk.Offence, Live: sk.Live}
				t.shadows[sk] = sr
			}
			sr.Reviewed++
			if !flagged {
				sr.Disagreements++
			}
			switch {
			case ko.Outcome == outcomeConfirmed && flagged:
				sr.FlaggedConfirmed++
			case ko.Outcome == outcomeRejected && flagged:
				sr.FlaggedRejected++
			case ko.Outcome == outcomeConfirmed:
				sr.SilentConfirmed++
			case ko.Outcome == outcomeRejected:
				sr.SilentRejected++
			}
		}
	}
	return t
}

func percent(num, den int) (float64, bool) {
	if den == 0 {
		return 0, false
	}
	return 100 * float64(num) / float64(den), true
}

// modelRows are the per-model rows, by model, version and offence.
func (t decisionTally) modelRows() []modelPrecisionRow {
	out := make([]modelPrecisionRow, 0, len(t.models))
	for _, r := range t.models {
		r.Percent, r.Judged = percent(r.Confirmed, r.Confirmed+r.Rejected)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b modelPrecisionRow) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Offence, b.Offence))
	})
	return out
}

// shadowRows are the per-candidate rows, by candidate, offence and live model.
func (t decisionTally) shadowRows() []shadowRow {
	out := make([]shadowRow, 0, len(t.shadows))
	for _, r := range t.shadows {
		r.Percent, r.Judged = percent(r.FlaggedConfirmed, r.FlaggedConfirmed+r.FlaggedRejected)
		r.DisagreePercent, _ = percent(r.Disagreements, r.Reviewed)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b shadowRow) int {
		return cmp.Or(cmp.Compare(a.Candidate, b.Candidate), cmp.Compare(a.Offence, b.Offence), cmp.Compare(a.Live, b.Live))
	})
	return out
}

// decisionCollector reports the tally as counters at scrape time, from the same case index
// as the supervisor page: the values are totals over the cases bucket, so they survive a
// restart and every instance reports the same ones (aggregate instances with max, not sum).
type decisionCollector struct {
	index  *cases.Index
	model  *prometheus.Desc
	shadow *prometheus.Desc
}

func newDecisionCollector(ix *cases.Index) *decisionCollector {
	return &decisionCollector{index: ix,
		model: prometheus.NewDesc("offencecam_review_model_decisions_total",
			"Final review decisions per offence kind, against the live model version that raised it "+
				"(outcome confirmed, rejected, or excluded: rejected for a reason not about the model). "+
				"Each case counts once, at its final decision; totals over the case store.",
			[]string{"model", "version", "offence", "outcome"}, nil),
		shadow: prometheus.NewDesc("offencecam_review_shadow_decisions_total",
			"The same final decisions per shadow candidate model, by whether the candidate would also have raised the offence.",
			[]string{"candidate", "offence", "outcome", "candidate_flagged"}, nil),
	}
}

func (c *decisionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.model; ch <- c.shadow }

func (c *decisionCollector) Collect(ch chan<- prometheus.Metric) {
	t := tallyDecisions(c.index.Select(nil))
	for k, r := range t.models {
		for outcome, n := range map[string]int{outcomeConfirmed: r.Confirmed, outcomeRejected: r.Rejected, outcomeExcluded: r.Excluded} {
			ch <- prometheus.MustNewConstMetric(c.model, prometheus.CounterValue, float64(n), k.Name, k.Version, k.Offence, outcome)
		}
	}
	for k, n := range t.shadowMetric {
		ch <- prometheus.MustNewConstMetric(c.shadow, prometheus.CounterValue, float64(n),
			k.Candidate, k.Offence, k.Outcome, strconv.FormatBool(k.Flagged))
	}
}
