package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// LedgerLine is one line of the local ledger (JSON lines): a fine record and the local
// reference it was given.
type LedgerLine struct {
	CaseID     string          `json:"case_id"`
	Reference  string          `json:"reference"`
	RecordedAt time.Time       `json:"recorded_at"`
	Record     json.RawMessage `json:"record"`
}

// LocalReference is the reference a ledger record gets.
func LocalReference(caseID string) string { return "LOCAL-" + caseID }

// ErrLedgerCorrupt marks a ledger with a bad line before its end; a torn last line is
// repaired, anything else needs a person.
var ErrLedgerCorrupt = errors.New("platform: fines ledger is corrupt")

// ledger is the one-box stand-in for the fines platform: an append-only JSON-lines file,
// fsynced per record, holding each case id at most once.
type ledger struct {
	mu   sync.Mutex
	f    *os.File
	path string
	size int64             // bytes of complete lines
	refs map[string]string // case id -> reference
	log  *slog.Logger
}

// openLedger opens (or creates) the ledger, takes an exclusive lock so two connectors
// cannot interleave lines, reads the case ids it holds and cuts a torn last line left by
// a crash mid-write.
func openLedger(path string, log *slog.Logger) (*ledger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("platform: ledger dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("platform: open ledger: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("platform: ledger %s is locked by another process: %w", path, err)
	}
	l := &ledger{f: f, path: path, refs: map[string]string{}, log: log}
	if err := l.load(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func (l *ledger) load() error {
	data, err := io.ReadAll(l.f)
	if err != nil {
		return fmt.Errorf("platform: read ledger %s: %w", l.path, err)
	}
	var off int64
	lineNo := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		lineNo++
		line := bytes.TrimSpace(data[off : off+int64(i)])
		off += int64(i) + 1
		if len(line) == 0 {
			continue
		}
		var ll LedgerLine
		if err := json.Unmarshal(line, &ll); err != nil || ll.CaseID == "" {
			return fmt.Errorf("%w: %s line %d is not a ledger entry (%v); move the file aside or repair it",
				ErrLedgerCorrupt, l.path, lineNo, err)
		}
		l.refs[ll.CaseID] = ll.Reference
	}
	if off < int64(len(data)) {
		// The last write never completed (no newline): that record was never confirmed,
		// because confirmation waits for the fsync of the whole line. Cut it.
		l.log.Warn("fines ledger: cutting a torn last line left by a crash",
			"path", l.path, "bytes", int64(len(data))-off)
		if err := l.f.Truncate(off); err != nil {
			return fmt.Errorf("platform: truncate torn ledger line: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("platform: sync ledger: %w", err)
		}
	}
	l.size = off
	if _, err := l.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("platform: seek ledger: %w", err)
	}
	return nil
}

func (l *ledger) mode() string { return "ledger" }

// count is the number of case ids in the ledger.
func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.refs)
}

func (l *ledger) deliver(_ context.Context, caseID string, body []byte) attemptResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ref, ok := l.refs[caseID]; ok {
		return attemptResult{kind: resultCreated, outcome: OutcomeDuplicate, reference: ref}
	}
	ref := LocalReference(caseID)
	line, err := json.Marshal(LedgerLine{CaseID: caseID, Reference: ref, RecordedAt: time.Now().UTC(),
		Record: json.RawMessage(body)})
	if err != nil {
		return attemptResult{kind: resultRetry, outcome: OutcomeLedgerError, message: err.Error()}
	}
	line = append(line, '\n')
	if _, err := l.f.Write(line); err != nil {
		return l.undo(fmt.Errorf("write: %w", err))
	}
	if err := l.f.Sync(); err != nil {
		return l.undo(fmt.Errorf("fsync: %w", err))
	}
	l.size += int64(len(line))
	l.refs[caseID] = ref
	return attemptResult{kind: resultCreated, outcome: OutcomeCreated, reference: ref}
}

// undo cuts a partly written line (disk full, I/O error) so the next record does not land
// after garbage; the attempt is retried like a platform outage.
func (l *ledger) undo(cause error) attemptResult {
	msg := cause.Error()
	if err := l.f.Truncate(l.size); err != nil {
		msg += "; truncate: " + err.Error()
	}
	if _, err := l.f.Seek(l.size, io.SeekStart); err != nil {
		msg += "; seek: " + err.Error()
	}
	return attemptResult{kind: resultRetry, outcome: OutcomeLedgerError, message: "ledger " + msg}
}

func (l *ledger) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // closing releases the flock
	l.f = nil
	return err
}

// ReadLedger returns the lines of a ledger file; a torn last line is ignored. For tools and
// tests: the connector keeps its own index.
func ReadLedger(path string) ([]LedgerLine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []LedgerLine
	for n, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 || line[len(line)-1] != '\n' {
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var ll LedgerLine
		if err := json.Unmarshal(line, &ll); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrLedgerCorrupt, path, n+1, err)
		}
		out = append(out, ll)
	}
	return out, nil
}
