package detector

import (
	"context"
	"testing"

	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/testenv"
)

// FuzzAnalyze feeds arbitrary bytes through the whole graph: every input ends in a result
// or a typed bad-input error, never a panic or an untyped error.
//
//	go test -run XXX -fuzz FuzzAnalyze -fuzztime 30s ./detector/
func FuzzAnalyze(f *testing.F) {
	good := readFile(f, testenv.SharedPath(f, "data", "plates", "us3.jpg"))
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add(pngHeader(64, 64, 8, 2))
	f.Add(pngHeader(100000, 100000, 8, 0))
	f.Add([]byte{})
	f.Add([]byte("\xff\xd8\xff\xe0"))
	g := sharedDefaultGraph(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := g.Analyze(context.Background(), []View{{Data: data}})
		if err != nil && imgproc.Reason(err) == "" {
			t.Fatalf("untyped error for %d bytes: %v", len(data), err)
		}
	})
}
