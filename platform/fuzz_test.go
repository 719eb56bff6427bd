package platform

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossborder/offencecam/pipeline"
)

// FuzzFineToRecord feeds arbitrary FINES payloads through decode, build and schema: bad
// input must come out as an error, never a panic, and whatever passes the schema must be a
// record the platform can decode.
func FuzzFineToRecord(f *testing.F) {
	good, _ := json.Marshal(validFine("fz-1"))
	f.Add(good)
	f.Add([]byte(`{"v":1,"case_id":"x","offences":["phone"],"offence_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":1,"case_id":"x","offences":["phone","phone"],"location":{"lat":1e308}}`))
	f.Add([]byte(`null`))
	b := newTestBuilder(f)
	s, err := CompileSchema()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := pipeline.Decode[pipeline.FineRecord](data)
		if err != nil {
			return
		}
		rec, err := b.Build(fr)
		if err != nil {
			return
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return // e.g. NaN/Inf cannot be JSON: never sent either
		}
		if s.Validate(body) != nil {
			return
		}
		var back Record
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatalf("valid record does not decode: %v", err)
		}
		if back.CaseID == "" || len(back.Offences) == 0 {
			t.Fatalf("schema let through an empty record: %s", body)
		}
	})
}

// FuzzLedgerOpen: whatever a crash or a disk leaves in the ledger file, opening it either
// fails with a clear error or leaves only complete lines, and reopening agrees.
func FuzzLedgerOpen(f *testing.F) {
	f.Add([]byte(`{"case_id":"a","reference":"LOCAL-a","record":{}}` + "\n" + `{"case_id":"b"`))
	f.Add([]byte("\n\n{\"case_id\":\"a\"}\n"))
	f.Add([]byte{0, 0, 0})
	f.Add([]byte(`{"case_id":""}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "l.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := openLedger(path, discard)
		if err != nil {
			return
		}
		n := l.count()
		_ = l.close()
		after, _ := os.ReadFile(path)
		if !bytes.HasPrefix(data, after) || (len(after) > 0 && after[len(after)-1] != '\n') {
			t.Fatalf("ledger repair left %q from %q", after, data)
		}
		l, err = openLedger(path, discard)
		if err != nil {
			t.Fatalf("reopen after repair: %v", err)
		}
		if l.count() != n {
			t.Fatalf("reopen sees %d cases, first open %d", l.count(), n)
		}
		_ = l.close()
	})
}

// FuzzPlatformResponse: any response body and Retry-After header is read without panic.
func FuzzPlatformResponse(f *testing.F) {
	f.Add([]byte(`{"reference":"R","message":"m"}`), "120")
	f.Add([]byte(`{"message":42}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add([]byte("\xff\xfe"), "-1")
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte, retryAfter string) {
		_ = referenceOf(body)
		if m := messageOf(body, 422); m == "" {
			t.Fatal("empty message for a rejection")
		}
		if d := parseRetryAfter(retryAfter, now); d < 0 {
			t.Fatalf("negative Retry-After %v", d)
		}
	})
}
