package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Three ingest instances share a camera without passage ids, each handed one view of every
// pass, all at once: every pass gets one passage id, over a real NATS KV. An instance
// started later (a restart) puts a view of an open pass into the same passage.
func TestPassagesAreSharedAcrossInstancesAndRestarts(t *testing.T) {
	ns := natstest.Start(t, nil)
	ctx := context.Background()
	kv, err := ns.JS.KeyValue(ctx, pipeline.KVSeen)
	require.NoError(t, err)
	instance := func() *passages {
		return newPassages(2*time.Second, kvGroups{kv: func() jetstream.KeyValue { return kv }})
	}
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	views := []string{pipeline.ViewFront, pipeline.ViewRear, pipeline.ViewOverhead}
	const passes = 30
	var mu sync.Mutex
	ids := map[int][]string{}
	var wg sync.WaitGroup
	for i := range views {
		p := instance()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pass := range passes {
				view := views[(pass+i)%len(views)]
				at := t0.Add(time.Duration(pass)*10*time.Second + time.Duration(i)*300*time.Millisecond)
				id, err := p.assign(ctx, "cam1", "", "", view, at, fmt.Sprintf("frames/cam1/%d/%s/etag", pass, view))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				ids[pass] = append(ids[pass], id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for pass := range passes {
		require.Len(t, ids[pass], len(views))
		for _, id := range ids[pass] {
			assert.Equal(t, ids[pass][0], id, "pass %d: one passage for its views", pass)
		}
		if prev, dup := seen[ids[pass][0]]; dup {
			t.Fatalf("passes %d and %d share passage %s", prev, pass, ids[pass][0])
		}
		seen[ids[pass][0]] = pass
	}

	// After a restart, a fourth view (a side camera) of the last pass joins it.
	late, err := instance().assign(ctx, "cam1", "", "", "side", t0.Add((passes-1)*10*time.Second+time.Second), "frames/cam1/late/side/etag")
	require.NoError(t, err)
	assert.Equal(t, ids[passes-1][0], late)
}
