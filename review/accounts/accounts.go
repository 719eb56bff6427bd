package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV buckets the review stage provisions for itself (additive to natsx's wire).
const (
	BucketAccounts = "accounts"
	BucketSessions = "sessions"
)

// Roles an account may hold.
var Roles = []string{"reviewer", "supervisor", "auditor", "admin"}

// Languages the UI speaks.
var Languages = []string{"fr", "nl", "en"}

// Errors callers test with errors.Is.
var (
	ErrExists         = errors.New("account already exists")
	ErrNotFound       = errors.New("no such account")
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrLocked         = errors.New("account locked after repeated failed logins")
	ErrDisabled       = errors.New("account disabled")
	ErrInvalid        = errors.New("invalid account data")
)

// Account is one local user, stored as JSON at its name in the accounts bucket.
type Account struct {
	Name               string    `json:"name"`
	Roles              []string  `json:"roles"`
	Hash               string    `json:"hash"`
	Lang               string    `json:"lang"`
	Disabled           bool      `json:"disabled,omitempty"`
	MustChangePassword bool      `json:"must_change_password,omitempty"`
	FailedLogins       int       `json:"failed_logins,omitempty"`
	LockedUntil        time.Time `json:"locked_until,omitzero"`
	CreatedAt          time.Time `json:"created_at"`
	PasswordChangedAt  time.Time `json:"password_changed_at,omitzero"`
	LastLoginAt        time.Time `json:"last_login_at,omitzero"`
}

// Has reports whether the account holds role.
func (a *Account) Has(role string) bool { return slices.Contains(a.Roles, role) }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// ValidName reports whether name is an acceptable account name (lower case letters, digits,
// '.', '_', '-'; 2–64 characters), which is also a valid KV key.
func ValidName(name string) bool { return nameRE.MatchString(name) && !strings.HasSuffix(name, ".") }

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 12

// Options tune lockout.
type Options struct {
	LockoutThreshold int           // failed logins in a row that lock the account
	LockoutDuration  time.Duration // how long it stays locked
	Now              func() time.Time
}

// Store is the accounts bucket.
type Store struct {
	kv        jetstream.KeyValue
	opts      Options
	dummyHash string
}

// Open provisions (create or update, never delete) the accounts bucket and opens it.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, opts Options) (*Store, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketAccounts, Description: "review UI accounts (argon2id hashes, roles, language, lockout)",
		History: 5, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: provision KV %s: %w", BucketAccounts, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockoutThreshold <= 0 {
		opts.LockoutThreshold = 5
	}
	if opts.LockoutDuration <= 0 {
		opts.LockoutDuration = 15 * time.Minute
	}
	dummy, err := HashPassword("not a real password; spends the same time for unknown users")
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, opts: opts, dummyHash: dummy}, nil
}

func checkRoles(roles []string) error {
	if len(roles) == 0 {
		return fmt.Errorf("%w: at least one role is needed (one of %v)", ErrInvalid, Roles)
	}
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("%w: role %q is not one of %v", ErrInvalid, r, Roles)
		}
	}
	return nil
}

// CheckPassword enforces the password policy.
func CheckPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLen {
		return fmt.Errorf("%w: password must have at least %d characters", ErrInvalid, MinPasswordLen)
	}
	return nil
}

// Add creates an account. mustChange forces a new password at first login.
func (s *Store) Add(ctx context.Context, name, password string, roles []string, lang string, mustChange bool) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: name %q (use 2-64 of a-z 0-9 . _ -)", ErrInvalid, name)
	}
	if err := checkRoles(roles); err != nil {
		return err
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	if lang == "" {
		lang = Languages[0]
	}
	if !slices.Contains(Languages, lang) {
		return fmt.Errorf("%w: language %q is not one of %v", ErrInvalid, lang, Languages)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	a := Account{Name: name, Roles: slices.Clone(roles), Hash: hash, Lang: lang, MustChangePassword: mustChange,
		CreatedAt: now, PasswordChangedAt: now}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, name, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("account %q: %w", name, ErrExists)
		}
		return fmt.Errorf("account %q: create: %w", name, err)
	}
	return nil
}

// Get reads an account.
func (s *Store) Get(ctx context.Context, name string) (*Account, uint64, error) {
	if !ValidName(name) {
		return nil, 0, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("account %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("account %q: get: %w", name, err)
	}
	var a Account
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return nil, 0, fmt.Errorf("account %q: decode: %w", name, err)
	}
	return &a, e.Revision(), nil
}

// modify applies f to the stored account at its revision, retrying on a concurrent change.
func (s *Store) modify(ctx context.Context, name string, f func(*Account) error) (*Account, error) {
	for attempt := 0; attempt < 5; attempt++ {
		a, rev, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := f(a); err != nil {
			return a, err
		}
		data, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		_, err = s.kv.Update(ctx, name, data, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("account %q: update: %w", name, err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("account %q: too many concurrent updates", name)
}

// SetPassword replaces the password (and unlocks the account).
func (s *Store) SetPassword(ctx context.Context, name, password string, mustChange bool) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	_, err = s.modify(ctx, name, func(a *Account) error {
		a.Hash, a.MustChangePassword = hash, mustChange
		a.PasswordChangedAt = s.opts.Now().UTC()
		a.FailedLogins, a.LockedUntil = 0, time.Time{}
		return nil
	})
	return err
}

// SetDisabled disables or re-enables an account.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) error {
	_, err := s.modify(ctx, name, func(a *Account) error { a.Disabled = disabled; return nil })
	return err
}

// SetLang stores the account's UI language.
func (s *Store) SetLang(ctx context.Context, name, lang string) error {
	if !slices.Contains(Languages, lang) {
		return fmt.Errorf("%w: language %q", ErrInvalid, lang)
	}
	_, err := s.modify(ctx, name, func(a *Account) error { a.Lang = lang; return nil })
	return err
}

// List returns every account by name.
func (s *Store) List(ctx context.Context) ([]Account, error) {
	keys, err := s.kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: list: %w", err)
	}
	sort.Strings(keys)
	out := make([]Account, 0, len(keys))
	for _, k := range keys {
		a, _, err := s.Get(ctx, k)
		if err != nil {
			continue
		}
		out = append(out, *a)
	}
	return out, nil
}

// Empty reports whether no account exists yet.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	l, err := s.kv.ListKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("accounts: list: %w", err)
	}
	defer func() { _ = l.Stop() }()
	for range l.Keys() {
		return false, nil
	}
	return true, nil
}

// Authenticate checks a password. Failed attempts count towards the lockout threshold; a
// locked or disabled account is refused even with the right password. Unknown names cost
// the same hashing time as known ones so that timing does not reveal which names exist.
func (s *Store) Authenticate(ctx context.Context, name, password string) (*Account, error) {
	a, _, err := s.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		_, _ = VerifyPassword(s.dummyHash, password)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	if now.Before(a.LockedUntil) {
		_, _ = VerifyPassword(s.dummyHash, password)
		return nil, ErrLocked
	}
	ok, err := VerifyPassword(a.Hash, password)
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", name, err)
	}
	if !ok {
		locked := false
		_, err := s.modify(ctx, name, func(a *Account) error {
			a.FailedLogins++
			if a.FailedLogins >= s.opts.LockoutThreshold {
				a.LockedUntil = now.Add(s.opts.LockoutDuration).UTC()
				a.FailedLogins = 0
				locked = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if locked {
			return nil, ErrLocked
		}
		return nil, ErrBadCredentials
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	return s.modify(ctx, name, func(a *Account) error {
		a.FailedLogins, a.LockedUntil = 0, time.Time{}
		a.LastLoginAt = now.UTC()
		return nil
	})
}
