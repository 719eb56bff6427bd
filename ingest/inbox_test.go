package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 100 files arrive in the drop folder: most copied in one go, some written slowly in chunks
// in place, some written under a .part name and renamed, across camera sub-folders and the
// folder itself. Exactly 100 Frames come out, each of the complete file, and the folder empties.
func TestDropFolderIngestsCompleteFilesOnly(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	cfg := testConfig("")
	cfg.Inbox.Enabled = true
	cfg.Inbox.PollInterval = 40 * time.Millisecond
	cfg.Inbox.Settle = 750 * time.Millisecond
	data := t.TempDir()
	svc, _, _ := startService(t, ns, st, cfg, data)
	inbox := filepath.Join(data, "inbox")
	require.DirExists(t, inbox, "Run creates the inbox")

	img := testJPEG(t)
	big := encodeJPEG(400, 300) // several chunks
	const n = 100
	var wg sync.WaitGroup
	sizes := map[string]int{}
	for i := range n {
		dir := inbox
		camera := LocalCamera
		if i%2 == 1 {
			camera = "cam1"
			dir = filepath.Join(inbox, camera)
		}
		require.NoError(t, os.MkdirAll(dir, 0o750))
		name := fmt.Sprintf("shot %03d.jpg", i)
		path := filepath.Join(dir, name)
		switch {
		case i%10 < 7: // copied in at once
			require.NoError(t, os.WriteFile(path, img, 0o640))
			sizes[camera+"/"+name] = len(img)
		case i%10 < 9: // written slowly, in place
			sizes[camera+"/"+name] = len(big)
			wg.Go(func() { slowWrite(t, path, big, 8, 25*time.Millisecond) })
		default: // temp name, then rename
			sizes[camera+"/"+name] = len(big)
			wg.Go(func() {
				slowWrite(t, path+".part", big, 4, 25*time.Millisecond)
				if err := os.Rename(path+".part", path); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	waitFor(t, 60*time.Second, "100 frames", func() bool { return streamMsgs(t, ns.JS) >= n })
	waitFor(t, 10*time.Second, "the inbox to empty", func() bool {
		left := 0
		_ = filepath.WalkDir(inbox, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left++
			}
			return nil
		})
		return left == 0
	})
	frames := allFrames(t, ns.JS)
	require.Len(t, frames, n)
	assert.Zero(t, counter(svc.metrics.rejected), "no partial file was read")
	for _, f := range frames {
		assert.Equal(t, pipeline.SourceInbox, f.Source)
		assert.JSONEq(t, `"file_time"`, string(f.Extra["captured_at_source"]), "a dropped file's capture time is its modification time")
		info, err := st.Stat(context.Background(), f.Bucket, f.Key)
		require.NoError(t, err, "the frame's object is in the store")
		name := info.Metadata["file-name"]
		want, ok := sizes[f.Camera+"/"+name]
		require.True(t, ok, "frame %s: camera %s file %q", f.Key, f.Camera, name)
		assert.Equal(t, int64(want), f.Size, "complete file stored for %s", name)
		assert.Equal(t, int64(want), info.Size)
	}
	page, err := st.List(context.Background(), pipeline.BucketQuarantine, "", objstoreListAll())
	require.NoError(t, err)
	assert.Empty(t, page.Objects)
}

func objstoreListAll() objstore.ListOptions { return objstore.ListOptions{Limit: 1000} }

// slowWrite writes data in chunks with pauses, like a camera pushing over a slow link. The
// pauses are the stimulus, shorter than inbox.settle, not a synchronisation.
func slowWrite(t testing.TB, path string, data []byte, chunks int, pause time.Duration) {
	f, err := os.Create(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	step := (len(data) + chunks - 1) / chunks
	for off := 0; off < len(data); off += step {
		end := min(off+step, len(data))
		if _, err := f.Write(data[off:end]); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(pause)
	}
}

func TestDropFolderUnknownCameraIsQuarantinedAndRemoved(t *testing.T) {
	ns := natstest.Start(t, nil)
	st := newLocalStore(t)
	cfg := testConfig("")
	cfg.Inbox.Enabled = true
	cfg.Inbox.PollInterval = 20 * time.Millisecond
	cfg.Inbox.Settle = 50 * time.Millisecond
	data := t.TempDir()
	svc, _, _ := startService(t, ns, st, cfg, data)
	dir := filepath.Join(data, "inbox", "ghost")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.jpg"), testJPEG(t), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(data, "inbox", ".hidden.jpg"), []byte("x"), 0o640))
	// A name that is not UTF-8 (Linux allows any bytes) still becomes a valid key.
	require.NoError(t, os.WriteFile(filepath.Join(data, "inbox", "cam\xff\xfe 1.jpg"), testJPEG(t), 0o640))
	waitFor(t, 10*time.Second, "the oddly named file's frame", func() bool { return streamMsgs(t, ns.JS) == 1 })
	f := allFrames(t, ns.JS)[0]
	assert.Equal(t, LocalCamera, f.Camera)
	assert.True(t, strings.HasSuffix(f.Key, "-cam_ 1.jpg"), f.Key)
	waitFor(t, 10*time.Second, "the file to be quarantined", func() bool {
		return counter(svc.metrics.rejected.WithLabelValues(ReasonUnknownCamera)) == 1
	})
	waitFor(t, 5*time.Second, "the file to leave the inbox", func() bool {
		_, err := os.Stat(filepath.Join(dir, "a.jpg"))
		return os.IsNotExist(err)
	})
	_, err := os.Stat(filepath.Join(data, "inbox", ".hidden.jpg"))
	assert.NoError(t, err, "hidden files are not taken")
	assert.Equal(t, uint64(1), streamMsgs(t, ns.JS))
}
