package accounts

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestHashRoundTripAndSalt(t *testing.T) {
	h1, err := HashPassword("correct horse battery")
	require.NoError(t, err)
	h2, err := HashPassword("correct horse battery")
	require.NoError(t, err)
	assert.NotEqual(t, h1, h2, "per-password random salt")
	assert.True(t, strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$"))
	ok, err := VerifyPassword(h1, "correct horse battery")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = VerifyPassword(h1, "correct horse batterY")
	require.NoError(t, err)
	assert.False(t, ok)
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=99999999,t=1,p=1$AA$AA", "$argon2id$v=19$m=8,t=1,p=1$!!$AA"} {
		_, err := VerifyPassword(bad, "x")
		assert.Error(t, err, bad)
	}
}

func FuzzVerifyPassword(f *testing.F) {
	h, _ := HashPassword("seed password 1")
	f.Add(h, "seed password 1")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA", "x")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		if len(encoded) > 300 {
			return
		}
		_, _ = VerifyPassword(encoded, pw) // must never panic
	})
}

func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		p, err := RandomPassword()
		require.NoError(t, err)
		require.Len(t, p, 20)
		require.NoError(t, CheckPassword(p))
		require.False(t, seen[p])
		seen[p] = true
	}
}

func TestAccountsLifecycleAndLockout(t *testing.T) {
	srv := natstest.Start(t, nil)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	st, err := Open(ctx, srv.JS, 1, Options{LockoutThreshold: 3, LockoutDuration: 10 * time.Minute, Now: clk.Now})
	require.NoError(t, err)
	empty, err := st.Empty(ctx)
	require.NoError(t, err)
	assert.True(t, empty)

	require.ErrorIs(t, st.Add(ctx, "Bad Name", "long enough password", []string{"reviewer"}, "fr", false), ErrInvalid)
	require.ErrorIs(t, st.Add(ctx, "anna", "short", []string{"reviewer"}, "fr", false), ErrInvalid)
	require.ErrorIs(t, st.Add(ctx, "anna", "long enough password", []string{"king"}, "fr", false), ErrInvalid)
	require.NoError(t, st.Add(ctx, "anna", "long enough password", []string{"reviewer"}, "nl", false))
	require.ErrorIs(t, st.Add(ctx, "anna", "long enough password", []string{"reviewer"}, "nl", false), ErrExists)

	a, err := st.Authenticate(ctx, "anna", "long enough password")
	require.NoError(t, err)
	assert.Equal(t, "nl", a.Lang)
	_, err = st.Authenticate(ctx, "nobody", "long enough password")
	require.ErrorIs(t, err, ErrBadCredentials)

	for i := 0; i < 2; i++ {
		_, err = st.Authenticate(ctx, "anna", "wrong password!!")
		require.ErrorIs(t, err, ErrBadCredentials)
	}
	_, err = st.Authenticate(ctx, "anna", "wrong password!!")
	require.ErrorIs(t, err, ErrLocked, "third failure locks")
	_, err = st.Authenticate(ctx, "anna", "long enough password")
	require.ErrorIs(t, err, ErrLocked, "locked even with the right password")
	clk.Add(11 * time.Minute)
	_, err = st.Authenticate(ctx, "anna", "long enough password")
	require.NoError(t, err, "lock expires")

	require.NoError(t, st.SetDisabled(ctx, "anna", true))
	_, err = st.Authenticate(ctx, "anna", "long enough password")
	require.ErrorIs(t, err, ErrDisabled)
	require.NoError(t, st.SetDisabled(ctx, "anna", false))
	require.NoError(t, st.SetPassword(ctx, "anna", "another long password", true))
	a, err = st.Authenticate(ctx, "anna", "another long password")
	require.NoError(t, err)
	assert.True(t, a.MustChangePassword)
	list, err := st.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "anna", list[0].Name)
}

func TestSessionsExpire(t *testing.T) {
	srv := natstest.Start(t, nil)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	ss, err := OpenSessions(ctx, srv.JS, 1, 30*time.Minute, 8*time.Hour, clk.Now)
	require.NoError(t, err)
	tok, sess, err := ss.Create(ctx, "anna", "127.0.0.1")
	require.NoError(t, err)
	require.NotEmpty(t, sess.CSRF)
	got, err := ss.Lookup(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "anna", got.User)
	_, err = ss.Lookup(ctx, tok+"x")
	require.ErrorIs(t, err, ErrNoSession)

	// Activity every 20 minutes keeps it alive until the absolute limit.
	for i := 0; i < 23; i++ {
		clk.Add(20 * time.Minute)
		_, err = ss.Lookup(ctx, tok)
		require.NoError(t, err, "lookup %d", i)
	}
	clk.Add(21 * time.Minute) // 8h01 after creation
	_, err = ss.Lookup(ctx, tok)
	require.ErrorIs(t, err, ErrNoSession, "absolute expiry")

	tok2, _, err := ss.Create(ctx, "anna", "")
	require.NoError(t, err)
	clk.Add(31 * time.Minute)
	_, err = ss.Lookup(ctx, tok2)
	require.ErrorIs(t, err, ErrNoSession, "idle expiry")

	tok3, _, err := ss.Create(ctx, "anna", "")
	require.NoError(t, err)
	require.NoError(t, ss.Delete(ctx, tok3))
	_, err = ss.Lookup(ctx, tok3)
	require.ErrorIs(t, err, ErrNoSession, "logout")
}
