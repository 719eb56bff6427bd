package natsx_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProvisionCreatesTheWholeWire(t *testing.T) {
	s := natstest.Start(t, nil)
	ctx := context.Background()
	for _, sc := range natsx.StreamConfigs(natsx.DefaultLimits()) {
		st, err := s.JS.Stream(ctx, sc.Name)
		require.NoError(t, err, sc.Name)
		info := st.CachedInfo()
		assert.Equal(t, sc.Retention, info.Config.Retention, sc.Name)
		assert.Equal(t, sc.Subjects, info.Config.Subjects, sc.Name)
	}
	audit, err := s.JS.Stream(ctx, pipeline.StreamAudit)
	require.NoError(t, err)
	assert.True(t, audit.CachedInfo().Config.DenyDelete)
	assert.True(t, audit.CachedInfo().Config.DenyPurge)
	for _, b := range []string{pipeline.KVCases, pipeline.KVSeen} {
		_, err := s.JS.KeyValue(ctx, b)
		require.NoError(t, err, b)
	}
}

func TestProvisionIsIdempotentUpdatesConfigAndKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := natstest.StartIn(t, dir, nil)
	ctx := context.Background()
	_, err := s.JS.Publish(ctx, pipeline.DetectionSubject("cam1"), []byte(`{"v":1}`), jetstream.WithMsgID("p1"))
	require.NoError(t, err)
	kv, err := s.JS.KeyValue(ctx, pipeline.KVCases)
	require.NoError(t, err)
	_, err = kv.Create(ctx, "case1", []byte(`{}`))
	require.NoError(t, err)

	l := natsx.DefaultLimits()
	l.DetectionsAge = 48 * time.Hour
	l.DetectionsDedup = time.Hour
	l.FramesMaxMsgs = 10
	require.NoError(t, natsx.Provision(ctx, s.JS, l))
	require.NoError(t, natsx.Provision(ctx, s.JS, l), "second run must be a no-op")

	st, err := s.JS.Stream(ctx, pipeline.StreamDetections)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, 48*time.Hour, info.Config.MaxAge)
	assert.EqualValues(t, 1, info.State.Msgs, "re-provisioning must keep messages")
	fr, err := s.JS.Stream(ctx, pipeline.StreamFrames)
	require.NoError(t, err)
	assert.EqualValues(t, 10, fr.CachedInfo().Config.MaxMsgs)
	e, err := kv.Get(ctx, "case1")
	require.NoError(t, err)
	assert.Equal(t, `{}`, string(e.Value()))
}

func TestEmbeddedServerKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	emb, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, emb.ClientURL(), "t")
	require.NoError(t, err)
	require.NoError(t, natsx.Ready(nc))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, natsx.Provision(ctx, js, natsx.DefaultLimits()))
	_, err = js.Publish(ctx, pipeline.FrameSubject("c"), []byte(`{"v":1}`), jetstream.WithMsgID("a"))
	require.NoError(t, err)
	nc.Close()
	assert.Error(t, natsx.Ready(nc))
	emb.Shutdown()

	emb2, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir})
	require.NoError(t, err)
	defer emb2.Shutdown()
	nc2, err := natsx.Connect(ctx, emb2.ClientURL(), "t2")
	require.NoError(t, err)
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	require.NoError(t, err)
	st, err := js2.Stream(ctx, pipeline.StreamFrames)
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.CachedInfo().State.Msgs)
	// The dedup window survives the restart too: the same id is not stored twice.
	ack, err := js2.Publish(ctx, pipeline.FrameSubject("c"), []byte(`{"v":1}`), jetstream.WithMsgID("a"))
	require.NoError(t, err)
	assert.True(t, ack.Duplicate)
}

func TestConnectGivesUpWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := natsx.Connect(ctx, "nats://127.0.0.1:1", "t")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestLimitsValidateNamesTheField(t *testing.T) {
	l := natsx.DefaultLimits()
	require.NoError(t, l.Validate())
	l.SeenTTL = time.Second
	assert.ErrorContains(t, l.Validate(), "nats.seen_ttl")
	l = natsx.DefaultLimits()
	l.Replicas = 0
	assert.ErrorContains(t, l.Validate(), "nats.replicas")
}

// One data directory, one embedded server: a second start is refused naming the first, which
// Running finds; after a shutdown (or with a marker a killed process left) the directory is
// free again.
func TestEmbeddedServerOwnsItsDirectory(t *testing.T) {
	dir := t.TempDir()
	_, _, ok := natsx.Running(dir)
	assert.False(t, ok, "nothing runs on a new directory")
	emb, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir})
	require.NoError(t, err)
	url, pid, ok := natsx.Running(dir)
	require.True(t, ok)
	assert.Equal(t, emb.ClientURL(), url)
	assert.Equal(t, os.Getpid(), pid)

	_, err = natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir})
	require.ErrorIs(t, err, natsx.ErrInUse)
	assert.Contains(t, err.Error(), url)

	emb.Shutdown()
	_, _, ok = natsx.Running(dir)
	assert.False(t, ok)
	_, err = os.Stat(filepath.Join(dir, "running.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the marker goes with the server")

	// A killed process leaves its marker: a URL that no longer answers is not a running server.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "running.json"),
		[]byte(`{"url":"nats://127.0.0.1:1","server_id":"NGONE","pid":1}`), 0o600))
	_, _, ok = natsx.Running(dir)
	assert.False(t, ok)
	emb2, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir})
	require.NoError(t, err)
	defer emb2.Shutdown()
	url2, _, ok := natsx.Running(dir)
	require.True(t, ok, "the new server replaced the stale marker")
	assert.Equal(t, emb2.ClientURL(), url2)

	// A marker naming a live server of another directory is not this directory's server.
	other, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	defer other.Shutdown()
	stale := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(stale, "running.json"),
		[]byte(`{"url":"`+other.ClientURL()+`","server_id":"NOTTHATONE","pid":1}`), 0o600))
	_, _, ok = natsx.Running(stale)
	assert.False(t, ok)
}
