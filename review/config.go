// Package review is the human review stage: it makes a case of every flagged Detection, runs
// the two-stage review queue with leases, serves the bilingual web UI and its JSON API, keeps
// local accounts and sessions, writes every transition and evidence view to AUDIT, and puts
// each confirmed case on the FINES outbox exactly once.
package review

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crossborder/offencecam/review/accounts"
)

// Secure-cookie modes.
const (
	SecureAuto   = "auto"   // Secure unless the request came over plain HTTP to a loopback listener
	SecureAlways = "always" // always Secure (TLS terminated here or at a proxy)
	SecureNever  = "never"  // never Secure (plain HTTP on a trusted network; not recommended)
)

// Config is the `review:` section of the configuration file.
type Config struct {
	// ReasonCodes are the reasons a reviewer may give for a rejection or a dispute, in the
	// order the UI lists them (keys 1–9 pick the first nine).
	ReasonCodes []string `yaml:"reason_codes"`
	// LeaseDuration is how long a case stays reserved for a reviewer without renewal; the
	// open case page renews it every third of this.
	LeaseDuration time.Duration `yaml:"lease_duration"`
	// ReaperInterval is how often expired leases return to the queue.
	ReaperInterval time.Duration `yaml:"reaper_interval"`
	// SessionIdle ends a session after this long without a request; SessionAbsolute ends it
	// this long after login whatever happens.
	SessionIdle     time.Duration `yaml:"session_idle"`
	SessionAbsolute time.Duration `yaml:"session_absolute"`
	// LockoutThreshold failed logins in a row lock an account for LockoutDuration.
	LockoutThreshold int           `yaml:"lockout_threshold"`
	LockoutDuration  time.Duration `yaml:"lockout_duration"`
	// LoginRatePerMinute bounds login attempts per client address and user name.
	LoginRatePerMinute int `yaml:"login_rate_per_minute"`
	// SecureCookies is auto, always or never (see the Secure* constants).
	SecureCookies string `yaml:"secure_cookies"`
	// DefaultLanguage (fr, nl or en) is used on the login page and for new accounts.
	DefaultLanguage string `yaml:"default_language"`
	// EvidenceRoles may view annotated images and crops; OriginalRoles may also view the
	// unmasked original.
	EvidenceRoles []string `yaml:"evidence_roles"`
	OriginalRoles []string `yaml:"original_roles"`
	// Replicas of the accounts and sessions KV buckets (1 on one box, 3 on a cluster).
	Replicas int `yaml:"replicas"`
	// AuditScan bounds how many recent AUDIT entries a per-user audit query reads.
	AuditScan int `yaml:"audit_scan"`
	// RetainRejected is how long the evidence images and plate readings of a rejected case
	// are kept before the retention sweep deletes them (GDPR data minimisation: a rejected
	// case is no offence); 0 keeps them.
	RetainRejected time.Duration `yaml:"retain_rejected"`
	// RetainFined is the same for a case whose fine the platform created. 0 (the default)
	// keeps them: the fine record points at them, and how long the proceedings need them is
	// the operator's legal call.
	RetainFined time.Duration `yaml:"retain_fined"`
	// RetentionInterval is how often the retention sweep runs.
	RetentionInterval time.Duration `yaml:"retention_interval"`
}

// DefaultConfig is the one-box default.
func DefaultConfig() Config {
	return Config{
		ReasonCodes:        []string{"not_driver", "not_phone", "belt_visible", "plate_unreadable", "priority_vehicle", "duplicate_passage"},
		LeaseDuration:      5 * time.Minute,
		ReaperInterval:     15 * time.Second,
		SessionIdle:        30 * time.Minute,
		SessionAbsolute:    10 * time.Hour,
		LockoutThreshold:   5,
		LockoutDuration:    15 * time.Minute,
		LoginRatePerMinute: 10,
		SecureCookies:      SecureAuto,
		DefaultLanguage:    "fr",
		EvidenceRoles:      []string{"reviewer", "supervisor", "auditor"},
		OriginalRoles:      []string{"reviewer", "supervisor"},
		Replicas:           1,
		AuditScan:          10000,
		RetainRejected:     7 * 24 * time.Hour,
		RetentionInterval:  time.Hour,
	}
}

// Validate names the first bad field with its YAML path.
func (c Config) Validate() error {
	switch {
	case len(c.ReasonCodes) == 0:
		return errors.New("review.reason_codes: at least one reason code is needed")
	case c.LeaseDuration < time.Second:
		return errors.New("review.lease_duration: must be >= 1s")
	case c.ReaperInterval <= 0:
		return errors.New("review.reaper_interval: must be > 0")
	case c.SessionIdle <= 0:
		return errors.New("review.session_idle: must be > 0")
	case c.SessionAbsolute < c.SessionIdle:
		return errors.New("review.session_absolute: must be >= review.session_idle")
	case c.LockoutThreshold < 1:
		return errors.New("review.lockout_threshold: must be >= 1")
	case c.LockoutDuration <= 0:
		return errors.New("review.lockout_duration: must be > 0")
	case c.LoginRatePerMinute < 1:
		return errors.New("review.login_rate_per_minute: must be >= 1")
	case !slices.Contains([]string{SecureAuto, SecureAlways, SecureNever}, c.SecureCookies):
		return fmt.Errorf("review.secure_cookies: %q is not auto, always or never", c.SecureCookies)
	case !slices.Contains(accounts.Languages, c.DefaultLanguage):
		return fmt.Errorf("review.default_language: %q is not one of %v", c.DefaultLanguage, accounts.Languages)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("review.replicas: %d is not in 1..5", c.Replicas)
	case c.AuditScan < 1:
		return errors.New("review.audit_scan: must be >= 1")
	case c.RetainRejected < 0:
		return errors.New("review.retain_rejected: must be >= 0 (0 keeps the evidence)")
	case c.RetainFined < 0:
		return errors.New("review.retain_fined: must be >= 0 (0 keeps the evidence)")
	case c.RetentionInterval <= 0:
		return errors.New("review.retention_interval: must be > 0")
	}
	seen := map[string]bool{}
	for i, r := range c.ReasonCodes {
		if r == "" || len(r) > 64 || seen[r] {
			return fmt.Errorf("review.reason_codes[%d]: %q is empty, too long or repeated", i, r)
		}
		seen[r] = true
	}
	for field, roles := range map[string][]string{"evidence_roles": c.EvidenceRoles, "original_roles": c.OriginalRoles} {
		for i, r := range roles {
			if !slices.Contains(accounts.Roles, r) {
				return fmt.Errorf("review.%s[%d]: %q is not one of %v", field, i, r, accounts.Roles)
			}
		}
	}
	for i, r := range c.OriginalRoles {
		if !slices.Contains(c.EvidenceRoles, r) {
			return fmt.Errorf("review.original_roles[%d]: %q must also be in review.evidence_roles", i, r)
		}
	}
	return nil
}
