package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// FileState is what Verify found for one file.
type FileState string

const (
	StateOK      FileState = "ok"      // present with the manifest's sha256
	StateMissing FileState = "missing" // not in the cache
	StateCorrupt FileState = "corrupt" // present with another sha256 (or unreadable)
)

// FileStatus is one file's verification result.
type FileStatus struct {
	Manifest string
	File     File
	Path     string
	State    FileState
	// Detail says what was wrong (the sha256 found, or the read error); empty when ok.
	Detail string
}

// Verify re-hashes every cached file of the named manifests (no names: DefaultNames). The
// error is only for unknown names; what was found is in the statuses, in manifest order.
func Verify(cat Catalog, names []string, cacheDir string) ([]FileStatus, error) {
	mans, err := cat.Select(names)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	cache := Cache{Dir: cacheDir}
	var out []FileStatus
	for _, m := range mans {
		for _, f := range m.Files {
			st := FileStatus{Manifest: m.Name, File: f, Path: cache.Path(f), State: StateOK}
			got, err := hashFile(st.Path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				st.State, st.Detail = StateMissing, "not in the cache"
			case err != nil:
				st.State, st.Detail = StateCorrupt, err.Error()
			case got != f.SHA256:
				st.State, st.Detail = StateCorrupt, fmt.Sprintf("sha256 %s, want %s", got, f.SHA256)
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// AllOK reports whether every status is ok.
func AllOK(statuses []FileStatus) bool {
	for _, s := range statuses {
		if s.State != StateOK {
			return false
		}
	}
	return true
}

// Cached reports, cheaply (by existence and size, without hashing), whether every file of a
// manifest is in the cache: for listings. Verify is the real check.
func Cached(m *Manifest, cacheDir string) (present, total int) {
	cache := Cache{Dir: cacheDir}
	for _, f := range m.Files {
		total++
		fi, err := os.Stat(cache.Path(f))
		if err == nil && fi.Mode().IsRegular() && (f.Size == 0 || fi.Size() == f.Size) {
			present++
		}
	}
	return present, total
}
