package objstore

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is returned (wrapped) for a bucket name, key or metadata that no implementation
// would accept. Both implementations apply the same rules so that code tested against the
// local store does not fail later on S3.
var ErrInvalid = errors.New("invalid object store argument")

const (
	maxKeyLen      = 1024 // S3's limit, in bytes
	maxMetadataLen = 2048 // S3's limit for all user metadata (keys + values), in bytes
)

// validBucket applies S3's bucket naming rules (the strict subset every server accepts).
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: length must be 3..63: %w", b, ErrInvalid)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("bucket %q: only a-z, 0-9, '-' and '.' allowed: %w", b, ErrInvalid)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("bucket %q: must start and end with a letter or digit: %w", b, ErrInvalid)
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket %q: must not contain '..': %w", b, ErrInvalid)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validKey accepts any non-empty UTF-8 key up to 1024 bytes without NUL (S3's rules). A key
// ending in '/' is refused: S3 servers on a filesystem (versitygw posix, MinIO) treat it as a
// directory marker, so such an object would behave differently per implementation.
func validKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("empty key: %w", ErrInvalid)
	case len(k) > maxKeyLen:
		return fmt.Errorf("key of %d bytes exceeds %d: %w", len(k), maxKeyLen, ErrInvalid)
	case !utf8.ValidString(k):
		return fmt.Errorf("key %q is not valid UTF-8: %w", k, ErrInvalid)
	case strings.ContainsRune(k, 0):
		return fmt.Errorf("key %q contains NUL: %w", k, ErrInvalid)
	case strings.HasSuffix(k, "/"):
		return fmt.Errorf("key %q ends with '/': %w", k, ErrInvalid)
	}
	return nil
}

// normMetadata lower-cases metadata keys and checks they are HTTP-header safe. Values may be
// any UTF-8: the S3 implementation encodes non-ASCII values (RFC 2047) and decodes them on
// read, so both implementations round-trip them.
func normMetadata(md map[string]string) (map[string]string, error) {
	if len(md) == 0 {
		return map[string]string{}, nil
	}
	out := make(map[string]string, len(md))
	total := 0
	for k, v := range md {
		lk := strings.ToLower(k)
		if lk == "" {
			return nil, fmt.Errorf("empty metadata key: %w", ErrInvalid)
		}
		for i := 0; i < len(lk); i++ {
			c := lk[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return nil, fmt.Errorf("metadata key %q: only letters, digits, '-' and '_' allowed: %w", k, ErrInvalid)
			}
		}
		if _, dup := out[lk]; dup {
			return nil, fmt.Errorf("metadata key %q given twice (keys are case-insensitive): %w", k, ErrInvalid)
		}
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q: value is not valid UTF-8: %w", k, ErrInvalid)
		}
		out[lk] = v
		total += len(lk) + len(v)
	}
	if total > maxMetadataLen {
		return nil, fmt.Errorf("metadata of %d bytes exceeds %d: %w", total, maxMetadataLen, ErrInvalid)
	}
	return out, nil
}

func pageLimit(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}
