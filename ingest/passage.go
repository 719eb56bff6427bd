package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	backoffpkg "github.com/crossborder/offencecam/internal/backoff"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
)

// passages links the views of one vehicle pass. A passage id from the camera wins (scoped by
// site, or camera when the site is unknown, so two sites' counters never collide); without
// one, frames of the same camera captured within the window of one another, each with a view
// the group does not have yet, form one passage.
//
// The open groups of each camera live in a groupStore: in the `seen` KV for the service, so
// that every ingest instance, and an instance after a restart, puts the views of one pass
// in one passage (in memory they split whenever two instances, or a restart, share a pass).
type passages struct {
	window time.Duration
	store  groupStore
}

// passageGroup is one open passage of a camera.
type passageGroup struct {
	ID    string          `json:"id"`
	First time.Time       `json:"first"`
	Last  time.Time       `json:"last"`
	Views map[string]bool `json:"views"`
	// Frames are the ids of its frames: a frame processed again (a retry after a crash)
	// gets the same passage again.
	Frames []string `json:"frames"`
}

// maxGroupsPerCamera bounds what is kept; a pass older than the newest 64 of its camera is
// not going to receive another view.
const maxGroupsPerCamera = 64

// groupStore keeps each camera's open groups. update applies place to them atomically and
// returns the passage id it chose.
type groupStore interface {
	update(ctx context.Context, camera string, place func([]*passageGroup) ([]*passageGroup, string)) (string, error)
}

func newPassages(window time.Duration, store groupStore) *passages {
	return &passages{window: window, store: store}
}

func explicitPassageID(camera, site, passage string) string {
	scope := site
	if scope == "" {
		scope = camera
	}
	return pipeline.Token(scope) + "-" + pipeline.Token(passage)
}

// assign returns the passage id of a frame. frameID (bucket/key/etag) makes a generated id
// unique: two passes of one camera stamped with the same capture time (second-resolution
// clocks, upload times) must never share an id, because DETECTIONS keeps one Detection per
// passage id and the second would be dropped as a duplicate.
func (p *passages) assign(ctx context.Context, camera, site, passage, view string, at time.Time, frameID string) (string, error) {
	if passage != "" {
		return explicitPassageID(camera, site, passage), nil
	}
	return p.store.update(ctx, camera, func(groups []*passageGroup) ([]*passageGroup, string) {
		return placeFrame(groups, p.window, camera, view, at, frameID)
	})
}

// placeFrame puts a frame into the camera's groups and returns them with the passage id.
func placeFrame(groups []*passageGroup, window time.Duration, camera, view string, at time.Time, frameID string) ([]*passageGroup, string) {
	for _, g := range groups {
		if slices.Contains(g.Frames, frameID) {
			return groups, g.ID
		}
	}
	if window > 0 {
		for _, g := range groups {
			if at.Before(g.First.Add(-window)) || at.After(g.Last.Add(window)) || g.Views[view] {
				continue
			}
			g.Views[view] = true
			g.Frames = append(g.Frames, frameID)
			if at.Before(g.First) {
				g.First = at
			}
			if at.After(g.Last) {
				g.Last = at
			}
			return groups, g.ID
		}
	}
	// The id is derived from the first frame seen of the pass, so it reads as camera and
	// time in logs and the review UI.
	g := &passageGroup{
		ID:    pipeline.Token(camera) + "-" + at.UTC().Format("20060102T150405.000Z") + "-" + shortHash(frameID),
		First: at, Last: at, Views: map[string]bool{view: true}, Frames: []string{frameID},
	}
	groups = append(groups, g)
	if len(groups) > maxGroupsPerCamera {
		sort.Slice(groups, func(i, j int) bool { return groups[i].Last.After(groups[j].Last) })
		groups = groups[:maxGroupsPerCamera]
	}
	return groups, g.ID
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// memGroups keeps the groups in this process (unit tests).
type memGroups struct {
	mu    sync.Mutex
	byCam map[string][]*passageGroup
}

func newMemGroups() *memGroups { return &memGroups{byCam: map[string][]*passageGroup{}} }

func (m *memGroups) update(_ context.Context, camera string, place func([]*passageGroup) ([]*passageGroup, string)) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	groups, id := place(m.byCam[camera])
	m.byCam[camera] = groups
	return id, nil
}

// kvGroups keeps the groups in a KV bucket, one key a camera, changed by compare-and-set so
// that instances assigning views of one camera at once never lose each other's groups.
type kvGroups struct {
	kv func() jetstream.KeyValue
}

// kvGroupAttempts bounds the compare-and-set retries of one assignment; each retry means
// another instance just placed a frame of the same camera.
const kvGroupAttempts = 20

func passageKey(camera string) string {
	h := sha256.Sum256([]byte(camera))
	return "passages." + hex.EncodeToString(h[:16])
}

func (k kvGroups) update(ctx context.Context, camera string, place func([]*passageGroup) ([]*passageGroup, string)) (string, error) {
	kv, key := k.kv(), passageKey(camera)
	for attempt := range kvGroupAttempts {
		if attempt > 0 {
			// Writers that lost the compare-and-set spread out before trying again; without
			// a pause the same one loses every round while others keep winning.
			t := time.NewTimer(backoffpkg.Delay(attempt, time.Millisecond, 50*time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return "", fmt.Errorf("passages of %s: %w", camera, ctx.Err())
			case <-t.C:
			}
		}
		var groups []*passageGroup
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return "", fmt.Errorf("passages of %s: %w", camera, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &groups); err != nil {
				groups = nil // unreadable: start over rather than stop ingest for the camera
			}
		}
		groups, id := place(groups)
		data, err := json.Marshal(groups)
		if err != nil {
			return "", fmt.Errorf("passages of %s: %w", camera, err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // another instance placed a frame of this camera first: place again
		}
		if err != nil {
			return "", fmt.Errorf("passages of %s: %w", camera, err)
		}
		return id, nil
	}
	return "", fmt.Errorf("passages of %s: %d concurrent updates in a row", camera, kvGroupAttempts)
}
