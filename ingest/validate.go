package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
)

// Rejection reasons: the `reason` label of offencecam_ingest_rejected_total and the
// `reason` metadata of the quarantined copy. A contract for dashboards; add, never rename.
const (
	ReasonEmpty         = "empty"          // 0 bytes
	ReasonTooLarge      = "too_large"      // more bytes than limits.max_bytes
	ReasonNotImage      = "not_image"      // neither JPEG nor PNG magic bytes
	ReasonCorrupt       = "corrupt"        // image magic but an unreadable header
	ReasonTruncated     = "truncated"      // the header or the end-of-image marker is missing
	ReasonDimensions    = "dimensions"     // width/height/pixels outside the limits
	ReasonUnknownCamera = "unknown_camera" // no camera id, or one not in the registry
	ReasonBadMetadata   = "bad_metadata"   // unparsable capture time or sidecar, unknown view
	// ReasonRefusedByStore: a drop-folder file the object store will not take (its name);
	// set aside in <inbox>/.failed, not quarantined.
	ReasonRefusedByStore = "refused_by_store"
)

// Rejection is input that will never become a Frame; it is quarantined with Reason.
type Rejection struct {
	Reason string
	Detail string
}

func (r *Rejection) Error() string { return "rejected (" + r.Reason + "): " + r.Detail }

func reject(reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// AsRejection reports whether err is (or wraps) a Rejection.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	ok := errors.As(err, &r)
	return r, ok
}

// ImageInfo is what validation learnt from the bytes.
type ImageInfo struct {
	Format string // "jpeg" or "png"
	Width  int
	Height int
	Size   int64
}

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A}
	jpegEOI   = []byte{0xFF, 0xD9}
	pngIEND   = []byte{'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82}
)

// tailKeep bounds the trailing padding tolerated after a JPEG's end-of-image marker.
const tailKeep = 1024

// tailReader counts what passes through and keeps the last tailKeep bytes, so the end
// marker can be checked without holding the image in memory.
type tailReader struct {
	r    io.Reader
	n    int64
	tail []byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.n += int64(n)
		if n >= tailKeep {
			t.tail = append(t.tail[:0], p[n-tailKeep:n]...)
		} else {
			t.tail = append(t.tail, p[:n]...)
			if len(t.tail) > 2*tailKeep {
				t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailKeep:]...)
			}
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = &sourceError{err}
	}
	return n, err
}

// sourceError marks a failure to read the object (S3 or disk), which is retried, as
// opposed to a Rejection of its content.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read object: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// ValidateImage reads an image stream once: magic bytes, size limits, dimensions from the
// header (no pixel decoding) and the end marker, which catches uploads cut short. size is
// the size the store reported (-1 when unknown). It returns a *Rejection for bad content and
// another error when reading failed.
func ValidateImage(r io.Reader, size int64, lim Limits) (ImageInfo, error) {
	if size == 0 {
		return ImageInfo{}, reject(ReasonEmpty, "object has 0 bytes")
	}
	if size > lim.MaxBytes {
		return ImageInfo{}, reject(ReasonTooLarge, "%d bytes > limits.max_bytes %d", size, lim.MaxBytes)
	}
	tr := &tailReader{r: io.LimitReader(r, lim.MaxBytes+1)}
	br := bufio.NewReaderSize(tr, 8<<10)
	head, err := br.Peek(len(pngMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return ImageInfo{}, err
	}
	var info ImageInfo
	var cfg image.Config
	switch {
	case len(head) == 0:
		return info, reject(ReasonEmpty, "object has 0 bytes")
	case bytes.HasPrefix(head, jpegMagic):
		info.Format = "jpeg"
		cfg, err = jpeg.DecodeConfig(br)
	case bytes.HasPrefix(head, pngMagic):
		info.Format = "png"
		cfg, err = png.DecodeConfig(br)
	default:
		return info, reject(ReasonNotImage, "content starts with % x, not JPEG or PNG", head)
	}
	if err != nil {
		var se *sourceError
		switch {
		case errors.As(err, &se):
			return info, se
		case tr.n > lim.MaxBytes:
			return info, reject(ReasonTooLarge, "more than limits.max_bytes %d bytes", lim.MaxBytes)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return info, reject(ReasonTruncated, "%s header cut short: %v", info.Format, err)
		default:
			return info, reject(ReasonCorrupt, "%s header: %v", info.Format, err)
		}
	}
	info.Width, info.Height = cfg.Width, cfg.Height
	// Only the end marker matters past the header: a local file jumps there instead of
	// reading the middle (an S3 body is a stream and is read through).
	if sk, ok := r.(io.Seeker); ok && size > 0 {
		if off := size - tailKeep; off > tr.n {
			if _, err := sk.Seek(off, io.SeekStart); err == nil {
				tr.n, tr.tail = off, tr.tail[:0]
				br.Reset(tr)
			}
		}
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return info, err
	}
	info.Size = tr.n
	if info.Size > lim.MaxBytes {
		return info, reject(ReasonTooLarge, "more than limits.max_bytes %d bytes", lim.MaxBytes)
	}
	if !hasEndMarker(info.Format, tr.tail) {
		return info, reject(ReasonTruncated, "%s end-of-image marker missing (upload cut short?)", info.Format)
	}
	w, h := info.Width, info.Height
	switch {
	case w <= 0 || h <= 0:
		return info, reject(ReasonCorrupt, "header says %dx%d", w, h)
	case w > lim.MaxWidth || h > lim.MaxHeight:
		return info, reject(ReasonDimensions, "%dx%d exceeds limits %dx%d", w, h, lim.MaxWidth, lim.MaxHeight)
	case int64(w)*int64(h) > lim.MaxPixels:
		return info, reject(ReasonDimensions, "%dx%d = %d pixels > limits.max_pixels %d", w, h, int64(w)*int64(h), lim.MaxPixels)
	case w < lim.MinWidth || h < lim.MinHeight:
		return info, reject(ReasonDimensions, "%dx%d is below limits %dx%d", w, h, lim.MinWidth, lim.MinHeight)
	}
	return info, nil
}

// hasEndMarker checks the end of the stream: a JPEG ends with FF D9 (cameras sometimes pad
// with zero bytes after it), a PNG with its IEND chunk.
func hasEndMarker(format string, tail []byte) bool {
	switch format {
	case "jpeg":
		return bytes.HasSuffix(bytes.TrimRight(tail, "\x00"), jpegEOI)
	case "png":
		return bytes.HasSuffix(tail, pngIEND)
	}
	return false
}
