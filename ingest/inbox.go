package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
)

// The drop folder: <inbox>/<camera>/<file> (or <inbox>/<file> for inbox.default_camera).
// A file is taken once it is completely written, judged by its size and modification time
// staying the same across scans at least inbox.settle apart (writers that copy in place, in
// chunks, over seconds); writers that can should write to a hidden name or a .part/.tmp name
// and rename, which is always safe. The file is stored in the frames bucket under a key that
// includes its content hash (so a crash between store and removal re-stores the same object
// version, which dedup then recognises), processed like any upload, and removed only once
// it is a Frame or in quarantine.

type fileState struct {
	size     int64
	mtime    time.Time
	observed time.Time // when this size+mtime was first seen
}

type inboxWatcher struct {
	s     *Service
	dir   string
	files map[string]fileState
}

func (s *Service) inboxDir() string {
	d := s.cfg.Inbox.Dir
	if !filepath.IsAbs(d) {
		d = filepath.Join(s.dataDir, d)
	}
	return d
}

func (s *Service) inboxLoop(ctx context.Context) {
	w := &inboxWatcher{s: s, dir: s.inboxDir(), files: map[string]fileState{}}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		s.health.set("inbox", err)
		s.log.Error("inbox folder", "dir", w.dir, "err", err)
	}
	t := time.NewTicker(s.cfg.Inbox.PollInterval)
	defer t.Stop()
	for {
		if err := w.scan(ctx); err != nil && ctx.Err() == nil {
			s.health.set("inbox", err)
			s.log.Warn("inbox scan", "dir", w.dir, "err", err)
		} else {
			s.health.clear("inbox")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ignoredName is a file still being written under a temporary name, or not an image.
func (s *Service) ignoredName(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "~") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(lower, ".part") || strings.HasSuffix(lower, ".tmp") ||
		strings.HasSuffix(lower, ".crdownload") || strings.HasSuffix(lower, ".partial") ||
		(s.cfg.SidecarExt != "" && strings.HasSuffix(name, s.cfg.SidecarExt))
}

type readyFile struct {
	path, camera string
}

func (w *inboxWatcher) scan(ctx context.Context) error {
	now := w.s.now()
	settle := w.s.cfg.Inbox.Settle
	present := map[string]bool{}
	var ready []readyFile
	err := filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			if p != w.dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || w.s.ignoredName(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(w.dir, p)
		if err != nil {
			return nil
		}
		camera := w.s.cfg.Inbox.DefaultCamera
		if i := strings.IndexByte(rel, filepath.Separator); i > 0 {
			camera = rel[:i]
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		present[p] = true
		st, ok := w.files[p]
		if !ok || st.size != fi.Size() || !st.mtime.Equal(fi.ModTime()) {
			w.files[p] = fileState{size: fi.Size(), mtime: fi.ModTime(), observed: now}
			return nil
		}
		if now.Sub(st.observed) >= settle && now.Sub(fi.ModTime()) >= settle {
			ready = append(ready, readyFile{path: p, camera: camera})
		}
		return nil
	})
	for p := range w.files {
		if !present[p] {
			delete(w.files, p)
		}
	}
	if err != nil {
		return fmt.Errorf("scan %s: %w", w.dir, err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done []string
	)
	sem := make(chan struct{}, w.s.cfg.Workers)
	for _, f := range ready {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := w.s.ingestFile(ctx, f.path, f.camera); err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, objstore.ErrInvalid) {
					// The store will never take it: set it aside rather than retry forever.
					err = w.setAside(f.path, err)
				}
				w.s.log.Error("inbox file not ingested", "path", f.path, "err", err)
				return
			}
			mu.Lock()
			done = append(done, f.path)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, p := range done {
		delete(w.files, p)
	}
	return ctx.Err()
}

// failedDir holds dropped files the store refused; hidden, so scans skip it.
const failedDir = ".failed"

func (w *inboxWatcher) setAside(path string, cause error) error {
	dst := filepath.Join(w.dir, failedDir, filepath.Base(path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("%w; set aside: %v", cause, err)
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("%w; set aside: %v", cause, err)
	}
	w.s.metrics.rejected.WithLabelValues(ReasonRefusedByStore).Inc()
	return fmt.Errorf("%w; moved to %s", cause, dst)
}

// inboxKey is where a dropped file is stored: camera, date and the content hash make it
// unique, and the same content dropped twice lands on the same object version.
func inboxKey(camera, name, sum string, at time.Time) string {
	// File names are bytes, keys are UTF-8 of bounded length.
	name = strings.ToValidUTF8(name, "_")
	if len(name) > 200 {
		name = strings.ToValidUTF8(name[len(name)-200:], "_")
	}
	return strings.ToValidUTF8(camera, "_") + "/inbox/" + at.UTC().Format("2006/01/02") + "/" + sum[:16] + "-" + name
}

// ingestFile stores one dropped file (and its sidecar, first) in the frames bucket, processes
// it, and removes it from the folder once it is a Frame or in quarantine.
func (s *Service) ingestFile(ctx context.Context, path, camera string) error {
	sum, size, mtime, err := hashFile(path)
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	key := inboxKey(camera, name, sum, mtime)
	md := map[string]string{"camera": strings.ToValidUTF8(camera, "_"), "source": pipeline.SourceInbox,
		"file-name": strings.ToValidUTF8(name, "_"), metaFileTime: mtime.UTC().Format(time.RFC3339Nano)}
	sidecarPath := ""
	if ext := s.cfg.SidecarExt; ext != "" {
		sp := strings.TrimSuffix(path, filepath.Ext(path)) + ext
		if _, err := os.Stat(sp); err == nil {
			sidecarPath = sp
			if err := s.putFile(ctx, sp, sidecarKey(key, ext), "application/json", nil); err != nil {
				return err
			}
		}
	}
	if err := s.putFile(ctx, path, key, "", md); err != nil {
		return err
	}
	if _, err := s.process(ctx, ObjectRef{Bucket: s.cfg.Bucket, Keys: []string{key}, Source: pipeline.SourceInbox}); err != nil {
		return err
	}
	// A writer that paused longer than inbox.settle and went on writing: what was taken was
	// a part (and is now a Frame or in quarantine); the file stays for its complete version.
	if fi, err := os.Stat(path); err == nil && (fi.Size() != size || !fi.ModTime().Equal(mtime)) {
		s.log.Warn("inbox file changed while it was ingested; keeping it for another pass", "path", path)
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if sidecarPath != "" {
		_ = os.Remove(sidecarPath)
	}
	return nil
}

func hashFile(path string) (sum string, size int64, mtime time.Time, _ error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("stat %s: %w", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", 0, time.Time{}, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), fi.Size(), fi.ModTime(), nil
}

func (s *Service) putFile(ctx context.Context, path, key, contentType string, md map[string]string) error {
	return s.retry(ctx, "inbox_put", func(ctx context.Context) error {
		f, err := os.Open(path)
		if err != nil {
			return permanent(fmt.Errorf("open %s: %w", path, err))
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return permanent(fmt.Errorf("stat %s: %w", path, err))
		}
		ct := contentType
		if ct == "" {
			ct = contentTypeOf(path)
		}
		_, err = s.store.Put(ctx, s.cfg.Bucket, key, f, fi.Size(), objstore.PutOptions{ContentType: ct, Metadata: md})
		return err
	})
}

func contentTypeOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}
