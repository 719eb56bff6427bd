package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricSum adds every sample of a metric family (all label sets), optionally only those
// whose labels contain match.
func metricSum(text, name, match string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if match != "" && !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

var natsURLLine = regexp.MustCompile(`"msg":"embedded NATS started".*?"url":"([^"]+)"`)

// The one-box promise, black-box: `serve` on an empty data dir, 20 real images and one
// corrupt file dropped into the inbox → 20 frames ingested, 1 rejected, 20 detector results;
// flagged ones are on DETECTIONS, clean ones are gone from the object store.
func TestServeOneBoxInboxToDetections(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	imgDir := testenv.SharedPath(t, "data", "seatbelt-phone", "images")
	entries, err := os.ReadDir(imgDir)
	require.NoError(t, err)
	var images []string
	for _, e := range entries {
		if strings.HasSuffix(strings.ToLower(e.Name()), ".jpg") {
			images = append(images, e.Name())
		}
	}
	sort.Strings(images)
	require.GreaterOrEqual(t, len(images), 20)
	images = images[len(images)-20:] // the last 20 by name hold passages the low threshold flags

	data := t.TempDir()
	// The reference pack's phone detector (COCO "cell phone") almost never fires on roadside
	// frames at the default threshold; a low one makes some passages flagged, so the flagged
	// path (evidence, DETECTIONS) is exercised too.
	cfgFile := filepath.Join(t.TempDir(), "offencecam.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("detector:\n  thresholds:\n    phone: 0.02\n    offence:\n      phone: 0.02\n"), 0o600))
	cmd, addr := startServe(t, []string{"OFFENCECAM_MODELS_CACHE=" + testenv.ModelCache()}, "--data", data, "--config", cfgFile)
	stderr := cmd.Stderr.(*syncBuffer)

	inbox := filepath.Join(data, "inbox")
	for _, name := range images {
		b, err := os.ReadFile(filepath.Join(imgDir, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(inbox, name), b, 0o644))
	}
	good, err := os.ReadFile(filepath.Join(imgDir, images[0]))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "corrupt.jpg"), good[:len(good)/3], 0o644))

	var metrics string
	// A bound for a hang, not a speed target: 20 real images through every model on the CPU
	// of a loaded 2-core CI machine (the loop ends as soon as the counts are reached).
	const within = 3 * time.Minute
	start := time.Now()
	deadline := start.Add(within)
	for {
		_, metrics = httpGet(t, "http://"+addr+"/metrics")
		ingested := metricSum(metrics, "offencecam_ingest_frames_total", "")
		rejected := metricSum(metrics, "offencecam_ingest_rejected_total", "")
		results := metricSum(metrics, "offencecam_detector_frames_total", `result="flagged"`) +
			metricSum(metrics, "offencecam_detector_frames_total", `result="clean"`)
		if ingested == 20 && rejected == 1 && results == 20 {
			t.Logf("20 frames through the pipeline in %v", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v ingested, %v rejected, %v detector results (want 20, 1, 20)", within, ingested, rejected, results)
		}
		time.Sleep(200 * time.Millisecond) // polling an external process's metrics
	}
	assert.Equal(t, 1.0, metricSum(metrics, "offencecam_ingest_rejected_total", `reason="truncated"`), "the corrupt file is rejected as truncated")
	assert.Zero(t, metricSum(metrics, "offencecam_detector_frames_total", `result="failed"`))
	flagged := metricSum(metrics, "offencecam_detector_frames_total", `result="flagged"`)

	// Flagged passages are on DETECTIONS (cases to be), one per passage.
	m := natsURLLine.FindStringSubmatch(stderr.String())
	require.NotNil(t, m, "embedded NATS URL in the log")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, m[1], "onebox-test")
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctx, pipeline.StreamDetections)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, flagged, info.State.Msgs, "one Detection per flagged passage")
	require.Positive(t, flagged, "the low threshold flags some passages")
	msg, err := st.GetMsg(ctx, info.State.FirstSeq)
	require.NoError(t, err)
	var d pipeline.Detection
	require.NoError(t, json.Unmarshal(msg.Data, &d))
	assert.True(t, d.Flagged)
	assert.NotEmpty(t, d.Evidence)

	// Clean frames are gone from the object store; rejected input is in quarantine.
	store, err := objstore.NewLocal(filepath.Join(data, "objects"))
	require.NoError(t, err)
	page, err := store.List(ctx, pipeline.BucketFrames, "", objstore.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, page.Objects, "no frame is left behind in %s", pipeline.BucketFrames)
	ev, err := store.List(ctx, pipeline.BucketEvidence, "", objstore.ListOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, ev.Objects, "flagged passages keep their evidence")
	q, err := store.List(ctx, pipeline.BucketQuarantine, "", objstore.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, q.Objects, 1)
	left, err := os.ReadDir(inbox)
	require.NoError(t, err)
	assert.Empty(t, left, "the inbox is emptied")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}
