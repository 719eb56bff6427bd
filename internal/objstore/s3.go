package objstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach an S3-compatible server (MinIO in production).
type S3Config struct {
	// Endpoint is host:port, or an http:// or https:// URL (the scheme then decides UseTLS).
	Endpoint  string `yaml:"endpoint"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Region    string `yaml:"region"` // empty: the client's default (us-east-1)
	UseTLS    bool   `yaml:"use_tls"`
	// PathStyle forces path-style bucket addressing (http://host/bucket/key), which MinIO and
	// versitygw need. False means auto-detect, which is also path style for anything that is
	// not a known cloud endpoint, so the zero value is safe too.
	PathStyle bool `yaml:"path_style"`
}

// DefaultS3Config is the configuration for a local MinIO/versitygw: path style, no TLS.
// Endpoint and credentials must still be set.
func DefaultS3Config() S3Config { return S3Config{PathStyle: true} }

// Validate checks the configuration; errors name the field by its YAML path under "s3".
func (c S3Config) Validate() error {
	var errs []error
	if _, _, err := c.hostAndTLS(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.AccessKey) == "" {
		errs = append(errs, errors.New("s3.access_key: must be set (credentials are required)"))
	}
	if strings.TrimSpace(c.SecretKey) == "" {
		errs = append(errs, errors.New("s3.secret_key: must be set (credentials are required)"))
	}
	return errors.Join(errs...)
}

// hostAndTLS normalises Endpoint to minio-go's host[:port] and TLS flag.
func (c S3Config) hostAndTLS() (string, bool, error) {
	ep := strings.TrimSpace(c.Endpoint)
	if ep == "" {
		return "", false, errors.New("s3.endpoint: must be set (host:port or http(s)://host:port)")
	}
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", false, fmt.Errorf("s3.endpoint: %q is not a valid URL: %v", ep, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", false, fmt.Errorf("s3.endpoint: scheme %q not supported (use http or https)", u.Scheme)
		}
		if u.Host == "" {
			return "", false, fmt.Errorf("s3.endpoint: %q has no host", ep)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return "", false, fmt.Errorf("s3.endpoint: %q must be scheme://host[:port] only, no path, query or user", ep)
		}
		return u.Host, u.Scheme == "https", nil
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil || host == "" || port == "" || strings.ContainsAny(ep, "/?#@ ") {
		return "", false, fmt.Errorf("s3.endpoint: %q must be host:port or an http(s):// URL", ep)
	}
	return ep, c.UseTLS, nil
}

// S3 is a Store on an S3-compatible server via minio-go.
type S3 struct {
	client     *minio.Client
	pingClient *minio.Client
	core       minio.Core
	cfg        S3Config
}

var _ Store = (*S3)(nil)

// s3PartSize bounds the memory of a streamed (size -1) upload: one part is buffered at a time.
const s3PartSize = 8 << 20

// NewS3 validates cfg and creates a client. It does not contact the server (see Ping).
func NewS3(cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, tls, _ := cfg.hostAndTLS()
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	newClient := func(retries int) (*minio.Client, error) {
		return minio.New(host, &minio.Options{
			Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
			Secure:       tls,
			Region:       cfg.Region,
			BucketLookup: lookup,
			MaxRetries:   retries,
		})
	}
	cl, err := newClient(0) // the client's default retries with back-off
	if err != nil {
		return nil, fmt.Errorf("objstore s3 client for %s: %w", host, err)
	}
	// Ping must answer fast when the server is down (readiness), so it does not retry.
	pc, err := newClient(1)
	if err != nil {
		return nil, fmt.Errorf("objstore s3 client for %s: %w", host, err)
	}
	return &S3{client: cl, pingClient: pc, core: minio.Core{Client: cl}, cfg: cfg}, nil
}

// Client exposes the minio client for what Store does not cover (e.g. bucket notifications).
func (s *S3) Client() *minio.Client { return s.client }

// mapErr wraps S3 "no such key/bucket" (and any 404) as ErrNotFound, keeping the original.
func mapErr(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == "NoSuchKey" || er.Code == "NoSuchBucket" || er.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s %s/%s: %w (%s)", op, bucket, key, ErrNotFound, er.Code)
		}
	}
	return fmt.Errorf("%s %s/%s: %w", op, bucket, key, err)
}

func s3Code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

func (s *S3) EnsureBucket(ctx context.Context, bucket string) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	ok, err := s.client.BucketExists(ctx, bucket)
	if err != nil {
		return mapErr("bucket exists", bucket, "", err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s.cfg.Region})
	if err != nil {
		// Lost a race with another creator: that is success.
		code := s3Code(err)
		if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return mapErr("make bucket", bucket, "", err)
	}
	return nil
}

// Put uploads the object. With size -1 the first part is buffered: content shorter than
// one part goes up as a single PUT (its ETag is then the content MD5), longer content as a
// multipart upload of 8 MiB parts (ETag "<md5-of-md5s>-<parts>").
func (s *S3) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	if err := validBucket(bucket); err != nil {
		return ObjectInfo{}, err
	}
	if err := validKey(key); err != nil {
		return ObjectInfo{}, err
	}
	md, err := normMetadata(opts.Metadata)
	if err != nil {
		return ObjectInfo{}, err
	}
	po := minio.PutObjectOptions{
		ContentType:  opts.ContentType,
		UserMetadata: encodeMetadata(md),
		PartSize:     s3PartSize,
	}
	if po.ContentType == "" {
		po.ContentType = "application/octet-stream"
	}
	if size >= 0 && size <= s3PartSize {
		// Buffered so that a short reader fails here at once (an HTTP body shorter than its
		// Content-Length is retried with back-off by the client) and so that the client can
		// replay the body on a transient error.
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ObjectInfo{}, fmt.Errorf("put %s/%s: read %d bytes of content: %w", bucket, key, size, err)
		}
		r = bytes.NewReader(buf)
	} else if size < 0 {
		buf := make([]byte, s3PartSize)
		n, rerr := io.ReadFull(r, buf)
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			r, size = bytes.NewReader(buf[:n]), int64(n)
		case rerr != nil:
			return ObjectInfo{}, fmt.Errorf("put %s/%s: read content: %w", bucket, key, rerr)
		default:
			r = io.MultiReader(bytes.NewReader(buf), r)
		}
	}
	up, err := s.client.PutObject(ctx, bucket, key, r, size, po)
	if err != nil {
		return ObjectInfo{}, mapErr("put", bucket, key, err)
	}
	// The response carries no metadata; what was sent is what is stored, so no extra HEAD.
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now()
	}
	return ObjectInfo{Bucket: bucket, Key: key, Size: up.Size, ETag: up.ETag, ContentType: po.ContentType,
		Metadata: md, LastModified: mod.UTC()}, nil
}

func (s *S3) toInfo(bucket string, oi minio.ObjectInfo) ObjectInfo {
	md := make(map[string]string, len(oi.UserMetadata))
	for k, v := range oi.UserMetadata {
		md[strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))] = decodeMetaValue(v)
	}
	return ObjectInfo{Bucket: bucket, Key: oi.Key, Size: oi.Size, ETag: oi.ETag, ContentType: oi.ContentType,
		Metadata: md, LastModified: oi.LastModified.UTC()}
}

// Get issues one GET; the body streams from the server as the caller reads.
func (s *S3) Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := validBucket(bucket); err != nil {
		return nil, ObjectInfo{}, err
	}
	if err := validKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	rc, oi, _, err := s.core.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, mapErr("get", bucket, key, err)
	}
	return rc, s.toInfo(bucket, oi), nil
}

func (s *S3) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	if err := validBucket(bucket); err != nil {
		return ObjectInfo{}, err
	}
	if err := validKey(key); err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, mapErr("stat", bucket, key, err)
	}
	return s.toInfo(bucket, oi), nil
}

// Delete removes the object; S3 answers success for a missing key, NoSuchBucket for a
// missing bucket (returned as ErrNotFound, as Local does).
func (s *S3) Delete(ctx context.Context, bucket, key string) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	if err := validKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	if err != nil && s3Code(err) == "NoSuchKey" {
		return nil
	}
	return mapErr("delete", bucket, key, err)
}

// List reads exactly one page with ListObjectsV2 (MaxKeys = Limit+1 to learn whether more
// follow) and cancels the iterator's context so no request or goroutine outlives the call.
// Listed objects carry key, size, ETag and time; ContentType and Metadata are empty (S3
// listings do not return them; Stat each object if needed).
func (s *S3) List(ctx context.Context, bucket, prefix string, opts ListOptions) (ListPage, error) {
	if err := validBucket(bucket); err != nil {
		return ListPage{}, err
	}
	limit := pageLimit(opts.Limit)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	maxKeys := limit + 1
	if maxKeys > 1000 {
		maxKeys = 1000
	}
	var page ListPage
	for oi := range s.client.ListObjectsIter(lctx, bucket, minio.ListObjectsOptions{
		Prefix: prefix, StartAfter: opts.StartAfter, MaxKeys: maxKeys, Recursive: true,
	}) {
		if oi.Err != nil {
			return ListPage{}, mapErr("list", bucket, prefix, oi.Err)
		}
		if len(page.Objects) == limit {
			page.Truncated = true
			break
		}
		page.Objects = append(page.Objects, ObjectInfo{Bucket: bucket, Key: oi.Key, Size: oi.Size,
			ETag: oi.ETag, LastModified: oi.LastModified.UTC(), Metadata: map[string]string{}})
	}
	if page.Truncated {
		page.NextStartAfter = page.Objects[len(page.Objects)-1].Key
	}
	return page, nil
}

// Copy is a server-side CopyObject. With opts the metadata directive is REPLACE.
func (s *S3) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, opts *PutOptions) (ObjectInfo, error) {
	for _, b := range []string{srcBucket, dstBucket} {
		if err := validBucket(b); err != nil {
			return ObjectInfo{}, err
		}
	}
	for _, k := range []string{srcKey, dstKey} {
		if err := validKey(k); err != nil {
			return ObjectInfo{}, err
		}
	}
	dst := minio.CopyDestOptions{Bucket: dstBucket, Object: dstKey}
	if opts != nil {
		md, err := normMetadata(opts.Metadata)
		if err != nil {
			return ObjectInfo{}, err
		}
		dst.ReplaceMetadata = true
		dst.UserMetadata = encodeMetadata(md)
		dst.ContentType = opts.ContentType
		if dst.ContentType == "" {
			dst.ContentType = "application/octet-stream"
		}
	}
	if _, err := s.client.CopyObject(ctx, dst, minio.CopySrcOptions{Bucket: srcBucket, Object: srcKey}); err != nil {
		return ObjectInfo{}, mapErr("copy from "+srcBucket+"/"+srcKey+" to", dstBucket, dstKey, err)
	}
	return s.Stat(ctx, dstBucket, dstKey)
}

// Ping lists buckets: it proves the server answers and accepts the credentials.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.pingClient.ListBuckets(ctx); err != nil {
		return fmt.Errorf("objstore s3 %s: %w", s.cfg.Endpoint, err)
	}
	return nil
}

// encodeMetadata makes values safe as HTTP header values: anything that is not plain
// printable ASCII (or that looks like an encoded word) becomes one RFC 2047 "B" word.
func encodeMetadata(md map[string]string) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		if needsEncoding(v) {
			v = "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
		}
		out[k] = v
	}
	return out
}

func needsEncoding(v string) bool {
	if strings.HasPrefix(v, "=?") || strings.TrimSpace(v) != v {
		return true
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] >= 0x7f {
			return true
		}
	}
	return false
}

var wordDecoder mime.WordDecoder

func decodeMetaValue(v string) string {
	if !strings.HasPrefix(v, "=?") || !strings.HasSuffix(v, "?=") {
		return v
	}
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}
