package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func newLocal(t testing.TB) (*Local, string) {
	t.Helper()
	s, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background(), "bkt"); err != nil {
		t.Fatal(err)
	}
	return s, "bkt"
}

func mustPut(t testing.TB, s Store, b, k, v string) ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), b, k, strings.NewReader(v), int64(len(v)), PutOptions{})
	if err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
	return info
}

func mustGet(t testing.TB, s Store, b, k string) string {
	t.Helper()
	rc, _, err := s.Get(context.Background(), b, k)
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	defer rc.Close()
	v, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func listKeys(t testing.TB, s Store, b, prefix string, limit int) []string {
	t.Helper()
	var keys []string
	after := ""
	for {
		p, err := s.List(context.Background(), b, prefix, ListOptions{StartAfter: after, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Objects {
			keys = append(keys, o.Key)
		}
		if !p.Truncated {
			return keys
		}
		after = p.NextStartAfter
	}
}

// Keys S3 servers on a filesystem cannot hold (an object that is also a prefix, dot and empty
// segments, over-long segments) all work in the local store.
func TestLocalAwkwardKeys(t *testing.T) {
	s, b := newLocal(t)
	long := strings.Repeat("é", 400)                            // 800 bytes, 2400 escaped: hashed
	long2 := strings.Repeat("é", 60) + strings.Repeat("x", 300) // same escaped head as long
	keys := []string{
		"a", "a/b", "a/b/c", "a/b/c/d", "a//b", "/lead", "a/./b", "a/../b", "..", ".", "a/b/..", "...",
		long, long + "/inside", long2, "dir/" + long2 + "/z", "dir/" + long, "a/b.d", "a/b.m", "x.tmp", "x.seg",
		"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/deep.jpg",
	}
	for _, k := range keys {
		mustPut(t, s, b, k, "v:"+k)
	}
	for _, k := range keys {
		if got := mustGet(t, s, b, k); got != "v:"+k {
			t.Errorf("Get(%.40q) = %.40q", k, got)
		}
	}
	want := slices.Clone(keys)
	sort.Strings(want)
	for _, limit := range []int{1, 3, 1000} {
		if got := listKeys(t, s, b, "", limit); !slices.Equal(got, want) {
			t.Errorf("List(limit %d) =\n%q\nwant\n%q", limit, got, want)
		}
	}
	for _, prefix := range []string{"a", "a/", "a/b", "a/b/", "a//", "/", ".", "..", "é", long[:10], "dir/é", "dir/" + long2[:130]} {
		var exp []string
		for _, k := range want {
			if strings.HasPrefix(k, prefix) {
				exp = append(exp, k)
			}
		}
		if got := listKeys(t, s, b, prefix, 2); !slices.Equal(got, exp) {
			t.Errorf("List(%.30q) = %q, want %q", prefix, got, exp)
		}
	}
	// "a" the object and "a/" the prefix are independent.
	if err := s.Delete(context.Background(), b, "a"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, b, "a/b"); got != "v:a/b" {
		t.Errorf("a/b after deleting a: %q", got)
	}
	if _, err := s.Stat(context.Background(), b, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(a) after delete: %v", err)
	}
	if _, err := s.Stat(context.Background(), b, long+"/missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat under a hashed dir: %v", err)
	}
}

// Leftovers of a crash (temp files, a blob whose record was never written) are invisible.
func TestLocalCrashLeftoversInvisible(t *testing.T) {
	s, b := newLocal(t)
	mustPut(t, s, b, "cam/1.jpg", "one")
	dir := filepath.Join(s.Root(), b, "cam"+dirSuffix)
	for name, content := range map[string]string{
		"put-123" + tmpSuffix:                 "half a jpeg",
		"rec-9" + tmpSuffix:                   `{"v":1,"key":"cam/2.jpg"`,
		"2.jpg.0123456789abcdef" + blobSuffix: "blob without record",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "mkdir-1"+tmpSuffix), 0o750); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, s, b, "", 0); !slices.Equal(got, []string{"cam/1.jpg"}) {
		t.Errorf("List with crash leftovers = %q", got)
	}
	if _, err := s.Stat(context.Background(), b, "cam/2.jpg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("object without record visible: %v", err)
	}
	// A blob is only ever reached through a committed record that names it.
	rec, err := readRecord(filepath.Join(dir, "1.jpg"+recSuffix))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(filepath.Join(dir, rec.Blob))
	if err != nil || string(blob) != "one" || rec.Size != 3 {
		t.Errorf("record %+v names blob %q (%v)", rec, blob, err)
	}
}

func TestLocalPersistsAcrossReopen(t *testing.T) {
	root := t.TempDir()
	s1, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s1.EnsureBucket(ctx, "frames"); err != nil {
		t.Fatal(err)
	}
	in, err := s1.Put(ctx, "frames", "k/é", strings.NewReader("data"), -1, PutOptions{ContentType: "image/jpeg", Metadata: map[string]string{"Cam": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s2.Stat(ctx, "frames", "k/é")
	if err != nil || out.ETag != in.ETag || out.ContentType != "image/jpeg" || out.Metadata["cam"] != "7" || !out.LastModified.Equal(in.LastModified) {
		t.Errorf("after reopen: %+v (%v), put %+v", out, err, in)
	}
}

// Concurrent overwrites and reads of one key: every read sees a complete version whose ETag
// matches its bytes, and no blob is left behind.
func TestLocalConcurrentOverwrite(t *testing.T) {
	s, b := newLocal(t)
	ctx := context.Background()
	mustPut(t, s, b, "hot/key", "initial")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				v := fmt.Sprintf("writer %d version %d %s", w, i, strings.Repeat("x", i*100))
				if _, err := s.Put(ctx, b, "hot/key", strings.NewReader(v), int64(len(v)), PutOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				rc, info, err := s.Get(ctx, b, "hot/key")
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(rc)
				rc.Close()
				sum := md5.Sum(body)
				if err != nil || hex.EncodeToString(sum[:]) != info.ETag || int64(len(body)) != info.Size {
					errs <- fmt.Errorf("torn read: %d bytes, info %+v, %v", len(body), info, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), b, "hot"+dirSuffix))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 { // key.m and its one blob
		t.Errorf("after concurrent overwrites the directory holds %q", names)
	}
}

func TestLocalDeletePrunesEmptyDirs(t *testing.T) {
	s, b := newLocal(t)
	mustPut(t, s, b, "x/y/z/1", "1")
	mustPut(t, s, b, "x/keep", "k")
	if err := s.Delete(context.Background(), b, "x/y/z/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), b, "x"+dirSuffix, "y"+dirSuffix)); !os.IsNotExist(err) {
		t.Errorf("empty prefix dirs left behind: %v", err)
	}
	if got := mustGet(t, s, b, "x/keep"); got != "k" {
		t.Errorf("sibling lost: %q", got)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), b)); err != nil {
		t.Errorf("bucket dir removed: %v", err)
	}
}

// A camera's frames arrive while the worker deletes the earlier ones of the same day: every
// Put must survive its parent directories being pruned under it, at any level.
func TestLocalPutSurvivesConcurrentPruning(t *testing.T) {
	s, b := newLocal(t)
	s.noSync = true
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				k := fmt.Sprintf("cam1/2026/11/27/p%d-%d/front.jpg", g, i)
				if _, err := s.Put(ctx, b, k, strings.NewReader("x"), 1, PutOptions{}); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(ctx, b, k); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// populate writes n objects "cam-CC/2026/11/DD/IIII.jpg" (fsync off: setup speed only).
func populate(t testing.TB, s *Local, b string, cams, days, per int) []string {
	t.Helper()
	s.noSync = true
	defer func() { s.noSync = false }()
	var all []string
	for c := 0; c < cams; c++ {
		for d := 0; d < days; d++ {
			for i := 0; i < per; i++ {
				k := fmt.Sprintf("cam-%02d/2026/11/%02d/%04d.jpg", c, d, i)
				all = append(all, k)
				mustPut(t, s, b, k, "")
			}
		}
	}
	sort.Strings(all)
	return all
}

// 10k keys (3k under -race) under deep prefixes: full paging is exact, and a page from the middle of a deep
// prefix is exact.
func TestLocalListManyDeepKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10k objects")
	}
	s, b := newLocal(t)
	cams := 10 // 10k keys
	if raceEnabled {
		cams = 3 // same shape, 3k keys: the race detector makes setup five times slower
	}
	all := populate(t, s, b, cams, 20, 50)
	if got := listKeys(t, s, b, "", 1000); !slices.Equal(got, all) {
		t.Fatalf("full listing differs: %d keys vs %d", len(got), len(all))
	}
	prefix := "cam-02/2026/11/07/"
	var exp []string
	for _, k := range all {
		if strings.HasPrefix(k, prefix) {
			exp = append(exp, k)
		}
	}
	if got := listKeys(t, s, b, prefix, 7); !slices.Equal(got, exp) || len(exp) != 50 {
		t.Errorf("List(%s) = %q", prefix, got)
	}
	p, err := s.List(context.Background(), b, "cam-02/", ListOptions{StartAfter: "cam-02/2026/11/04/0049.jpg", Limit: 2})
	if err != nil || len(p.Objects) != 2 || p.Objects[0].Key != "cam-02/2026/11/05/0000.jpg" || p.Objects[1].Key != "cam-02/2026/11/05/0001.jpg" {
		t.Errorf("page across a subtree boundary: %+v, %v", p.Objects, err)
	}
}

// BenchmarkLocalList10k: one page of 100 from the middle of a 10k-key bucket, by deep prefix
// and by StartAfter over the whole bucket.
func BenchmarkLocalList10k(b *testing.B) {
	s, bkt := newLocal(b)
	populate(b, s, bkt, 10, 20, 50)
	ctx := context.Background()
	for _, c := range []struct {
		name, prefix, after string
	}{
		{"deep-prefix", "cam-05/2026/11/10/", ""},
		{"start-after", "", "cam-05/2026/11/10/0025.jpg"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				p, err := s.List(ctx, bkt, c.prefix, ListOptions{StartAfter: c.after, Limit: 100})
				if err != nil || len(p.Objects) == 0 {
					b.Fatal(len(p.Objects), err)
				}
			}
		})
	}
}

func TestSegmentEncoding(t *testing.T) {
	for _, seg := range []string{"", ".", "..", "a b", "%", "%41", "~", "é", strings.Repeat("%", 100), strings.Repeat("é", 200)} {
		e := encSeg(seg)
		if len(e) > maxEncLen+1 || strings.ContainsAny(e, "/\x00") {
			t.Errorf("encSeg(%.20q) = %q: not a safe name", seg, e)
		}
		if d, ok := decSeg(e); ok && d != seg {
			t.Errorf("decSeg(encSeg(%q)) = %q", seg, d)
		} else if !ok && len(e) <= 100 {
			t.Errorf("short segment %q hashed", seg)
		}
	}
}

// FuzzSegmentEncoding: every segment encodes to a safe file-name stem that decodes back (or is
// hashed, for over-long ones) and never ends like a suffix-bearing name of another kind.
func FuzzSegmentEncoding(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a b+c%20", "日本", strings.Repeat("z", 300), "x.d", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seg string) {
		e := encSeg(seg)
		if len(e) > maxEncLen || strings.ContainsAny(e, "/\x00") || !utf8.ValidString(e) {
			t.Fatalf("encSeg(%q) = %q", seg, e)
		}
		d, ok := decSeg(e)
		if ok && d != seg {
			t.Fatalf("round trip %q -> %q -> %q", seg, e, d)
		}
		if !ok && !strings.Contains(e, "~") {
			t.Fatalf("undecodable stem %q without hash marker", e)
		}
	})
}

// FuzzLocalKey: any key the store accepts round-trips through Put, Get, Stat and List.
func FuzzLocalKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "a//b", "/x", "..", "a/../b", "é ß/日本.jpg", "q?%20+", strings.Repeat("ab/", 50) + "z"} {
		f.Add(k, []byte("v"))
	}
	s, err := NewLocal(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnsureBucket(ctx, "fuzz"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		_, err := s.Put(ctx, "fuzz", key, bytes.NewReader(body), int64(len(body)), PutOptions{})
		if validKey(key) != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("invalid key %q: Put err %v, want ErrInvalid", key, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		rc, info, err := s.Get(ctx, "fuzz", key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body) || info.Key != key {
			t.Fatalf("Get(%q) = %q, key %q", key, got, info.Key)
		}
		p, err := s.List(ctx, "fuzz", key, ListOptions{Limit: 1})
		if err != nil || len(p.Objects) != 1 || p.Objects[0].Key != key {
			t.Fatalf("List(prefix %q) = %+v, %v", key, p.Objects, err)
		}
		if err := s.Delete(ctx, "fuzz", key); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "fuzz", key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Stat after Delete(%q): %v", key, err)
		}
	})
}
