package dataset

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var (
	today     = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	reasons   = []string{"not_driver", "not_phone", "belt_visible", "plate_unreadable"}
	alice     = cases.Actor{Name: "alice", Roles: []string{cases.RoleReviewer}}
	bob       = cases.Actor{Name: "bob", Roles: []string{cases.RoleReviewer}}
	stemRE    = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)
	sinceFlag = "720h"
)

// fixture is a real NATS with the wire, a real local object store holding the evidence, and
// the review case store with cases made from Detections of roadside-train frames and decided
// through the workflow.
type fixture struct {
	ns    *natstest.Server
	store objstore.Store
	cases *cases.Store
	clock *clock
	ctx   context.Context
	src   string                 // roadside-train
	boxes map[string]string      // stem -> driver crop as in its labels.tsv
	want  map[string]wantedLabel // case id -> what the export must say
	n     int                    // cases made; each passage is captured a minute after the last
}

type wantedLabel struct {
	src, phone, belt string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	src := testenv.SharedPath(t, "data", "roadside-train")
	ns := natstest.Start(t, nil)
	st, err := objstore.NewLocal(t.TempDir())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, st.EnsureBucket(ctx, pipeline.BucketEvidence))
	clk := &clock{t: today}
	cs, err := cases.Open(ctx, ns.JS, cases.Config{LeaseDuration: 5 * time.Minute, ReasonCodes: reasons, Now: clk.Now})
	require.NoError(t, err)
	f := &fixture{ns: ns, store: st, cases: cs, clock: clk, ctx: ctx, src: src, boxes: map[string]string{}, want: map[string]wantedLabel{}}
	lf, err := os.Open(filepath.Join(src, "labels.tsv"))
	require.NoError(t, err)
	defer lf.Close()
	sc := bufio.NewScanner(lf)
	for sc.Scan() {
		if cols := strings.Split(sc.Text(), "\t"); len(cols) >= 4 && !strings.HasPrefix(cols[0], "#") {
			f.boxes[cols[0]] = cols[3]
		}
	}
	require.NoError(t, sc.Err())
	return f
}

// stems are the first n frames of roadside-train, by name.
func (f *fixture) stems(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for s := range f.boxes {
		out = append(out, s)
	}
	sort.Strings(out)
	require.GreaterOrEqual(t, len(out), n)
	return out[:n]
}

// addCase stores the frame stem as a passage's original evidence and makes its case from a
// Detection flagging kinds on one vehicle whose driver and windshield boxes are the data
// set's own.
func (f *fixture) addCase(t *testing.T, passage, stem string, kinds ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.src, "images", stem+".jpg"))
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	key := fmt.Sprintf("2026/11/27/%s/original-front-%s.jpg", passage, hex.EncodeToString(sum[:4]))
	info, err := f.store.Put(f.ctx, pipeline.BucketEvidence, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{ContentType: "image/jpeg"})
	require.NoError(t, err)

	var x0, y0, x1, y1 float64
	_, err = fmt.Sscanf(f.boxes[stem], "%g,%g,%g,%g", &x0, &y0, &x1, &y1)
	require.NoError(t, err)
	veh := pipeline.Vehicle{Class: "car", Score: .9, Box: pipeline.Box{W: 640, H: 640}, View: pipeline.ViewFront,
		Driver: &pipeline.Box{X: x0, Y: y0, W: x1 - x0, H: y1 - y0},
		Phone:  pipeline.Finding{State: pipeline.PhoneNone}, Seatbelt: pipeline.Finding{State: pipeline.StateUnknown},
		Plate: &pipeline.Plate{Text: "1ABC234", Country: "BE", Confidence: .9}}
	wb, err := os.ReadFile(filepath.Join(f.src, "windshield", stem+".txt"))
	require.NoError(t, err)
	var cls int
	var cx, cy, w, h float64
	if _, err := fmt.Sscanf(string(wb), "%d %g %g %g %g", &cls, &cx, &cy, &w, &h); err == nil {
		veh.Windshield = &pipeline.Box{X: (cx - w/2) * 640, Y: (cy - h/2) * 640, W: w * 640, H: h * 640}
	}
	det := pipeline.Detection{V: pipeline.Version, PassageID: passage, Camera: "cam-1",
		CapturedAt: f.clock.Now().Add(-time.Hour + time.Duration(f.n)*time.Minute), DetectedAt: f.clock.Now(), Flagged: true,
		Frames:   []pipeline.FrameRef{{Bucket: pipeline.BucketFrames, Key: "cam-1/" + passage + ".jpg", View: pipeline.ViewFront, Width: 640, Height: 640}},
		Vehicles: []pipeline.Vehicle{veh},
		Models:   []pipeline.ModelRef{{Name: "occupant", Version: "1", Role: "phone"}},
		Evidence: []pipeline.Evidence{{Kind: pipeline.EvidenceOriginal, Bucket: pipeline.BucketEvidence, Key: key,
			SHA256: hex.EncodeToString(sum[:]), Size: info.Size, ContentType: "image/jpeg", View: pipeline.ViewFront}}}
	for _, k := range kinds {
		det.Offences = append(det.Offences, pipeline.Offence{Kind: k, Score: .8, Vehicle: 0})
	}
	created, err := f.cases.CreateFromDetection(f.ctx, det)
	require.NoError(t, err)
	require.True(t, created)
	f.n++
	return cases.IDFor(passage)
}

func (f *fixture) decide(t *testing.T, id string, who cases.Actor, in cases.Input) *cases.Case {
	t.Helper()
	_, err := f.cases.Lease(f.ctx, id, who)
	require.NoError(t, err)
	c, err := f.cases.Decide(f.ctx, id, who, in)
	require.NoError(t, err)
	return c
}

func confirm(kinds ...string) cases.Input {
	return cases.Input{Outcome: pipeline.OutcomeConfirm, Offences: kinds}
}

func reject(reason string) cases.Input {
	return cases.Input{Outcome: pipeline.OutcomeReject, Reason: reason}
}

// build makes pairs of each decided kind, plus one case of every kind the export skips.
func (f *fixture) build(t *testing.T) {
	t.Helper()
	stems := f.stems(t, 13)
	next := 0
	add := func(kinds ...string) (string, string) {
		stem := stems[next]
		next++
		return f.addCase(t, fmt.Sprintf("pass-%02d", next), stem, kinds...), stem
	}
	// Decided a month and a half ago: before --since.
	f.clock.Set(today.Add(-45 * 24 * time.Hour))
	old, _ := add(pipeline.OffencePhone)
	f.decide(t, old, alice, reject("not_phone"))
	f.clock.Set(today)

	for i := 0; i < 2; i++ {
		// A confirmed phone offence, through both reviews; the first one on to the platform.
		id, stem := add(pipeline.OffencePhone)
		f.decide(t, id, alice, confirm(pipeline.OffencePhone))
		c := f.decide(t, id, bob, confirm(pipeline.OffencePhone))
		require.Equal(t, cases.Confirmed, c.State)
		if i == 0 {
			require.NoError(t, f.cases.ApplyFineResult(f.ctx, pipeline.FineResult{V: pipeline.Version, CaseID: id, Status: pipeline.FineCreated, Reference: "F-1", At: today}))
		}
		f.want[id] = wantedLabel{stem, PhoneYes, LabelUnsure}

		// Flagged for both, confirmed for the belt only: the phone stays unsure.
		id, stem = add(pipeline.OffencePhone, pipeline.OffenceSeatbelt)
		f.decide(t, id, alice, confirm(pipeline.OffenceSeatbelt))
		f.decide(t, id, bob, confirm(pipeline.OffenceSeatbelt))
		f.want[id] = wantedLabel{stem, LabelUnsure, BeltNotWorn}

		id, stem = add(pipeline.OffencePhone)
		f.decide(t, id, alice, reject("not_phone"))
		f.want[id] = wantedLabel{stem, PhoneNo, LabelUnsure}

		id, stem = add(pipeline.OffenceSeatbelt)
		f.decide(t, id, alice, reject("belt_visible"))
		f.want[id] = wantedLabel{stem, LabelUnsure, BeltWorn}
	}

	// Purged by the retention sweep: objects deleted, then recorded.
	purged, _ := add(pipeline.OffencePhone)
	c := f.decide(t, purged, alice, reject("not_phone"))
	for _, ev := range c.Detection.Evidence {
		require.NoError(t, f.store.Delete(f.ctx, ev.Bucket, ev.Key))
	}
	c, rev, err := f.cases.Get(f.ctx, purged)
	require.NoError(t, err)
	_, _, err = f.cases.RecordPurge(f.ctx, c, rev, "retain_rejected", 1)
	require.NoError(t, err)

	// Evidence gone without a purge record (removed by hand).
	missing, _ := add(pipeline.OffenceSeatbelt)
	c = f.decide(t, missing, alice, reject("belt_visible"))
	require.NoError(t, f.store.Delete(f.ctx, c.Detection.Evidence[0].Bucket, c.Detection.Evidence[0].Key))

	// Still under review after the first confirmation.
	undecided, _ := add(pipeline.OffencePhone)
	f.decide(t, undecided, alice, confirm(pipeline.OffencePhone))

	// Rejected for a reason that says nothing about phone or belt.
	unreadable, _ := add(pipeline.OffencePhone)
	f.decide(t, unreadable, alice, reject("plate_unreadable"))
	require.Equal(t, len(stems), next)
}

func (f *fixture) export(t *testing.T, out string) Summary {
	t.Helper()
	since, err := ParseSince(sinceFlag, f.clock.Now())
	require.NoError(t, err)
	var progress bytes.Buffer
	sum, err := Export(f.ctx, Deps{JS: f.ns.JS, Store: f.store, Cases: f.cases},
		Config{Out: out, Since: since, By: "cli:tester", Progress: &progress, Now: f.clock.Now})
	require.NoError(t, err, progress.String())
	assert.Contains(t, progress.String(), sum.String(), "the summary ends the progress output")
	return sum
}

func readTSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rows [][]string
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if i == 0 {
			require.True(t, strings.HasPrefix(line, "# stem\t"), "%s starts with its header comment: %q", path, line)
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows
}

func TestExportReviewedCases(t *testing.T) {
	f := newFixture(t)
	f.build(t)
	out := filepath.Join(t.TempDir(), "export")
	sum := f.export(t, out)

	assert.Equal(t, len(f.want), sum.Exported)
	assert.Equal(t, map[string]int{SkipBeforeSince: 1, SkipPurged: 1, SkipEvidenceMissing: 1, SkipUndecided: 1, SkipNoLabel: 1}, sum.Skipped)
	assert.Equal(t, map[string]int{"phone=yes": 2, "phone=no": 2, "phone=unsure": 4, "belt=worn": 2, "belt=not_worn": 2, "belt=unsure": 4}, sum.Labels)

	labels := readTSV(t, filepath.Join(out, "labels.tsv"))
	manifest := readTSV(t, filepath.Join(out, "MANIFEST.tsv"))
	require.Len(t, labels, len(f.want))
	require.Len(t, manifest, len(f.want))
	byStem := map[string][]string{}
	for _, m := range manifest {
		require.Len(t, m, 4)
		byStem[m[0]] = m
	}
	seen := map[string]bool{}
	for _, r := range labels {
		require.Len(t, r, 5, "%q", r)
		stem := r[0]
		assert.Regexp(t, stemRE, stem, "a filesystem-safe stem")
		assert.False(t, seen[stem], "stem %s is unique", stem)
		seen[stem] = true
		m := byStem[stem]
		require.NotNil(t, m, "%s is in MANIFEST.tsv", stem)
		caseID := m[1]
		want, ok := f.want[caseID]
		require.True(t, ok, "case %s was exported", caseID)
		assert.Equal(t, want.phone, r[1], caseID)
		assert.Equal(t, want.belt, r[2], caseID)
		assert.Equal(t, f.boxes[want.src], r[3], "%s: the driver crop of the offending vehicle", caseID)
		assert.True(t, strings.HasPrefix(r[4], "case "+caseID+"; "), "note %q names the case", r[4])
		assert.Contains(t, r[4], "first:", "note %q has the decisions", r[4])

		img, err := os.ReadFile(filepath.Join(out, "images", stem+".jpg"))
		require.NoError(t, err)
		orig, err := os.ReadFile(filepath.Join(f.src, "images", want.src+".jpg"))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(orig, img), "%s: the original's bytes as stored", stem)
		s := sha256.Sum256(img)
		assert.Equal(t, hex.EncodeToString(s[:]), m[3])
		assert.True(t, strings.HasPrefix(m[2], pipeline.BucketEvidence+"/"), "evidence %q", m[2])

		// The windshield box round-trips through the Detection's pixels.
		gotWS, err := os.ReadFile(filepath.Join(out, "windshield", stem+".txt"))
		require.NoError(t, err)
		srcWS, err := os.ReadFile(filepath.Join(f.src, "windshield", want.src+".txt"))
		require.NoError(t, err)
		g, w := strings.Fields(string(gotWS)), strings.Fields(strings.SplitN(string(srcWS), "\n", 2)[0])
		require.Len(t, g, 5)
		require.Len(t, w, 5)
		assert.Equal(t, "0", g[0])
		for i := 1; i < 5; i++ {
			gv, _ := strconv.ParseFloat(g[i], 64)
			wv, _ := strconv.ParseFloat(w[i], 64)
			assert.InDelta(t, wv, gv, 1e-5, "%s windshield field %d", stem, i)
		}
	}

	recs, err := audit.Read(f.ctx, f.ns.JS, audit.Query{Subjects: []string{pipeline.AuditSubject(EntityDataset, sum.ID)}})
	require.NoError(t, err)
	require.Len(t, recs, 1, "one AUDIT entry per export")
	ev := recs[0].Event
	assert.Equal(t, "cli:tester", ev.Actor)
	assert.Equal(t, ActionExport, ev.Action)
	assert.Equal(t, strconv.Itoa(sum.Exported), ev.Details["count"])
	assert.Equal(t, out, ev.Details["out"])
	assert.Equal(t, today.Add(-720*time.Hour).Format(time.RFC3339), ev.Details["since"])
	mb, err := os.ReadFile(filepath.Join(out, "MANIFEST.tsv"))
	require.NoError(t, err)
	ms := sha256.Sum256(mb)
	assert.Equal(t, hex.EncodeToString(ms[:]), ev.Details["manifest_sha256"], "the entry pins the exported set")

	// An export never writes into another one.
	_, err = Export(f.ctx, Deps{JS: f.ns.JS, Store: f.store, Cases: f.cases}, Config{Out: out, By: "cli:tester", Now: f.clock.Now})
	require.ErrorContains(t, err, "not empty")
	left, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Len(t, left, 1, "no partial directory is left behind: %v", left)
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	got, err := ParseSince("720h", now)
	require.NoError(t, err)
	assert.Equal(t, now.Add(-720*time.Hour), got)
	got, err = ParseSince("2026-01-31T00:00:00+01:00", now)
	require.NoError(t, err)
	assert.True(t, got.Equal(time.Date(2026, 1, 30, 23, 0, 0, 0, time.UTC)))
	got, err = ParseSince("", now)
	require.NoError(t, err)
	assert.True(t, got.IsZero())
	for _, bad := range []string{"yesterday", "-5h", "2026-01-31"} {
		_, err := ParseSince(bad, now)
		assert.Error(t, err, bad)
	}
}

func TestLabelsFromDecisions(t *testing.T) {
	for name, tc := range map[string]struct {
		c           cases.Case
		phone, belt string
		ok          bool
	}{
		"fine created, both confirmed":      {cases.Case{State: cases.FineCreated, Offences: []string{"phone", "seatbelt"}}, PhoneYes, BeltNotWorn, true},
		"platform rejected still confirmed": {cases.Case{State: cases.PlatformRejected, Offences: []string{"phone"}}, PhoneYes, LabelUnsure, true},
		"sent":                              {cases.Case{State: cases.Sent, Offences: []string{"seatbelt"}}, LabelUnsure, BeltNotWorn, true},
		"not a phone":                       {cases.Case{State: cases.Rejected, Reason: "not_phone"}, PhoneNo, LabelUnsure, true},
		"belt visible":                      {cases.Case{State: cases.Rejected, Reason: "belt_visible"}, LabelUnsure, BeltWorn, true},
		"not the driver":                    {cases.Case{State: cases.Rejected, Reason: "not_driver"}, LabelUnsure, LabelUnsure, true},
		"disputed is not decided":           {cases.Case{State: cases.Disputed}, LabelUnsure, LabelUnsure, false},
		"first confirmed is not decided":    {cases.Case{State: cases.FirstConfirmed, Offences: []string{"phone"}}, LabelUnsure, LabelUnsure, false},
	} {
		t.Run(name, func(t *testing.T) {
			p, b, ok := Labels(&tc.c)
			assert.Equal(t, tc.phone, p)
			assert.Equal(t, tc.belt, b)
			assert.Equal(t, tc.ok, ok)
		})
	}
}
