package objstore

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Local is a Store on a local directory (the one-box default).
//
// Layout under root: one directory per bucket. A key is split on '/'; every segment but the
// last is a directory "<enc>.d" and the object itself is a commit record "<enc>.m" (JSON:
// key, size, ETag, content type, metadata, blob name) beside its content "<enc>.<gen>.b".
// <enc> escapes every byte outside [A-Za-z0-9._-] as %XX, and the suffixes keep "a" (the
// object) and "a/" (the prefix) apart, so both can exist, and make ".", ".." and empty
// segments ordinary names. A segment too long for a file name is cut and suffixed with
// "~<sha256>"; its real name is then read from the record (or from ".seg" in a directory).
//
// Writes are atomic and crash-safe: the blob is written to a temp file, fsynced and renamed
// to a fresh name, then the record is written the same way. The record's rename is the
// commit: an object is visible only through its record, which only ever names a complete
// blob. A crash can leave an unreferenced blob behind, never a torn or metadata-less object.
// Overwrites of one key are serialised within the process; two processes overwriting the same
// key at once can orphan a blob (garbage, not corruption).
type Local struct {
	root  string
	locks [64]sync.Mutex
	// noSync skips fsync: only in-package tests set it, to populate thousands of objects fast.
	noSync bool
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating if needed) a local store rooted at root.
func NewLocal(root string) (*Local, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("objstore local root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("objstore local root: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root is the directory the store lives in.
func (l *Local) Root() string { return l.root }

type localRecord struct {
	V           int               `json:"v"`
	Key         string            `json:"key"`
	Size        int64             `json:"size"`
	ETag        string            `json:"etag"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata"`
	Blob        string            `json:"blob"`
	Modified    time.Time         `json:"modified"`
}

func (r *localRecord) info(bucket string) ObjectInfo {
	md := make(map[string]string, len(r.Metadata))
	for k, v := range r.Metadata {
		md[k] = v
	}
	return ObjectInfo{Bucket: bucket, Key: r.Key, Size: r.Size, ETag: r.ETag, ContentType: r.ContentType,
		Metadata: md, LastModified: r.Modified}
}

const (
	recSuffix  = ".m"
	dirSuffix  = ".d"
	blobSuffix = ".b"
	tmpSuffix  = ".tmp"
	segFile    = ".seg" // real segment of a hashed directory name
	maxEncLen  = 180    // longest escaped segment kept verbatim (file names max out at 255)
)

// encSeg escapes one key segment into a file-name stem.
func encSeg(seg string) string {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		const hexd = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	e := b.String()
	if len(e) <= maxEncLen {
		return e
	}
	cut := 100
	for cut > 0 && (e[cut-1] == '%' || cut >= 2 && e[cut-2] == '%') {
		cut-- // never split a %XX escape
	}
	sum := sha256hex(seg)
	return e[:cut] + "~" + sum[:40]
}

// decSeg reverses encSeg; ok is false for a hashed stem, whose segment must be read from disk.
func decSeg(stem string) (string, bool) {
	if strings.Contains(stem, "~") {
		return "", false
	}
	if !strings.Contains(stem, "%") {
		return stem, true
	}
	b := make([]byte, 0, len(stem))
	for i := 0; i < len(stem); i++ {
		if stem[i] == '%' && i+2 < len(stem) {
			h, err := hex.DecodeString(stem[i+1 : i+3])
			if err != nil {
				return "", false
			}
			b = append(b, h[0])
			i += 2
			continue
		}
		b = append(b, stem[i])
	}
	return string(b), true
}

func (l *Local) bucketDir(bucket string) (string, error) {
	if err := validBucket(bucket); err != nil {
		return "", err
	}
	return filepath.Join(l.root, bucket), nil
}

// bucketMissing returns a wrapped ErrNotFound when the bucket directory is absent.
func (l *Local) bucketMissing(bucket, dir string) error {
	st, err := os.Stat(dir)
	if err == nil && st.IsDir() {
		return nil
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("bucket %q: %w", bucket, ErrNotFound)
	}
	return fmt.Errorf("bucket %q: %w", bucket, err)
}

// objectPaths returns the directory holding key's record and the record's file-name stem.
func objectPaths(bdir, key string) (dir, stem string, dirSegs []string) {
	segs := strings.Split(key, "/")
	dir = bdir
	for _, s := range segs[:len(segs)-1] {
		dir = filepath.Join(dir, encSeg(s)+dirSuffix)
	}
	return dir, encSeg(segs[len(segs)-1]), segs[:len(segs)-1]
}

func (l *Local) lock(bucket, key string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = io.WriteString(h, bucket+"\x00"+key)
	return &l.locks[h.Sum32()%uint32(len(l.locks))]
}

// EnsureBucket creates the bucket directory if it does not exist.
func (l *Local) EnsureBucket(ctx context.Context, bucket string) error {
	dir, err := l.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	return nil
}

// Put stores the object atomically (see Local). ETag is the hex MD5 of the content.
func (l *Local) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	bdir, err := l.bucketDir(bucket)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := validKey(key); err != nil {
		return ObjectInfo{}, err
	}
	md, err := normMetadata(opts.Metadata)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := l.bucketMissing(bucket, bdir); err != nil {
		return ObjectInfo{}, err
	}
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	mu := l.lock(bucket, key)
	mu.Lock()
	defer mu.Unlock()

	dir, stem, dirSegs := objectPaths(bdir, key)
	// The content is spooled to a temp file first, so a concurrent Delete pruning an empty
	// directory can at worst make the directory vanish before that; then it is recreated.
	// The race can also strike between two levels of mkdirs (a parent pruned as empty just
	// before its child is made), so both steps retry on a vanished directory.
	var tmp *os.File
	for attempt := 0; ; attempt++ {
		err = l.mkdirs(bdir, dirSegs)
		if err == nil {
			tmp, err = os.CreateTemp(dir, "put-*"+tmpSuffix)
			if err == nil {
				break
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 9 {
			return ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
		}
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()

	h := md5.New()
	src := io.Reader(ctxReader{ctx, r})
	if size >= 0 {
		src = io.LimitReader(src, size)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s/%s: read content: %w", bucket, key, err)
	}
	if size >= 0 && n != size {
		return ObjectInfo{}, fmt.Errorf("put %s/%s: got %d of %d bytes: %w", bucket, key, n, size, io.ErrUnexpectedEOF)
	}
	if !l.noSync {
		if err := tmp.Sync(); err != nil {
			return ObjectInfo{}, fmt.Errorf("put %s/%s: fsync: %w", bucket, key, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s/%s: close: %w", bucket, key, err)
	}
	gen := make([]byte, 8)
	_, _ = rand.Read(gen)
	blob := stem + "." + hex.EncodeToString(gen) + blobSuffix
	if err := os.Rename(tmpName, filepath.Join(dir, blob)); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	committed = true // the temp name is gone; the blob is cleaned up below on failure

	old, _ := readRecord(filepath.Join(dir, stem+recSuffix))
	rec := localRecord{V: 1, Key: key, Size: n, ETag: hex.EncodeToString(h.Sum(nil)), ContentType: ct,
		Metadata: md, Blob: blob, Modified: time.Now().UTC()}
	if err := writeFileAtomic(dir, stem+recSuffix, &rec, !l.noSync); err != nil {
		_ = os.Remove(filepath.Join(dir, blob))
		return ObjectInfo{}, fmt.Errorf("put %s/%s: commit: %w", bucket, key, err)
	}
	if old != nil && old.Blob != "" && old.Blob != blob {
		_ = os.Remove(filepath.Join(dir, old.Blob))
	}
	if !l.noSync {
		_ = syncDir(dir)
	}
	return rec.info(bucket), nil
}

// mkdirs creates the prefix directories of a key. A hashed directory is created complete
// (with its .seg file) under a temp name and renamed, so it never exists without its name.
func (l *Local) mkdirs(bdir string, segs []string) error {
	dir := bdir
	for _, s := range segs {
		e := encSeg(s)
		next := filepath.Join(dir, e+dirSuffix)
		if _, ok := decSeg(e); ok {
			if err := os.Mkdir(next, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		} else if _, err := os.Stat(next); err != nil {
			tmp, err := os.MkdirTemp(dir, "mkdir-*"+tmpSuffix)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(tmp, segFile), []byte(s), 0o640); err != nil {
				_ = os.RemoveAll(tmp)
				return err
			}
			if err := os.Rename(tmp, next); err != nil {
				_ = os.RemoveAll(tmp) // someone else created it first
				if _, serr := os.Stat(next); serr != nil {
					return err
				}
			}
		}
		dir = next
	}
	return nil
}

func writeFileAtomic(dir, name string, v any, fsync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "rec-*"+tmpSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if fsync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			return err
		}
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readRecord(path string) (*localRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r localRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("corrupt object record %s: %w", path, err)
	}
	return &r, nil
}

// record loads key's commit record, mapping absence of bucket or key to ErrNotFound.
func (l *Local) record(bucket, key string) (dir string, rec *localRecord, err error) {
	bdir, err := l.bucketDir(bucket)
	if err != nil {
		return "", nil, err
	}
	if err := validKey(key); err != nil {
		return "", nil, err
	}
	dir, stem, _ := objectPaths(bdir, key)
	rec, err = readRecord(filepath.Join(dir, stem+recSuffix))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || isNotDir(err) {
			if berr := l.bucketMissing(bucket, bdir); berr != nil {
				return "", nil, berr
			}
			return "", nil, fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
		}
		return "", nil, err
	}
	if rec.Key != key { // a hash collision of two over-long segments: astronomically unlikely
		return "", nil, fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
	}
	return dir, rec, nil
}

// isNotDir: a path through a file (possible only with a corrupted tree) reads as absent.
func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Get opens the object's content; the caller closes it.
func (l *Local) Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error) {
	// An overwrite between reading the record and opening its blob removes that blob;
	// reading the record again then finds the new one.
	for attempt := 0; ; attempt++ {
		dir, rec, err := l.record(bucket, key)
		if err != nil {
			return nil, ObjectInfo{}, err
		}
		f, err := os.Open(filepath.Join(dir, rec.Blob))
		if err == nil {
			return f, rec.info(bucket), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return nil, ObjectInfo{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
		}
	}
}

// Stat returns the object's info.
func (l *Local) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	_, rec, err := l.record(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return rec.info(bucket), nil
}

// Delete removes the object and prunes prefix directories it leaves empty.
func (l *Local) Delete(ctx context.Context, bucket, key string) error {
	mu := l.lock(bucket, key)
	mu.Lock()
	defer mu.Unlock()
	dir, rec, err := l.record(bucket, key)
	if errors.Is(err, ErrNotFound) {
		if bdir, _ := l.bucketDir(bucket); l.bucketMissing(bucket, bdir) != nil {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	_, stem, _ := objectPaths(filepath.Join(l.root, bucket), key)
	if err := os.Remove(filepath.Join(dir, stem+recSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	_ = os.Remove(filepath.Join(dir, rec.Blob))
	_ = syncDir(dir)
	// Prune now-empty prefix directories; Remove fails harmlessly on a non-empty one, and a
	// concurrent Put that loses its directory recreates it.
	bdir := filepath.Join(l.root, bucket)
	for d := dir; d != bdir && strings.HasPrefix(d, bdir); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// List returns one page of objects whose keys start with prefix, in byte order. The walk
// descends straight to the prefix's directory and skips subtrees wholly before StartAfter,
// so a page costs about its own size, not the bucket's.
func (l *Local) List(ctx context.Context, bucket, prefix string, opts ListOptions) (ListPage, error) {
	bdir, err := l.bucketDir(bucket)
	if err != nil {
		return ListPage{}, err
	}
	if err := l.bucketMissing(bucket, bdir); err != nil {
		return ListPage{}, err
	}
	limit := pageLimit(opts.Limit)
	w := &walker{ctx: ctx, bucket: bucket, after: opts.StartAfter, prefix: prefix, want: limit + 1}

	dir, base := bdir, ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		for _, s := range strings.Split(prefix[:i], "/") {
			dir = filepath.Join(dir, encSeg(s)+dirSuffix)
		}
		base = prefix[:i+1]
	}
	if err := w.walk(dir, base, prefix[len(base):]); err != nil {
		return ListPage{}, fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
	}
	page := ListPage{Objects: w.out}
	if len(page.Objects) > limit {
		page.Objects = page.Objects[:limit]
		page.Truncated = true
		page.NextStartAfter = page.Objects[limit-1].Key
	}
	return page, nil
}

type walker struct {
	ctx    context.Context
	bucket string
	after  string
	prefix string
	want   int
	out    []ObjectInfo
}

type child struct {
	sortKey string // segment, plus '/' for a directory: orders subtrees exactly as their keys
	name    string
	isDir   bool
}

func (w *walker) walk(dir, base, leaf string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
			return nil
		}
		return err
	}
	kids := make([]child, 0, len(ents))
	for _, e := range ents {
		n := e.Name()
		var c child
		switch {
		case strings.HasSuffix(n, recSuffix) && e.Type().IsRegular():
			seg, ok := decSeg(strings.TrimSuffix(n, recSuffix))
			if !ok {
				rec, err := readRecord(filepath.Join(dir, n))
				if err != nil {
					continue
				}
				seg = rec.Key[strings.LastIndexByte(rec.Key, '/')+1:]
			}
			c = child{sortKey: seg, name: n}
		case strings.HasSuffix(n, dirSuffix) && e.IsDir():
			seg, ok := decSeg(strings.TrimSuffix(n, dirSuffix))
			if !ok {
				b, err := os.ReadFile(filepath.Join(dir, n, segFile))
				if err != nil {
					continue
				}
				seg = string(b)
			}
			c = child{sortKey: seg + "/", name: n, isDir: true}
		default:
			continue
		}
		if !strings.HasPrefix(c.sortKey, leaf) {
			continue
		}
		full := base + c.sortKey
		if c.isDir {
			// Every key below starts with full; all are <= after unless after is inside.
			if full < w.after && !strings.HasPrefix(w.after, full) {
				continue
			}
		} else if full <= w.after {
			continue
		}
		kids = append(kids, c)
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].sortKey < kids[j].sortKey })
	for _, c := range kids {
		if len(w.out) >= w.want {
			return nil
		}
		if c.isDir {
			if err := w.walk(filepath.Join(dir, c.name), base+c.sortKey, ""); err != nil {
				return err
			}
			continue
		}
		rec, err := readRecord(filepath.Join(dir, c.name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while listing
			}
			return err
		}
		w.out = append(w.out, rec.info(w.bucket))
	}
	return nil
}

// Copy copies through the local filesystem (content is re-hashed; the ETag matches the source).
func (l *Local) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, opts *PutOptions) (ObjectInfo, error) {
	rc, info, err := l.Get(ctx, srcBucket, srcKey)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("copy source: %w", err)
	}
	defer rc.Close()
	po := PutOptions{ContentType: info.ContentType, Metadata: info.Metadata}
	if opts != nil {
		po = *opts
	}
	out, err := l.Put(ctx, dstBucket, dstKey, rc, info.Size, po)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("copy: %w", err)
	}
	return out, nil
}

// Ping checks the root directory is there and readable.
func (l *Local) Ping(ctx context.Context) error {
	f, err := os.Open(l.root)
	if err != nil {
		return fmt.Errorf("objstore local: %w", err)
	}
	defer f.Close()
	if _, err := f.ReadDir(1); err != nil && err != io.EOF {
		return fmt.Errorf("objstore local: %w", err)
	}
	return nil
}

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
