// Package objstore is offencecam's view of object storage: one Store interface with an S3
// implementation (minio-go, for MinIO and any S3-compatible server) and a local-directory
// implementation (the one-box default). Both pass the same conformance suite.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a bucket or key does not exist. Test with errors.Is.
var ErrNotFound = errors.New("object not found")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Bucket       string
	Key          string
	Size         int64
	ETag         string // opaque; changes whenever the content changes
	ContentType  string
	Metadata     map[string]string // user metadata, keys lower-case without the x-amz-meta- prefix
	LastModified time.Time
}

// PutOptions are the attributes stored with an object.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string // user metadata; keys are stored lower-case
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	StartAfter string // return keys strictly after this one (lexicographic byte order)
	Limit      int    // at most this many objects; <= 0 means 1000
}

// ListPage is one page of a listing in key order. When Truncated, pass NextStartAfter as
// StartAfter to read the next page.
type ListPage struct {
	Objects        []ObjectInfo
	Truncated      bool
	NextStartAfter string
}

// Store is object storage. Keys are arbitrary UTF-8 (spaces, '+', '%', non-ASCII, deep
// prefixes with '/'); buckets are S3-style names.
type Store interface {
	// EnsureBucket creates the bucket if it does not exist.
	EnsureBucket(ctx context.Context, bucket string) error
	// Put stores size bytes from r (size -1 when unknown) and returns the stored object's info.
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error)
	Stat(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, bucket, key string) error
	List(ctx context.Context, bucket, prefix string, opts ListOptions) (ListPage, error)
	// Copy copies an object, possibly across buckets. With opts nil the source's content type
	// and metadata are kept; otherwise they are replaced by opts.
	Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, opts *PutOptions) (ObjectInfo, error)
	// Ping checks the store is reachable (for /readyz).
	Ping(ctx context.Context) error
}
