package cases

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Index is an in-memory copy of the `cases` bucket, kept current by a KV watcher. It serves
// listings, counts and queue candidates; every change still goes through a KV update at the
// revision read from the bucket, so a stale index can cost a retry, never a wrong write.
type Index struct {
	kv      jetstream.KeyValue
	mu      sync.RWMutex
	cases   map[string]*Case
	lastSeq uint64
	changed chan struct{} // closed and replaced on every applied entry
}

func startIndex(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*Index, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("cases: watch: %w", err)
	}
	ix := &Index{kv: kv, cases: map[string]*Case{}, changed: make(chan struct{})}
	// The initial values end with a nil entry; the index is complete from then on.
	for e := range w.Updates() {
		if e == nil {
			break
		}
		ix.apply(e, log)
	}
	go ix.follow(ctx, w, log)
	return ix, nil
}

// follow applies changes until ctx ends. A watcher that ends early (its consumer lost) is
// replaced: the new one replays the current value of every key, which apply takes in
// idempotently, so the index catches up instead of going stale.
func (ix *Index) follow(ctx context.Context, w jetstream.KeyWatcher, log *slog.Logger) {
	backoff := 200 * time.Millisecond
	for {
		func() {
			defer func() { _ = w.Stop() }()
			for {
				select {
				case <-ctx.Done():
					return
				case e, ok := <-w.Updates():
					if !ok {
						return
					}
					if e != nil {
						ix.apply(e, log)
					}
				}
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			var err error
			if w, err = ix.kv.WatchAll(ctx); err == nil {
				log.Warn("case index watcher restarted")
				backoff = 200 * time.Millisecond
				break
			}
			log.Warn("case index watcher restart failed", "err", err)
			backoff = min(backoff*2, 10*time.Second)
		}
	}
}

func (ix *Index) apply(e jetstream.KeyValueEntry, log *slog.Logger) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		delete(ix.cases, e.Key())
	default:
		var c Case
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			log.Error("case record unreadable; left out of the index", "key", e.Key(), "err", err)
		} else {
			ix.cases[e.Key()] = &c
		}
	}
	ix.lastSeq = max(ix.lastSeq, e.Revision())
	close(ix.changed)
	ix.changed = make(chan struct{})
}

// Sync waits until the index has seen every change stored in the bucket when it was called.
func (ix *Index) Sync(ctx context.Context) error {
	st, err := ix.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("cases: KV status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	want := bs.StreamInfo().State.LastSeq
	for {
		ix.mu.RLock()
		seq, ch := ix.lastSeq, ix.changed
		ix.mu.RUnlock()
		if seq >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Snapshot returns copies of every indexed case, oldest capture first.
func (ix *Index) Snapshot() []Case {
	ptrs := ix.Select(nil)
	out := make([]Case, len(ptrs))
	for i, c := range ptrs {
		out[i] = *c
	}
	return out
}

// Select returns the indexed cases keep accepts (all when keep is nil), oldest capture first.
// The records are shared with the index and must not be modified (the index replaces a
// record on change, never mutates it). keep runs under the index lock and must not block.
func (ix *Index) Select(keep func(*Case) bool) []*Case {
	ix.mu.RLock()
	ptrs := make([]*Case, 0, len(ix.cases))
	for _, c := range ix.cases {
		if keep == nil || keep(c) {
			ptrs = append(ptrs, c)
		}
	}
	ix.mu.RUnlock()
	// Sorting pointers: a Case is large, and records are replaced, never mutated, in the map.
	slices.SortFunc(ptrs, func(a, b *Case) int {
		if c := a.Detection.CapturedAt.Compare(b.Detection.CapturedAt); c != 0 {
			return c
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ptrs
}

// Len is the number of indexed cases.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.cases)
}
