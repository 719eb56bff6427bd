package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// FetchOptions says where files go and where they may come from.
type FetchOptions struct {
	// CacheDir receives the files (created when missing). Empty means DefaultCacheDir.
	CacheDir string
	// MirrorDir is a directory of model files tried before every other source; empty means
	// no mirror (DefaultFetchOptions reads OFFENCECAM_MODEL_MIRROR).
	MirrorDir string
	// NPM is the npm executable for npm sources; empty means "npm" on PATH.
	NPM string
	// HTTPClient fetches url sources; nil means a client with a response-header timeout.
	HTTPClient *http.Client
	// Progress receives one human-readable line per step of a fetch; nil means silent.
	Progress io.Writer
	// Logger receives structured records of the same steps; nil means none.
	Logger *slog.Logger
}

// DefaultFetchOptions is what `offencecam models fetch` starts from: cache ./var/models, the
// mirror from OFFENCECAM_MODEL_MIRROR, npm from OFFENCECAM_NPM or PATH, progress on stderr.
func DefaultFetchOptions() FetchOptions {
	return FetchOptions{
		CacheDir:  DefaultCacheDir,
		MirrorDir: os.Getenv(MirrorEnv),
		NPM:       os.Getenv(NPMEnv),
		Progress:  os.Stderr,
	}
}

// Attempt is one source tried for a file and why it did not give the file.
type Attempt struct {
	Source string
	Err    error
}

// FetchError says that no source gave a file, listing every source tried and its reason.
type FetchError struct {
	Manifest string
	File     string
	Attempts []Attempt
}

func (e *FetchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "models: %s/%s: no source gave the file (%d tried):", e.Manifest, e.File, len(e.Attempts))
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  - %s: %v", a.Source, a.Err)
	}
	return b.String()
}

// Unwrap exposes every attempt's error, so errors.Is(err, ErrChecksum) works.
func (e *FetchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

// errNoMirror is why a mirror source was not tried.
var errNoMirror = errors.New("skipped: no mirror directory configured (--mirror or " + MirrorEnv + ")")

// maxUnsized bounds a download whose manifest gives no size, so that a wrong URL cannot fill
// the disk.
const maxUnsized = 4 << 30

// Fetch makes every file of the named manifests (no names: DefaultNames) present in the cache
// with its manifest's sha256. A file already cached with the right hash is left alone. For the
// others, sources are tried in order (the mirror directory first, then the manifest's npm and
// url sources) until one gives bytes with the right hash; nothing else ever enters the cache.
// Files are written to a temporary file in the cache directory, synced and renamed, so that
// concurrent fetches, even from several processes, never expose a partial file. Every file is
// attempted; the error joins one FetchError per file that no source could give.
func Fetch(ctx context.Context, cat Catalog, names []string, opts FetchOptions) error {
	mans, err := cat.Select(names)
	if err != nil {
		return err
	}
	f, err := newFetcher(opts)
	if err != nil {
		return err
	}
	defer f.close()
	var errs []error
	for _, m := range mans {
		for _, file := range m.Files {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("models: fetch: %w", err)
			}
			if err := f.fetchFile(ctx, m, file); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type npmTarball struct {
	path string
	err  error
}

// fetcher holds one Fetch call's state: the npm tarballs packed so far, so that several
// files from one package cost one `npm pack`.
type fetcher struct {
	opts    FetchOptions
	cache   Cache
	client  *http.Client
	log     *slog.Logger
	workDir string
	npm     map[string]npmTarball
}

func newFetcher(opts FetchOptions) (*fetcher, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir
	}
	if opts.NPM == "" {
		opts.NPM = "npm"
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("models: cache directory: %w", err)
	}
	client := opts.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = time.Minute
		client = &http.Client{Transport: tr}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &fetcher{
		opts:   opts,
		cache:  Cache{Dir: opts.CacheDir},
		client: client,
		log:    log,
		npm:    map[string]npmTarball{},
	}, nil
}

func (f *fetcher) close() {
	if f.workDir != "" {
		os.RemoveAll(f.workDir)
	}
}

func (f *fetcher) progress(format string, args ...any) {
	if f.opts.Progress != nil {
		fmt.Fprintf(f.opts.Progress, "models: "+format+"\n", args...)
	}
}

// candidate is one source as this fetch will try it.
type candidate struct {
	src  Source
	desc string
	skip error // set when the source is not tried at all
}

// candidates orders a file's sources: mirror directory first (under each mirror name, or the
// file's own name when the manifest gives none), then npm and url sources as listed.
func (f *fetcher) candidates(file File) []candidate {
	var mirrors, others []candidate
	for _, s := range file.Sources {
		if s.Mirror == "" {
			others = append(others, candidate{src: s, desc: s.String()})
			continue
		}
		if f.opts.MirrorDir == "" {
			mirrors = append(mirrors, candidate{src: s, desc: s.String(), skip: errNoMirror})
			continue
		}
		mirrors = append(mirrors, candidate{src: s, desc: "mirror " + filepath.Join(f.opts.MirrorDir, s.Mirror)})
	}
	if len(mirrors) == 0 && f.opts.MirrorDir != "" {
		s := Source{Mirror: file.Name}
		mirrors = append(mirrors, candidate{src: s, desc: "mirror " + filepath.Join(f.opts.MirrorDir, file.Name)})
	}
	return append(mirrors, others...)
}

func (f *fetcher) fetchFile(ctx context.Context, m *Manifest, file File) error {
	dest := f.cache.Path(file)
	if err := f.cache.Check(file); err == nil {
		f.log.Debug("model file cached", "manifest", m.Name, "file", file.Name)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		f.progress("%s: cached copy is bad (%v); fetching again", file.Name, err)
	}
	f.removeStaleTemps(file)
	ferr := &FetchError{Manifest: m.Name, File: file.Name}
	for _, c := range f.candidates(file) {
		if c.skip != nil {
			ferr.Attempts = append(ferr.Attempts, Attempt{Source: c.desc, Err: c.skip})
			continue
		}
		start := time.Now()
		f.progress("%s: fetching from %s", file.Name, c.desc)
		err := f.try(ctx, file, c.src)
		if err == nil {
			f.progress("%s: ok, sha256 verified (%s in %s)", file.Name, sizeString(file.Size), time.Since(start).Round(time.Millisecond))
			f.log.Info("model file fetched", "manifest", m.Name, "file", file.Name, "source", c.desc, "path", dest)
			return nil
		}
		f.progress("%s: %s failed: %v", file.Name, c.desc, err)
		f.log.Warn("model source failed", "manifest", m.Name, "file", file.Name, "source", c.desc, "err", err)
		ferr.Attempts = append(ferr.Attempts, Attempt{Source: c.desc, Err: err})
		if ctx.Err() != nil {
			break
		}
	}
	return ferr
}

func (f *fetcher) try(ctx context.Context, file File, s Source) error {
	switch s.Kind() {
	case "mirror":
		src, err := os.Open(filepath.Join(f.opts.MirrorDir, s.Mirror))
		if err != nil {
			return err
		}
		defer src.Close()
		return f.install(ctx, file, src)
	case "embedded":
		src, err := weights.Open("weights/" + s.Embedded)
		if err != nil {
			return err
		}
		defer src.Close()
		return f.install(ctx, file, src)
	case "npm":
		tgz, err := f.npmPack(ctx, s.NPM)
		if err != nil {
			return err
		}
		src, err := os.Open(tgz)
		if err != nil {
			return err
		}
		defer src.Close()
		return f.installMember(ctx, file, src, s.NPM.Path)
	default:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
		if err != nil {
			return err
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		body := io.Reader(resp.Body)
		if resp.ContentLength > 0 {
			f.progress("%s: downloading %s", file.Name, sizeString(resp.ContentLength))
		}
		if s.Path != "" {
			return f.installMember(ctx, file, body, s.Path)
		}
		return f.install(ctx, file, body)
	}
}

// installMember extracts one regular file from a gzip-compressed tarball.
func (f *fetcher) installMember(ctx context.Context, file File, tgz io.Reader, member string) error {
	zr, err := gzip.NewReader(tgz)
	if err != nil {
		return fmt.Errorf("not a gzip archive: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("archive has no %s", member)
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != member {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("archive member %s is not a regular file", member)
		}
		if file.Size > 0 && hdr.Size != file.Size {
			return fmt.Errorf("archive member %s: %w: size %d, want %d", member, ErrChecksum, hdr.Size, file.Size)
		}
		return f.install(ctx, file, tr)
	}
}

// install copies r into the cache as file, hashing on the way; the file appears under its
// final name only complete and verified.
func (f *fetcher) install(ctx context.Context, file File, r io.Reader) (err error) {
	limit := int64(maxUnsized)
	if file.Size > 0 {
		limit = file.Size
	}
	tmp, err := os.CreateTemp(f.cache.Dir, "."+file.Name+".*.part")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	w := io.MultiWriter(tmp, h, &progressCounter{f: f, name: file.Name})
	// One byte past the limit tells a too-long source from an exact one.
	n, err := io.Copy(w, io.LimitReader(ctxReader{ctx, r}, limit+1))
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if n > limit || (file.Size > 0 && n != file.Size) {
		return fmt.Errorf("%w: size %d, want %d", ErrChecksum, n, file.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != file.SHA256 {
		return fmt.Errorf("%w: got %s, want %s", ErrChecksum, got, file.SHA256)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cache: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.cache.Path(file)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(f.cache.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// staleAfter is how long a temporary file may go unwritten before a fetch takes it for the
// leftover of a killed process. A live fetch writes continuously, so its file stays fresh; were
// one removed anyway, that fetch's rename would fail and nothing partial would be exposed.
const staleAfter = time.Hour

func (f *fetcher) removeStaleTemps(file File) {
	parts, _ := filepath.Glob(filepath.Join(f.cache.Dir, "."+file.Name+".*.part"))
	for _, p := range parts {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > staleAfter {
			if os.Remove(p) == nil {
				f.log.Info("removed stale temporary file", "path", p)
			}
		}
	}
}

// npmPack runs `npm pack NAME@VERSION` once per package and fetch, without install scripts,
// in a private directory, and returns the tarball's path.
func (f *fetcher) npmPack(ctx context.Context, src *NPMSource) (string, error) {
	spec := src.Package + "@" + src.Version
	if t, ok := f.npm[spec]; ok {
		return t.path, t.err
	}
	path, err := f.runNPMPack(ctx, spec)
	if ctx.Err() == nil {
		// A cancelled pack is not remembered: it says nothing about the package.
		f.npm[spec] = npmTarball{path, err}
	}
	return path, err
}

func (f *fetcher) runNPMPack(ctx context.Context, spec string) (string, error) {
	if f.workDir == "" {
		d, err := os.MkdirTemp("", "offencecam-npm-*")
		if err != nil {
			return "", fmt.Errorf("npm pack %s: %w", spec, err)
		}
		f.workDir = d
	}
	dir, err := os.MkdirTemp(f.workDir, "pack-*")
	if err != nil {
		return "", fmt.Errorf("npm pack %s: %w", spec, err)
	}
	f.progress("npm pack %s (downloads the whole package; can take a while)", spec)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, f.opts.NPM, "pack", "--ignore-scripts", spec)
	cmd.Dir = dir
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm pack %s: %w: %s", spec, err, lastLines(stderr.String(), 3))
	}
	tgzs, _ := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if len(tgzs) != 1 {
		return "", fmt.Errorf("npm pack %s: want one tarball, got %d", spec, len(tgzs))
	}
	return tgzs[0], nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// progressCounter prints a line every progressStep bytes of one copy.
type progressCounter struct {
	f    *fetcher
	name string
	n    int64
}

const progressStep = 64 << 20

func (p *progressCounter) Write(b []byte) (int, error) {
	before := p.n / progressStep
	p.n += int64(len(b))
	if p.n/progressStep > before {
		p.f.progress("%s: %s so far", p.name, sizeString(p.n))
	}
	return len(b), nil
}

func sizeString(n int64) string {
	switch {
	case n <= 0:
		return "size unknown"
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
