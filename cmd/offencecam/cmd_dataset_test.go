package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/dataset"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
)

// `dataset export` against an external NATS and the data directory's local object store: a
// rejected case (not_phone) becomes one phone-no row, the summary goes to stderr, and the
// export is in AUDIT under the --by name.
func TestDatasetExportCommand(t *testing.T) {
	src := testenv.SharedPath(t, "data", "roadside-train")
	ns := natstest.Start(t, nil)
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := objstore.NewLocal(filepath.Join(data, "objects"))
	require.NoError(t, err)
	require.NoError(t, st.EnsureBucket(ctx, pipeline.BucketEvidence))
	img, err := os.ReadFile(filepath.Join(src, "images", "1_BUS_15-02-28-123.jpg"))
	require.NoError(t, err)
	sum := sha256.Sum256(img)
	key := "2026/11/27/pass-1/original-front.jpg"
	_, err = st.Put(ctx, pipeline.BucketEvidence, key, bytes.NewReader(img), int64(len(img)), objstore.PutOptions{ContentType: "image/jpeg"})
	require.NoError(t, err)

	cs, err := cases.Open(ctx, ns.JS, cases.Config{LeaseDuration: time.Minute, ReasonCodes: []string{"not_phone"}})
	require.NoError(t, err)
	at := time.Now().UTC().Add(-time.Hour)
	_, err = cs.CreateFromDetection(ctx, pipeline.Detection{V: pipeline.Version, PassageID: "pass-1", Camera: "cam-1",
		CapturedAt: at, DetectedAt: at, Flagged: true,
		Vehicles: []pipeline.Vehicle{{Class: "car", View: pipeline.ViewFront, Box: pipeline.Box{W: 640, H: 640},
			Driver: &pipeline.Box{X: 385, Y: 173, W: 255, H: 249}, Phone: pipeline.Finding{State: pipeline.PhoneHeld, Score: .9}}},
		Offences: []pipeline.Offence{{Kind: pipeline.OffencePhone, Score: .9}},
		Evidence: []pipeline.Evidence{{Kind: pipeline.EvidenceOriginal, Bucket: pipeline.BucketEvidence, Key: key,
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(img)), View: pipeline.ViewFront}}})
	require.NoError(t, err)
	rev := cases.Actor{Name: "alice", Roles: []string{cases.RoleReviewer}}
	_, err = cs.Lease(ctx, "pass-1", rev)
	require.NoError(t, err)
	_, err = cs.Decide(ctx, "pass-1", rev, cases.Input{Outcome: pipeline.OutcomeReject, Reason: "not_phone"})
	require.NoError(t, err)

	out := filepath.Join(t.TempDir(), "set")
	cmd := offencecam(t, nil, "dataset", "export", "--nats-url", ns.ClientURL(), "--data", data,
		"--out", out, "--since", "720h", "--by", "cli:tester")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Contains(t, stderr.String(), "exported 1 cases to "+out)

	labels, err := os.ReadFile(filepath.Join(out, "labels.tsv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(labels)), "\n")
	require.Len(t, lines, 2, "%s", labels)
	assert.Regexp(t, `^pass-1_\d\d-\d\d-\d\d-\d{3}\tno\tunsure\t385,173,640,422\tcase pass-1; rejected; first:reject\(not_phone\)$`, lines[1])
	stem := strings.SplitN(lines[1], "\t", 2)[0]
	got, err := os.ReadFile(filepath.Join(out, "images", stem+".jpg"))
	require.NoError(t, err)
	assert.Equal(t, img, got)

	recs, err := audit.Read(ctx, ns.JS, audit.Query{Subjects: []string{"audit." + dataset.EntityDataset + ".>"}})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "cli:tester", recs[0].Event.Actor)
	assert.Equal(t, "1", recs[0].Event.Details["count"])
	assert.Equal(t, out, recs[0].Event.Details["out"])
}

func TestDatasetUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no subcommand":      {"dataset"},
		"unknown subcommand": {"dataset", "import"},
		"no --out":           {"dataset", "export"},
		"bad --since":        {"dataset", "export", "--out", t.TempDir(), "--since", "last week"},
	} {
		t.Run(name, func(t *testing.T) {
			out, code := runCLI(t, args...)
			assert.Equal(t, 2, code, out)
		})
	}
}
