// Package cases is the review stage's case store: one case per flagged passage in the `cases`
// KV bucket, the state machine of DESIGN.md enforced in one transition table, optimistic
// updates at the last-read revision, and review leases kept in the case record itself.
package cases

import (
	"errors"
	"fmt"
	"slices"

	"github.com/crossborder/offencecam/pipeline"
)

// State is where a case stands in the review workflow.
type State string

// The states of DESIGN.md, "Review workflow".
const (
	Pending          State = "pending"
	FirstConfirmed   State = "first_confirmed"
	Confirmed        State = "confirmed"
	Rejected         State = "rejected"
	Disputed         State = "disputed"
	Sent             State = "sent"
	FineCreated      State = "fine_created"
	PlatformRejected State = "platform_rejected"
)

// AllStates lists every state in workflow order (for counts and metrics).
var AllStates = []State{Pending, FirstConfirmed, Disputed, Confirmed, Rejected, Sent, FineCreated, PlatformRejected}

// Roles that may act on cases. Accounts carry these names; the platform connector's results
// are applied as RoleSystem.
const (
	RoleReviewer   = "reviewer"
	RoleSupervisor = "supervisor"
	RoleAuditor    = "auditor"
	RoleAdmin      = "admin"
	RoleSystem     = "system"
)

// Errors callers test with errors.Is.
var (
	ErrNotFound          = errors.New("case not found")
	ErrConflict          = errors.New("case changed since it was read (lost a concurrent update)")
	ErrIllegalTransition = errors.New("illegal case transition")
	ErrForbidden         = errors.New("actor may not make this transition")
	ErrSameReviewer      = errors.New("the second review must be made by a different reviewer than the first")
	ErrNotLeased         = errors.New("case is not leased to this actor")
	ErrLeased            = errors.New("case is leased to someone else")
	ErrNoCase            = errors.New("no case available")
	ErrBadDecision       = errors.New("invalid decision")
)

// Actor is who asks for a transition.
type Actor struct {
	Name  string
	Roles []string
}

// Has reports whether the actor holds one of the roles.
func (a Actor) Has(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(a.Roles, r) {
			return true
		}
	}
	return false
}

// rule is one legal transition and who may make it.
type rule struct {
	from, to State
	roles    []string
	// distinctFromFirst: the actor must not be the case's first reviewer (four-eyes rule).
	distinctFromFirst bool
}

// transitions is THE state machine; every change of Case.State goes through Allowed.
var transitions = []rule{
	{Pending, FirstConfirmed, []string{RoleReviewer, RoleSupervisor}, false},
	{Pending, Rejected, []string{RoleReviewer, RoleSupervisor}, false},
	{FirstConfirmed, Confirmed, []string{RoleReviewer, RoleSupervisor}, true},
	{FirstConfirmed, Disputed, []string{RoleReviewer, RoleSupervisor}, true},
	{Disputed, Confirmed, []string{RoleSupervisor}, false},
	{Disputed, Rejected, []string{RoleSupervisor}, false},
	{Confirmed, Sent, []string{RoleSystem}, false},
	{Sent, FineCreated, []string{RoleSystem}, false},
	{Sent, PlatformRejected, []string{RoleSystem}, false},
}

// Allowed says whether actor may move c from its current state to `to`.
func Allowed(c *Case, to State, actor Actor) error {
	for _, r := range transitions {
		if r.from != c.State || r.to != to {
			continue
		}
		if !actor.Has(r.roles...) {
			return fmt.Errorf("%s → %s by %q: %w", c.State, to, actor.Name, ErrForbidden)
		}
		if r.distinctFromFirst && c.FirstReviewer == actor.Name {
			return fmt.Errorf("%s → %s by %q: %w", c.State, to, actor.Name, ErrSameReviewer)
		}
		return nil
	}
	return fmt.Errorf("%s → %s: %w", c.State, to, ErrIllegalTransition)
}

// Targets lists the states reachable from `from` by anyone (for tests and docs).
func Targets(from State) []State {
	var out []State
	for _, r := range transitions {
		if r.from == from {
			out = append(out, r.to)
		}
	}
	return out
}

// Reviewable reports whether a human may still decide the case (and so lease it).
func (s State) Reviewable() bool { return s == Pending || s == FirstConfirmed || s == Disputed }

// ConfirmedOrLater reports whether the case reached `confirmed` at some point.
func (s State) ConfirmedOrLater() bool {
	return s == Confirmed || s == Sent || s == FineCreated || s == PlatformRejected
}

// StageFor names the review stage a state is decided in.
func StageFor(s State) string {
	switch s {
	case Pending:
		return pipeline.StageFirst
	case FirstConfirmed:
		return pipeline.StageSecond
	case Disputed:
		return pipeline.StageSupervisor
	}
	return ""
}
