package platform

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkBuildAndValidate is the CPU cost per record before it is sent.
func BenchmarkBuildAndValidate(b *testing.B) {
	bld := newTestBuilder(b)
	s, err := CompileSchema()
	if err != nil {
		b.Fatal(err)
	}
	f := validFine("bench-1")
	b.ReportAllocs()
	for b.Loop() {
		rec, err := bld.Build(f)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(rec)
		if err := s.Validate(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerAppend is local mode's throughput ceiling: one fsync per record.
func BenchmarkLedgerAppend(b *testing.B) {
	l, err := openLedger(filepath.Join(b.TempDir(), "l.jsonl"), discard)
	if err != nil {
		b.Fatal(err)
	}
	defer l.close()
	body, _ := json.Marshal(validFine("x"))
	i := 0
	for b.Loop() {
		i++
		if res := l.deliver(b.Context(), fmt.Sprint("case-", i), body); res.kind != resultCreated {
			b.Fatal(res.message)
		}
	}
}
