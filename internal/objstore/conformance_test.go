package objstore_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/objstore/objstoretest"
)

func TestLocalConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) objstore.Store {
		s, err := objstore.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestS3Conformance runs the suite against a real versitygw; one gateway serves all subtests
// (each uses its own buckets). Under CI=true a missing versitygw fails the test.
func TestS3Conformance(t *testing.T) {
	s := objstoretest.NewS3Store(t, objstoretest.VersityOptions{})
	runConformance(t, func(t *testing.T) objstore.Store { return s })
}

var bucketSeq int

// newBucket creates a fresh, uniquely named bucket.
func newBucket(t *testing.T, s objstore.Store) string {
	t.Helper()
	bucketSeq++
	b := fmt.Sprintf("conf-%d-%d", time.Now().UnixNano()%1e9, bucketSeq)
	if err := s.EnsureBucket(ctx(t), b); err != nil {
		t.Fatalf("EnsureBucket(%s): %v", b, err)
	}
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func put(t *testing.T, s objstore.Store, bucket, key string, body []byte, opts objstore.PutOptions) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(ctx(t), bucket, key, bytes.NewReader(body), int64(len(body)), opts)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, s objstore.Store, bucket, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(ctx(t), bucket, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q) read: %v", key, err)
	}
	return b, info
}

// listAll pages through a prefix with the given limit and checks page invariants.
func listAll(t *testing.T, s objstore.Store, bucket, prefix string, limit int) (keys []string, pages int) {
	t.Helper()
	after := ""
	for {
		p, err := s.List(ctx(t), bucket, prefix, objstore.ListOptions{StartAfter: after, Limit: limit})
		if err != nil {
			t.Fatalf("List(%q, after %q): %v", prefix, after, err)
		}
		pages++
		if limit > 0 && len(p.Objects) > limit {
			t.Fatalf("page of %d objects exceeds limit %d", len(p.Objects), limit)
		}
		for _, o := range p.Objects {
			keys = append(keys, o.Key)
		}
		if !p.Truncated {
			if p.NextStartAfter != "" && len(p.Objects) == 0 {
				t.Fatalf("untruncated empty page with NextStartAfter %q", p.NextStartAfter)
			}
			return keys, pages
		}
		if p.NextStartAfter == "" || len(p.Objects) == 0 || p.NextStartAfter != p.Objects[len(p.Objects)-1].Key {
			t.Fatalf("truncated page: NextStartAfter %q, last object %v", p.NextStartAfter, p.Objects)
		}
		after = p.NextStartAfter
		if pages > 100 {
			t.Fatal("listing does not terminate")
		}
	}
}

func runConformance(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	t.Run("RoundTripWithMetadata", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		body := []byte("\xff\xd8 not really a jpeg \x00\x01")
		md := map[string]string{"Camera-Id": "cam-7", "site": "Liège — Pont d'Avroy", "note": "日本 ß é", "plain": "a=b; c"}
		want := map[string]string{"camera-id": "cam-7", "site": "Liège — Pont d'Avroy", "note": "日本 ß é", "plain": "a=b; c"}
		pi := put(t, s, b, "frames/cam-7/0001.jpg", body, objstore.PutOptions{ContentType: "image/jpeg", Metadata: md})
		if pi.ETag != md5hex(body) || pi.Size != int64(len(body)) || pi.Key != "frames/cam-7/0001.jpg" || pi.Bucket != b {
			t.Errorf("Put info = %+v; want etag %s size %d", pi, md5hex(body), len(body))
		}
		got, gi := get(t, s, b, "frames/cam-7/0001.jpg")
		if !bytes.Equal(got, body) {
			t.Fatalf("Get content = %q, want %q", got, body)
		}
		si, err := s.Stat(ctx(t), b, "frames/cam-7/0001.jpg")
		if err != nil {
			t.Fatal(err)
		}
		for name, info := range map[string]objstore.ObjectInfo{"Put": pi, "Get": gi, "Stat": si} {
			if info.ContentType != "image/jpeg" {
				t.Errorf("%s ContentType = %q", name, info.ContentType)
			}
			if !mapsEqual(info.Metadata, want) {
				t.Errorf("%s Metadata = %q, want %q", name, info.Metadata, want)
			}
			if info.ETag != pi.ETag || info.Size != int64(len(body)) {
				t.Errorf("%s etag/size = %s/%d, want %s/%d", name, info.ETag, info.Size, pi.ETag, len(body))
			}
			if time.Since(info.LastModified) > time.Hour || time.Until(info.LastModified) > time.Minute {
				t.Errorf("%s LastModified = %v", name, info.LastModified)
			}
		}
	})

	t.Run("DefaultContentTypeAndNoMetadata", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		put(t, s, b, "x", []byte("x"), objstore.PutOptions{})
		si, err := s.Stat(ctx(t), b, "x")
		if err != nil {
			t.Fatal(err)
		}
		if si.ContentType != "application/octet-stream" || len(si.Metadata) != 0 {
			t.Errorf("Stat = %+v; want application/octet-stream and no metadata", si)
		}
	})

	t.Run("OddKeys", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		keys := []string{
			"with space.jpg", "  leading and trailing  ", "plus+sign.jpg", "percent%20literal.jpg", "percent%.jpg",
			"é/ß/日本.jpg", "a/b/c/d/e/f.jpg", "emoji😀.jpg", "q?x=1&y#frag;.jpg", "tilde~caret^.jpg",
			"quote'\"<>.txt", "colon:comma,.txt", "UPPER/lower", "a/b/c.d", "a/b/cd", "a/b!", "Z", "~last",
		}
		for _, k := range keys {
			put(t, s, b, k, []byte("content of "+k), objstore.PutOptions{ContentType: "text/plain"})
		}
		for _, k := range keys {
			got, info := get(t, s, b, k)
			if string(got) != "content of "+k || info.Key != k {
				t.Errorf("Get(%q) = %q (key %q)", k, got, info.Key)
			}
			if si, err := s.Stat(ctx(t), b, k); err != nil || si.Key != k || si.Size != int64(len("content of "+k)) {
				t.Errorf("Stat(%q) = %+v, %v", k, si, err)
			}
		}
		want := slices.Clone(keys)
		sort.Strings(want)
		gotKeys, _ := listAll(t, s, b, "", 0)
		if !slices.Equal(gotKeys, want) {
			t.Errorf("List all =\n%q\nwant (byte order)\n%q", gotKeys, want)
		}
		for _, prefix := range []string{"a/b/c", "a/b/", "é/ß/", "é", "a/b/c/d/e/", "percent%", "with ", "nothing"} {
			var exp []string
			for _, k := range want {
				if strings.HasPrefix(k, prefix) {
					exp = append(exp, k)
				}
			}
			got, _ := listAll(t, s, b, prefix, 2)
			if !slices.Equal(got, exp) {
				t.Errorf("List(%q) = %q, want %q", prefix, got, exp)
			}
		}
		p, err := s.List(ctx(t), b, "a/b/c/d/e/f.jpg", objstore.ListOptions{})
		if err != nil || len(p.Objects) != 1 || p.Objects[0].Size != int64(len("content of a/b/c/d/e/f.jpg")) ||
			p.Objects[0].ETag != md5hex([]byte("content of a/b/c/d/e/f.jpg")) || p.Objects[0].Bucket != b {
			t.Errorf("List exact key = %+v, %v", p, err)
		}
	})

	t.Run("ZeroBytes", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		put(t, s, b, "empty-known", nil, objstore.PutOptions{})
		if _, err := s.Put(ctx(t), b, "empty-stream", strings.NewReader(""), -1, objstore.PutOptions{}); err != nil {
			t.Fatalf("Put size -1 of nothing: %v", err)
		}
		for _, k := range []string{"empty-known", "empty-stream"} {
			got, info := get(t, s, b, k)
			if len(got) != 0 || info.Size != 0 {
				t.Errorf("%s: got %d bytes, size %d", k, len(got), info.Size)
			}
			if info.ETag != md5hex(nil) {
				t.Errorf("%s: ETag %q, want MD5 of nothing %s", k, info.ETag, md5hex(nil))
			}
		}
	})

	t.Run("Large50MB", func(t *testing.T) {
		if testing.Short() {
			t.Skip("50 MB object skipped in -short")
		}
		s := newStore(t)
		b := newBucket(t, s)
		const size = 50 << 20
		for _, tc := range []struct {
			name  string
			size  int64
			seed  uint64
			known bool
		}{{"streamed", -1, 1, false}, {"known-size", size, 2, true}} {
			// Content is generated while uploading and hashed on the way: no 50 MB buffer.
			src := io.LimitReader(rand.NewChaCha8(seedOf(tc.seed)), size)
			h := sha256.New()
			info, err := s.Put(ctx(t), b, "big/"+tc.name, io.TeeReader(src, h), tc.size, objstore.PutOptions{ContentType: "application/x-test"})
			if err != nil {
				t.Fatalf("%s: Put: %v", tc.name, err)
			}
			if info.Size != size {
				t.Errorf("%s: Put size %d", tc.name, info.Size)
			}
			rc, gi, err := s.Get(ctx(t), b, "big/"+tc.name)
			if err != nil {
				t.Fatalf("%s: Get: %v", tc.name, err)
			}
			gh := sha256.New()
			n, err := io.Copy(gh, rc)
			rc.Close()
			if err != nil || n != size || gi.Size != size {
				t.Fatalf("%s: read %d bytes (info %d), %v", tc.name, n, gi.Size, err)
			}
			if !bytes.Equal(h.Sum(nil), gh.Sum(nil)) {
				t.Errorf("%s: SHA-256 of read content differs from what was written", tc.name)
			}
			if gi.ETag != info.ETag || gi.ContentType != "application/x-test" {
				t.Errorf("%s: Get info %+v vs Put %+v", tc.name, gi, info)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		put(t, s, b, "present/x", []byte("x"), objstore.PutOptions{})
		missingBucket := "missing-bucket-" + fmt.Sprint(time.Now().UnixNano()%1e9)
		for _, c := range []struct{ bucket, key string }{
			{b, "absent"}, {b, "present"}, {b, "present/x/y"}, {b, "present/y"}, {missingBucket, "k"},
		} {
			if _, _, err := s.Get(ctx(t), c.bucket, c.key); !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("Get(%s/%s) err = %v, want ErrNotFound", c.bucket, c.key, err)
			}
			if _, err := s.Stat(ctx(t), c.bucket, c.key); !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("Stat(%s/%s) err = %v, want ErrNotFound", c.bucket, c.key, err)
			}
			if _, err := s.Copy(ctx(t), c.bucket, c.key, b, "dst", nil); !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("Copy(%s/%s) err = %v, want ErrNotFound", c.bucket, c.key, err)
			}
		}
		if err := s.Delete(ctx(t), b, "absent"); err != nil {
			t.Errorf("Delete of a missing key = %v, want nil", err)
		}
		if err := s.Delete(ctx(t), missingBucket, "k"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Delete in a missing bucket = %v, want ErrNotFound", err)
		}
		if _, err := s.List(ctx(t), missingBucket, "", objstore.ListOptions{}); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("List of a missing bucket = %v, want ErrNotFound", err)
		}
		if _, err := s.Put(ctx(t), missingBucket, "k", strings.NewReader("x"), 1, objstore.PutOptions{}); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Put into a missing bucket = %v, want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		put(t, s, b, "d/1/x", []byte("x"), objstore.PutOptions{})
		put(t, s, b, "d/2", []byte("y"), objstore.PutOptions{})
		if err := s.Delete(ctx(t), b, "d/1/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx(t), b, "d/1/x"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Stat after Delete = %v", err)
		}
		if keys, _ := listAll(t, s, b, "d/", 0); !slices.Equal(keys, []string{"d/2"}) {
			t.Errorf("List after Delete = %q", keys)
		}
		put(t, s, b, "d/1/x", []byte("again"), objstore.PutOptions{})
		if got, _ := get(t, s, b, "d/1/x"); string(got) != "again" {
			t.Errorf("re-put after delete: %q", got)
		}
	})

	t.Run("ListPagination", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		var want []string
		for i := 0; i < 25; i++ {
			k := fmt.Sprintf("cam/%02d.jpg", i)
			if i%5 == 0 {
				k = fmt.Sprintf("cam/%02d/nested.jpg", i) // subtrees interleave with plain keys
			}
			want = append(want, k)
			put(t, s, b, k, []byte(k), objstore.PutOptions{})
		}
		for _, decoy := range []string{"ca", "cam.jpg", "cam0/x", "cal/x", "dog/01.jpg"} {
			put(t, s, b, decoy, []byte("decoy"), objstore.PutOptions{})
		}
		sort.Strings(want)
		keys, pages := listAll(t, s, b, "cam/", 10)
		if pages != 3 || !slices.Equal(keys, want) {
			t.Fatalf("List(cam/, 10) = %d pages %q\nwant 3 pages %q", pages, keys, want)
		}
		p, err := s.List(ctx(t), b, "cam/", objstore.ListOptions{Limit: 10})
		if err != nil || !p.Truncated || len(p.Objects) != 10 || p.NextStartAfter != want[9] {
			t.Errorf("first page = %d objects, truncated %v, next %q, %v", len(p.Objects), p.Truncated, p.NextStartAfter, err)
		}
		p, err = s.List(ctx(t), b, "cam/", objstore.ListOptions{Limit: 25})
		if err != nil || p.Truncated || len(p.Objects) != 25 || p.NextStartAfter != "" {
			t.Errorf("exact-size page: %d objects, truncated %v, next %q, %v", len(p.Objects), p.Truncated, p.NextStartAfter, err)
		}
		for _, c := range []struct {
			after string
			first int // index in want of the first object expected
		}{
			{want[4], 5},       // an existing key is excluded
			{"cam/07.jpgz", 8}, // a non-existing key: strictly after it
			{"cam/10", 10},     // a prefix of the subtree "cam/10/": the subtree follows
			{"cam/10/", 10},    // inside the subtree, before its only key
			{"cam/10/nested.jpg", 11},
			{"a", 0}, // before the prefix: everything
			{"cam/99", 25},
			{"zzz", 25},
		} {
			p, err := s.List(ctx(t), b, "cam/", objstore.ListOptions{StartAfter: c.after, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range p.Objects {
				got = append(got, o.Key)
			}
			exp := want[c.first:min(c.first+3, len(want))]
			if !slices.Equal(got, exp) || p.Truncated != (c.first+3 < len(want)) {
				t.Errorf("StartAfter %q: %q (truncated %v), want %q", c.after, got, p.Truncated, exp)
			}
		}
		all, err := s.List(ctx(t), b, "", objstore.ListOptions{})
		if err != nil || len(all.Objects) != 30 || all.Truncated {
			t.Errorf("List all with default limit: %d objects, truncated %v, %v", len(all.Objects), all.Truncated, err)
		}
	})

	t.Run("Copy", func(t *testing.T) {
		s := newStore(t)
		src, dst := newBucket(t, s), newBucket(t, s)
		body := []byte("evidence bytes")
		md := map[string]string{"camera-id": "cam-3", "site": "Gent—Sint-Pieters"}
		pi := put(t, s, src, "in/a b+é.jpg", body, objstore.PutOptions{ContentType: "image/jpeg", Metadata: md})

		ci, err := s.Copy(ctx(t), src, "in/a b+é.jpg", dst, "kept/a b+é.jpg", nil)
		if err != nil {
			t.Fatalf("Copy keep: %v", err)
		}
		got, gi := get(t, s, dst, "kept/a b+é.jpg")
		if !bytes.Equal(got, body) || gi.ContentType != "image/jpeg" || !mapsEqual(gi.Metadata, md) || gi.ETag != pi.ETag {
			t.Errorf("copied (kept) = %q %+v", got, gi)
		}
		if ci.Key != "kept/a b+é.jpg" || ci.Bucket != dst || ci.ETag != pi.ETag || !mapsEqual(ci.Metadata, md) {
			t.Errorf("Copy info = %+v", ci)
		}

		newMD := map[string]string{"review": "confirmed", "reviewer": "Zoë"}
		ci, err = s.Copy(ctx(t), src, "in/a b+é.jpg", dst, "replaced.jpg", &objstore.PutOptions{ContentType: "image/x-evidence", Metadata: newMD})
		if err != nil {
			t.Fatalf("Copy replace: %v", err)
		}
		got, gi = get(t, s, dst, "replaced.jpg")
		if !bytes.Equal(got, body) || gi.ContentType != "image/x-evidence" || !mapsEqual(gi.Metadata, newMD) {
			t.Errorf("copied (replaced) = %q %+v", got, gi)
		}
		if ci.ContentType != "image/x-evidence" || !mapsEqual(ci.Metadata, newMD) {
			t.Errorf("Copy replace info = %+v", ci)
		}
		// The source is untouched.
		if si, err := s.Stat(ctx(t), src, "in/a b+é.jpg"); err != nil || !mapsEqual(si.Metadata, md) || si.ContentType != "image/jpeg" {
			t.Errorf("source after copies = %+v, %v", si, err)
		}
		// Same bucket, same key, new metadata: an in-place metadata update.
		if _, err := s.Copy(ctx(t), src, "in/a b+é.jpg", src, "in/a b+é.jpg", &objstore.PutOptions{ContentType: "image/jpeg", Metadata: newMD}); err != nil {
			t.Fatalf("Copy onto itself: %v", err)
		}
		got, gi = get(t, s, src, "in/a b+é.jpg")
		if !bytes.Equal(got, body) || !mapsEqual(gi.Metadata, newMD) {
			t.Errorf("after in-place copy: %q %+v", got, gi)
		}
	})

	t.Run("OverwriteETag", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		e1 := put(t, s, b, "k", []byte("version one"), objstore.PutOptions{}).ETag
		e2 := put(t, s, b, "k", []byte("version two"), objstore.PutOptions{}).ETag
		if e1 == e2 {
			t.Fatalf("ETag did not change with the content: %s", e1)
		}
		if got, info := get(t, s, b, "k"); string(got) != "version two" || info.ETag != e2 {
			t.Errorf("after overwrite: %q etag %s", got, info.ETag)
		}
		if e3 := put(t, s, b, "k", []byte("version one"), objstore.PutOptions{}).ETag; e3 != e1 {
			t.Errorf("same bytes, different ETag: %s vs %s", e3, e1)
		}
		if keys, _ := listAll(t, s, b, "", 0); !slices.Equal(keys, []string{"k"}) {
			t.Errorf("overwrite left %q", keys)
		}
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		// A key that is also the prefix of another ("a" and "a/b") is not portable: S3
		// servers on a filesystem (versitygw posix, MinIO) refuse it, so the suite avoids it.
		for _, bad := range []string{"", "no/trailing/slash/", strings.Repeat("k", 1025), "bad\xffutf8", "nul\x00"} {
			if _, err := s.Put(ctx(t), b, bad, strings.NewReader("x"), 1, objstore.PutOptions{}); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("Put key %q: %v, want ErrInvalid", bad, err)
			}
		}
		for _, bad := range []string{"", "ab", "Upper", "under_score", "-dash", "a..b", strings.Repeat("b", 64)} {
			if err := s.EnsureBucket(ctx(t), bad); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("EnsureBucket(%q): %v, want ErrInvalid", bad, err)
			}
		}
		for _, md := range []map[string]string{{"bad key": "v"}, {"": "v"}, {"a": "x", "A": "y"}, {"big": strings.Repeat("v", 3000)}} {
			if _, err := s.Put(ctx(t), b, "k", strings.NewReader("x"), 1, objstore.PutOptions{Metadata: md}); !errors.Is(err, objstore.ErrInvalid) {
				t.Errorf("Put metadata %q: %v, want ErrInvalid", md, err)
			}
		}
		if _, err := s.Put(ctx(t), b, "short", strings.NewReader("abc"), 10, objstore.PutOptions{}); err == nil {
			t.Error("Put of 3 bytes announced as 10 succeeded")
		}
		if _, err := s.Stat(ctx(t), b, "short"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("a failed Put left an object: %v", err)
		}
	})

	t.Run("EnsureBucketIdempotent", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		put(t, s, b, "k", []byte("v"), objstore.PutOptions{})
		if err := s.EnsureBucket(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		if got, _ := get(t, s, b, "k"); string(got) != "v" {
			t.Errorf("EnsureBucket on an existing bucket lost data: %q", got)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		b := newBucket(t, s)
		c, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Put(c, b, "k", strings.NewReader("v"), -1, objstore.PutOptions{}); err == nil {
			t.Error("Put with a canceled context succeeded")
		}
		if _, err := s.Stat(ctx(t), b, "k"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("canceled Put left an object: %v", err)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func seedOf(n uint64) (s [32]byte) {
	for i := range s {
		s[i] = byte(n >> (8 * (i % 8)))
	}
	return s
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
