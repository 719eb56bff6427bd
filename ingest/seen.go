package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Values stored in the seen KV: what became of an object version.
const (
	seenPublished   = "published"
	seenQuarantined = "quarantined:"
)

// seenKey is the KV key of a frame id: a hash, because keys, spaces and non-ASCII are not
// allowed in KV keys and ids can be long.
func seenKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return "f." + hex.EncodeToString(h[:])
}

// seenGet reports whether id was already published or quarantined.
func seenGet(ctx context.Context, kv jetstream.KeyValue, id string) (bool, error) {
	_, err := kv.Get(ctx, seenKey(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, err
	}
}

// recentSet remembers the newest frame ids this process saw done, so a listing does not ask
// the KV about every object again each period. It is a cache: the KV stays the authority.
type recentSet struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentSet(capacity int) *recentSet {
	return &recentSet{set: make(map[string]struct{}, capacity), ring: make([]string, capacity)}
}

func (r *recentSet) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

// reset forgets everything, as a restarted process would.
func (r *recentSet) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.set)
	clear(r.ring)
	r.next = 0
}

func (r *recentSet) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// idLocks serialises the processing of one frame id, so two announcements of the same object
// arriving at once (event and listing, or a doubled event) are handled one after the other
// and the second finds the first's result in the seen KV.
type idLocks struct {
	mu   sync.Mutex
	busy map[string]chan struct{}
}

func (l *idLocks) lock(ctx context.Context, id string) (func(), error) {
	for {
		l.mu.Lock()
		ch, busy := l.busy[id]
		if !busy {
			ch = make(chan struct{})
			l.busy[id] = ch
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.busy, id)
				l.mu.Unlock()
				close(ch)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// health holds the operations failing right now, for Ready.
type health struct {
	mu     sync.Mutex
	failed map[string]error
}

func (h *health) set(op string, err error) {
	h.mu.Lock()
	h.failed[op] = err
	h.mu.Unlock()
}

func (h *health) clear(op string) {
	h.mu.Lock()
	delete(h.failed, op)
	h.mu.Unlock()
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) == 0 {
		return nil
	}
	ops := make([]string, 0, len(h.failed))
	for op := range h.failed {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	errs := make([]error, 0, len(ops))
	for _, op := range ops {
		errs = append(errs, &opError{op, h.failed[op]})
	}
	return errors.Join(errs...)
}

type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return "ingest: " + e.op + " failing: " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }
