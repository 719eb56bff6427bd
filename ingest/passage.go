package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"sync"
	"time"

	"github.com/crossborder/offencecam/pipeline"
)

// passages links the views of one vehicle pass. A passage id from the camera wins (scoped by
// site, or camera when the site is unknown, so two sites' counters never collide); without
// one, frames of the same camera captured within the window of one another, each with a view
// the group does not have yet, form one passage.
type passages struct {
	window time.Duration
	mu     sync.Mutex
	byCam  map[string][]*passageGroup
}

type passageGroup struct {
	id          string
	first, last time.Time
	views       map[string]bool
}

// maxGroupsPerCamera bounds memory; a pass older than the newest 64 of its camera is not
// going to receive another view.
const maxGroupsPerCamera = 64

func newPassages(window time.Duration) *passages {
	return &passages{window: window, byCam: map[string][]*passageGroup{}}
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
func (p *passages) assign(camera, site, passage, view string, at time.Time, frameID string) string {
	if passage != "" {
		return explicitPassageID(camera, site, passage)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	groups := p.byCam[camera]
	if p.window > 0 {
		for _, g := range groups {
			if at.Before(g.first.Add(-p.window)) || at.After(g.last.Add(p.window)) || g.views[view] {
				continue
			}
			g.views[view] = true
			if at.Before(g.first) {
				g.first = at
			}
			if at.After(g.last) {
				g.last = at
			}
			return g.id
		}
	}
	// The id is derived from the first frame seen of the pass, so it reads as camera and
	// time in logs and the review UI.
	g := &passageGroup{
		id:    pipeline.Token(camera) + "-" + at.UTC().Format("20060102T150405.000Z") + "-" + shortHash(frameID),
		first: at, last: at, views: map[string]bool{view: true},
	}
	groups = append(groups, g)
	if len(groups) > maxGroupsPerCamera {
		sort.Slice(groups, func(i, j int) bool { return groups[i].last.After(groups[j].last) })
		groups = groups[:maxGroupsPerCamera]
	}
	p.byCam[camera] = groups
	return g.id
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}
