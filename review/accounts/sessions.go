package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoSession is returned for a missing, expired or revoked session.
var ErrNoSession = errors.New("no valid session")

// Session is a logged-in browser or API client. It is stored under the SHA-256 of its token,
// so reading the bucket does not yield usable cookies.
type Session struct {
	User      string    `json:"user"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	Remote    string    `json:"remote,omitempty"`
}

// Sessions is the sessions bucket with idle and absolute expiry.
type Sessions struct {
	kv       jetstream.KeyValue
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
}

// OpenSessions provisions the sessions bucket (TTL = absolute expiry, so abandoned sessions
// disappear on their own) and opens it.
func OpenSessions(ctx context.Context, js jetstream.JetStream, replicas int, idle, absolute time.Duration, now func() time.Time) (*Sessions, error) {
	if replicas < 1 {
		replicas = 1
	}
	if now == nil {
		now = time.Now
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketSessions, Description: "review UI sessions (keyed by token hash)",
		History: 1, TTL: absolute, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: provision KV %s: %w", BucketSessions, err)
	}
	return &Sessions{kv: kv, idle: idle, absolute: absolute, now: now}, nil
}

func tokenKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Create starts a session and returns its secret token.
func (s *Sessions) Create(ctx context.Context, user, remote string) (string, *Session, error) {
	tok, err := RandomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := RandomToken()
	if err != nil {
		return "", nil, err
	}
	now := s.now().UTC()
	sess := &Session{User: user, CSRF: csrf, CreatedAt: now, LastSeen: now, Remote: remote}
	data, _ := json.Marshal(sess)
	if _, err := s.kv.Create(ctx, tokenKey(tok), data); err != nil {
		return "", nil, fmt.Errorf("sessions: create: %w", err)
	}
	return tok, sess, nil
}

// Lookup returns the live session of a token and refreshes its idle timer (at most once a
// minute, to keep writes rare). Expired sessions are deleted.
func (s *Sessions) Lookup(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoSession
	}
	key := tokenKey(token)
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: get: %w", err)
	}
	var sess Session
	if err := json.Unmarshal(e.Value(), &sess); err != nil {
		return nil, ErrNoSession
	}
	now := s.now()
	if now.Sub(sess.LastSeen) > s.idle || now.Sub(sess.CreatedAt) > s.absolute {
		_ = s.kv.Delete(ctx, key)
		return nil, ErrNoSession
	}
	if now.Sub(sess.LastSeen) > min(time.Minute, s.idle/10) {
		sess.LastSeen = now.UTC()
		data, _ := json.Marshal(sess)
		// A concurrent request refreshing the same session is fine to lose to.
		_, _ = s.kv.Update(ctx, key, data, e.Revision())
	}
	return &sess, nil
}

// Delete ends a session (logout).
func (s *Sessions) Delete(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	if err := s.kv.Delete(ctx, tokenKey(token)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("sessions: delete: %w", err)
	}
	return nil
}
