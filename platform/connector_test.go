package platform

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/pipeline"
)

// scriptFor fails each case's first attempts in one of the ways a platform and a network do,
// chosen by the case number.
func scriptFor(key string, attempt int) string {
	if strings.HasPrefix(key, "rej-") {
		return act422
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(key, "case-"))
	switch n % 10 {
	case 1:
		if attempt == 1 {
			return actResetBefore
		}
	case 2:
		if attempt == 1 {
			return actResetAfter // stored, but the answer is lost
		}
	case 3:
		if attempt == 1 {
			return actHang
		}
	case 4:
		if attempt == 1 {
			return actHangAfter // stored, then too slow to answer
		}
	case 5:
		if attempt <= 2 {
			return act500
		}
	case 6:
		if attempt == 1 {
			return act429
		}
	case 8:
		if attempt == 1 {
			return act503
		}
	}
	return actOK
}

// TestExactlyOnceAgainstFlakyPlatform is the acceptance test: 200 confirmed cases
// against a platform that resets connections, hangs, fails with 500/503, throttles with
// Retry-After and already holds some records, plus 10 cases it refuses with 422; the
// connector is stopped (context cancel) and killed (SIGKILL of a subprocess) in the middle.
// The platform must end up holding each of the 200 exactly once.
func TestExactlyOnceAgainstFlakyPlatform(t *testing.T) {
	srv := natsServer(t)
	js := srv.JS
	plat := newFakePlatform(t, "s3cret-token", scriptFor)

	const good, rejected = 200, 10
	var ids []string
	for i := range good {
		id := fmt.Sprintf("case-%03d", i)
		ids = append(ids, id)
		if i%10 == 7 {
			plat.seed(id, "EXIST-"+id) // the platform already has it: 409 on the first try
		}
	}
	for i := range rejected {
		ids = append(ids, fmt.Sprintf("rej-%02d", i))
	}
	for _, id := range ids {
		publishFine(t, js, validFine(id))
	}

	cfg := testConfig()
	cfg.Endpoint = plat.srv.URL
	cfg.AllowInsecureHTTP = true
	cfg.Token = "s3cret-token"
	reg := prometheus.NewRegistry()
	dataDir := t.TempDir()

	// Life 1: in-process, stopped by context cancel part-way.
	stop := runConnector(t, js, reg, dataDir, cfg)
	eventually(t, 30*time.Second, "first records stored", func() bool { return plat.storedCount() >= 60 })
	took := stop()
	assert.Less(t, took, 5*time.Second, "connector must stop promptly on cancel")
	afterLife1 := plat.storedCount()
	require.Less(t, afterLife1, good, "life 1 must stop in the middle of the burst")

	// Life 2: a subprocess, killed with SIGKILL part-way.
	ch := startChild(t, childSpec{NatsURL: srv.ClientURL(), DataDir: dataDir, Config: cfg})
	eventually(t, 30*time.Second, "more records stored by the subprocess", func() bool {
		return plat.storedCount() >= afterLife1+40
	})
	ch.kill9(t)
	afterLife2 := plat.storedCount()
	require.Less(t, afterLife2, good, "life 2 must be killed in the middle of the burst")

	// Life 3: in-process again, to the end.
	stop = runConnector(t, js, reg, dataDir, cfg)
	eventually(t, 60*time.Second, "every case has a final outcome", func() bool {
		for _, id := range ids {
			if !final(lastResult(t, js, id)) {
				return false
			}
		}
		return true
	})
	stop()

	plat.mu.Lock()
	defer plat.mu.Unlock()
	assert.Empty(t, plat.problems, "protocol violations")
	assert.Len(t, plat.stored, good, "exactly 200 records on the platform side")
	for key, n := range plat.storeCount {
		assert.Equal(t, 1, n, "record %s stored more than once", key)
	}
	for _, a := range []string{actResetBefore, actResetAfter, actHang, actHangAfter, act500, act503, act429, act422} {
		assert.Positive(t, plat.actions[a], "the script never exercised %s", a)
	}
	assert.Empty(t, plat.early, "requests sent before the Retry-After they were given")

	for _, id := range ids {
		fr := lastResult(t, js, id)
		ev := lastAudit(t, js, id)
		require.NotNil(t, ev, id)
		assert.Equal(t, Actor, ev.Actor)
		if strings.HasPrefix(id, "rej-") {
			assert.Equal(t, pipeline.FineRejected, fr.Status, id)
			assert.Equal(t, reject422Reason, fr.Message, id)
			assert.NotContains(t, plat.stored, id)
			assert.Equal(t, "platform_rejected", ev.To)
			assert.Equal(t, "422", ev.Details["http_status"])
			continue
		}
		assert.Equal(t, pipeline.FineCreated, fr.Status, id)
		assert.Equal(t, plat.stored[id], fr.Reference, id)
		assert.Equal(t, "fine_created", ev.To, id)
		assert.Equal(t, fr.Reference, ev.Details["reference"], id)
	}
	assert.Equal(t, "EXIST-case-007", lastResult(t, js, "case-007").Reference, "409 keeps the existing reference")
	assert.Zero(t, finesCreateLeft(t, js), "every FINES message acked")

	// The in-process lives counted attempts of every kind they met.
	assert.Positive(t, metricValue(t, reg, "offencecam_platform_records_total", ""))
	assert.Positive(t, metricValue(t, reg, "offencecam_platform_attempts_total", OutcomeCreated))
}
