package platform

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/pipeline"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestLedgerExactlyOnceAcrossKill: local mode, a connector process SIGKILLed in the middle
// of a burst and restarted leaves every confirmed case exactly once in the ledger.
func TestLedgerExactlyOnceAcrossKill(t *testing.T) {
	srv := natsServer(t)
	js := srv.JS
	dataDir := t.TempDir()
	const n = 300
	var ids []string
	for i := range n {
		id := fmt.Sprintf("led-%03d", i)
		ids = append(ids, id)
		publishFine(t, js, validFine(id))
	}
	cfg := testConfig()
	ledgerPath := filepath.Join(dataDir, "fines-ledger.jsonl")
	spec := childSpec{NatsURL: srv.ClientURL(), DataDir: dataDir, Config: cfg}

	ledgerLines := func() int {
		b, err := os.ReadFile(ledgerPath)
		if err != nil {
			return 0
		}
		return strings.Count(string(b), "\n")
	}
	first := startChild(t, spec)
	eventually(t, 30*time.Second, "the first process to write part of the burst", func() bool { return ledgerLines() >= 60 })
	first.kill9(t)
	require.Less(t, ledgerLines(), n, "the kill must land in the middle of the burst")

	second := startChild(t, spec)
	eventually(t, 60*time.Second, "every case confirmed", func() bool {
		for _, id := range ids {
			if fr := lastResult(t, js, id); fr == nil || fr.Status != pipeline.FineCreated {
				return false
			}
		}
		return true
	})
	// A graceful stop: SIGTERM ends the process cleanly within seconds.
	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-second.done:
		require.NoError(t, err, "connector exits 0 on SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("connector did not stop within 10s of SIGTERM")
	}

	lines, err := ReadLedger(ledgerPath)
	require.NoError(t, err)
	count := map[string]int{}
	for _, l := range lines {
		count[l.CaseID]++
		assert.Equal(t, LocalReference(l.CaseID), l.Reference)
		var rec Record
		require.NoError(t, json.Unmarshal(l.Record, &rec))
		assert.Equal(t, l.CaseID, rec.CaseID)
	}
	assert.Len(t, count, n, "every confirmed case is in the ledger")
	for id, c := range count {
		assert.Equal(t, 1, c, "case %s is in the ledger %d times", id, c)
	}
	for _, id := range ids {
		assert.Equal(t, LocalReference(id), lastResult(t, js, id).Reference)
	}
	assert.Zero(t, finesCreateLeft(t, js))
}

// TestLedgerInProcessMetricsAndAudit covers local mode in one process: the log announces
// the ledger, metrics count records, AUDIT holds the outcome, a restart reads the ledger
// back and a repeated case is not written twice.
func TestLedgerInProcessMetricsAndAudit(t *testing.T) {
	srv := natsServer(t)
	js := srv.JS
	dataDir := t.TempDir()
	cfg := testConfig()
	cfg.Ledger = filepath.Join(dataDir, "sub", "ledger.jsonl")
	reg := prometheus.NewRegistry()
	for i := range 5 {
		publishFine(t, js, validFine(fmt.Sprintf("m-%d", i)))
	}
	stop := runConnector(t, js, reg, dataDir, cfg)
	eventually(t, 20*time.Second, "five records", func() bool {
		return metricValue(t, reg, "offencecam_platform_records_total", "") == 5
	})
	stop()
	assert.Equal(t, 5.0, metricValue(t, reg, "offencecam_platform_attempts_total", OutcomeCreated))
	ev := lastAudit(t, js, "m-3")
	require.NotNil(t, ev)
	assert.Equal(t, AuditAttempt, ev.Action)
	assert.Equal(t, "fine_created", ev.To)
	assert.Equal(t, "ledger", ev.Details["mode"])
	assert.Equal(t, "LOCAL-m-3", ev.Details["reference"])

	// The same case again (e.g. review republished it after the dedup window): recognised
	// from the ledger after a restart, not written twice.
	dup := validFine("m-3")
	b, err := json.Marshal(dup)
	require.NoError(t, err)
	_, err = js.Publish(t.Context(), pipeline.SubjectFinesCreate, b) // no msg id: bypasses dedup
	require.NoError(t, err)
	reg2 := prometheus.NewRegistry()
	stop = runConnector(t, js, reg2, dataDir, cfg)
	eventually(t, 20*time.Second, "the repeat handled", func() bool {
		return metricValue(t, reg2, "offencecam_platform_attempts_total", OutcomeDuplicate) == 1
	})
	stop()
	lines, err := ReadLedger(cfg.Ledger)
	require.NoError(t, err)
	assert.Len(t, lines, 5)
}

func TestLedgerCutsTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	good := `{"case_id":"a","reference":"LOCAL-a","recorded_at":"2026-01-01T00:00:00Z","record":{}}` + "\n" +
		`{"case_id":"b","reference":"LOCAL-b","recorded_at":"2026-01-01T00:00:00Z","record":{}}` + "\n"
	require.NoError(t, os.WriteFile(path, []byte(good+`{"case_id":"c","refer`), 0o640))

	l, err := openLedger(path, discard)
	require.NoError(t, err)
	assert.Equal(t, 2, l.count())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, good, string(b), "the torn line is cut")

	res := l.deliver(t.Context(), "c", []byte(`{"case_id":"c"}`))
	assert.Equal(t, resultCreated, res.kind)
	assert.Equal(t, OutcomeCreated, res.outcome)
	res = l.deliver(t.Context(), "a", []byte(`{"case_id":"a"}`))
	assert.Equal(t, OutcomeDuplicate, res.outcome)
	assert.Equal(t, "LOCAL-a", res.reference)
	require.NoError(t, l.close())

	lines, err := ReadLedger(path)
	require.NoError(t, err)
	require.Len(t, lines, 3)
	assert.Equal(t, "c", lines[2].CaseID)
	assert.JSONEq(t, `{"case_id":"c"}`, string(lines[2].Record))
}

func TestLedgerRefusesCorruptMiddleLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("{\"case_id\":\"a\"}\nnot json\n{\"case_id\":\"b\"}\n"), 0o640))
	_, err := openLedger(path, discard)
	require.ErrorIs(t, err, ErrLedgerCorrupt)
	assert.ErrorContains(t, err, "line 2")
}

func TestLedgerIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := openLedger(path, discard)
	require.NoError(t, err)
	_, err = openLedger(path, discard)
	require.ErrorContains(t, err, "locked by another process")
	require.NoError(t, l.close())
	l2, err := openLedger(path, discard)
	require.NoError(t, err, "the lock is released on close")
	require.NoError(t, l2.close())
}
