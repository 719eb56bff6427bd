// Package imgproc turns camera image bytes into model input: a header check that rejects bad
// input before any pixel is decoded, gocv decoding (reduced for the scene model), letterbox /
// resize with colour order and normalisation written straight into an ONNX tensor buffer, the
// transform from model coordinates back to frame pixels, crops, perspective rectification and
// JPEG encoding for evidence.
package imgproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Kinds of bad input. Test with errors.Is; every error this package returns for bad bytes
// wraps exactly one of them (an *Error), so callers can quarantine with Reason(err).
var (
	ErrEmpty         = errors.New("empty input")
	ErrUnknownFormat = errors.New("unknown image format")
	ErrTruncated     = errors.New("truncated image")
	ErrTooLarge      = errors.New("image too large")
	ErrUnsupported   = errors.New("unsupported image")
	ErrCorrupt       = errors.New("corrupt image")
)

// Error is a bad-input error: Kind is one of the Err* sentinels, Msg the details.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return "imgproc: " + e.Kind.Error() + ": " + e.Msg }

// Unwrap lets errors.Is(err, ErrTruncated) work.
func (e *Error) Unwrap() error { return e.Kind }

func newErr(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Reason is a short, stable label for metrics and quarantine metadata ("truncated", …), or
// "" when err is not a bad-input error of this package.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrUnknownFormat):
		return "unknown_format"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	}
	return ""
}

// Image formats.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
)

// Limits on what Header accepts.
const (
	// DefaultMaxPixels is 100 MP: well above any roadside camera (2–12 MP), well below what
	// would let one upload exhaust a worker's memory (3 bytes a pixel, plus copies).
	DefaultMaxPixels int64 = 100_000_000
	// MaxSide is the longest side accepted whatever the pixel limit: a 1×10⁸ strip is no photo.
	MaxSide = 65535
)

// Info is what the header says, read without decoding a pixel.
type Info struct {
	Format   string // "jpeg" or "png"
	Width    int
	Height   int
	Channels int // components in the file: 1 (grey / IR) or 3
	BitDepth int // bits per sample

	// bodyStart is the offset where the image data begins (JPEG: after the SOF; PNG: after
	// IHDR); the completeness check looks for the end marker only beyond it, so an EXIF
	// thumbnail's own end marker does not count.
	bodyStart int
}

// Pixels is Width×Height.
func (i Info) Pixels() int64 { return int64(i.Width) * int64(i.Height) }

var pngSig = []byte("\x89PNG\r\n\x1a\n")

// Header sniffs the format from the magic bytes and reads the dimensions, rejecting images
// over DefaultMaxPixels.
func Header(data []byte) (Info, error) { return HeaderLimit(data, DefaultMaxPixels) }

// HeaderLimit is Header with a pixel limit (<= 0: DefaultMaxPixels). It reads only the
// header, so a PNG claiming 100000×100000 is rejected without allocating its pixels.
//
// Accepted: 8-bit JPEG (baseline, extended, progressive; 1 or 3 components) and 8-bit or
// lower PNG (grey, RGB, palette). Rejected as ErrUnsupported, deliberately, rather than
// converted: 16-bit PNG and 12-bit JPEG (no camera in the fleet sends them; converting would
// hide a misconfigured camera), images with an alpha channel (grey+alpha, RGBA PNG: alpha
// means a composited or edited image, not a camera frame) and CMYK/YCCK JPEG.
func HeaderLimit(data []byte, maxPixels int64) (Info, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	var (
		info Info
		err  error
	)
	switch {
	case len(data) == 0:
		return Info{}, newErr(ErrEmpty, "0 bytes")
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		info, err = jpegHeader(data)
	case len(data) >= len(pngSig) && bytes.Equal(data[:len(pngSig)], pngSig):
		info, err = pngHeader(data)
	case len(data) < len(pngSig) && (bytes.HasPrefix(pngSig, data) || bytes.HasPrefix([]byte{0xFF, 0xD8, 0xFF}, data)):
		return Info{}, newErr(ErrTruncated, "%d bytes, shorter than an image signature", len(data))
	default:
		return Info{}, newErr(ErrUnknownFormat, "not JPEG or PNG (starts with % x)", data[:min(len(data), 8)])
	}
	if err != nil {
		return Info{}, err
	}
	if info.Width <= 0 || info.Height <= 0 {
		return Info{}, newErr(ErrCorrupt, "%s header says %dx%d", info.Format, info.Width, info.Height)
	}
	if info.Width > MaxSide || info.Height > MaxSide {
		return Info{}, newErr(ErrTooLarge, "%s is %dx%d, a side over %d", info.Format, info.Width, info.Height, MaxSide)
	}
	if info.Pixels() > maxPixels {
		return Info{}, newErr(ErrTooLarge, "%s is %dx%d = %d pixels, limit %d", info.Format, info.Width, info.Height, info.Pixels(), maxPixels)
	}
	return info, nil
}

func jpegHeader(data []byte) (Info, error) {
	pos := 2
	for {
		// Markers may be preceded by fill bytes (0xFF); tolerate stray bytes before a marker as
		// libjpeg does (it warns and skips them).
		for pos < len(data) && data[pos] != 0xFF {
			pos++
		}
		for pos < len(data) && data[pos] == 0xFF {
			pos++
		}
		if pos >= len(data) {
			return Info{}, newErr(ErrTruncated, "jpeg: no frame header (SOF) in %d bytes", len(data))
		}
		marker := data[pos]
		pos++
		switch {
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			continue // standalone markers carry no length
		case marker == 0xD8:
			return Info{}, newErr(ErrCorrupt, "jpeg: second start-of-image marker at %d", pos-2)
		case marker == 0xD9:
			return Info{}, newErr(ErrCorrupt, "jpeg: end of image before any frame header")
		case marker == 0xDA:
			return Info{}, newErr(ErrCorrupt, "jpeg: scan data before any frame header")
		case marker == 0x00:
			return Info{}, newErr(ErrCorrupt, "jpeg: stray 0xFF00 at %d before the frame header", pos-2)
		}
		if pos+2 > len(data) {
			return Info{}, newErr(ErrTruncated, "jpeg: segment 0x%02X length cut off", marker)
		}
		segLen := int(binary.BigEndian.Uint16(data[pos:]))
		if segLen < 2 {
			return Info{}, newErr(ErrCorrupt, "jpeg: segment 0x%02X has length %d", marker, segLen)
		}
		if isSOF(marker) {
			if pos+segLen > len(data) {
				return Info{}, newErr(ErrTruncated, "jpeg: frame header cut off")
			}
			seg := data[pos+2 : pos+segLen]
			if len(seg) < 6 {
				return Info{}, newErr(ErrCorrupt, "jpeg: frame header of %d bytes", len(seg))
			}
			info := Info{
				Format:    FormatJPEG,
				BitDepth:  int(seg[0]),
				Height:    int(binary.BigEndian.Uint16(seg[1:])),
				Width:     int(binary.BigEndian.Uint16(seg[3:])),
				Channels:  int(seg[5]),
				bodyStart: pos + segLen,
			}
			if len(seg) < 6+3*info.Channels {
				return Info{}, newErr(ErrCorrupt, "jpeg: frame header too short for %d components", info.Channels)
			}
			if err := jpegSupported(marker, info); err != nil {
				return Info{}, err
			}
			return info, nil
		}
		pos += segLen
	}
}

// isSOF: C0–CF are frame headers except DHT (C4), JPG (C8) and DAC (CC).
func isSOF(m byte) bool { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC }

func jpegSupported(marker byte, info Info) error {
	switch marker {
	case 0xC0, 0xC1, 0xC2, 0xC9, 0xCA: // baseline, extended, progressive (Huffman or arithmetic)
	case 0xC3, 0xCB:
		return newErr(ErrUnsupported, "jpeg: lossless JPEG (SOF 0x%02X)", marker)
	default:
		return newErr(ErrUnsupported, "jpeg: hierarchical JPEG (SOF 0x%02X)", marker)
	}
	if info.BitDepth != 8 {
		return newErr(ErrUnsupported, "jpeg: %d-bit samples (only 8-bit)", info.BitDepth)
	}
	switch info.Channels {
	case 1, 3:
	case 4:
		return newErr(ErrUnsupported, "jpeg: 4 components (CMYK/YCCK)")
	default:
		return newErr(ErrCorrupt, "jpeg: %d components", info.Channels)
	}
	return nil
}

func pngHeader(data []byte) (Info, error) {
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, length+type, IHDR data, CRC
	if len(data) < ihdrEnd {
		return Info{}, newErr(ErrTruncated, "png: %d bytes, IHDR needs %d", len(data), ihdrEnd)
	}
	if binary.BigEndian.Uint32(data[8:]) != 13 || string(data[12:16]) != "IHDR" {
		return Info{}, newErr(ErrCorrupt, "png: first chunk is %q of %d bytes, not a 13-byte IHDR", data[12:16], binary.BigEndian.Uint32(data[8:]))
	}
	ihdr := data[16:29]
	if crc32.ChecksumIEEE(data[12:29]) != binary.BigEndian.Uint32(data[29:]) {
		return Info{}, newErr(ErrCorrupt, "png: IHDR checksum mismatch")
	}
	w, h := binary.BigEndian.Uint32(ihdr[0:]), binary.BigEndian.Uint32(ihdr[4:])
	if w > 1<<31-1 || h > 1<<31-1 {
		return Info{}, newErr(ErrCorrupt, "png: dimensions %dx%d out of range", w, h)
	}
	depth, ctype, interlace := int(ihdr[8]), ihdr[9], ihdr[12]
	info := Info{Format: FormatPNG, Width: int(w), Height: int(h), BitDepth: depth, bodyStart: ihdrEnd}
	validDepth := func(ok ...int) bool {
		for _, d := range ok {
			if depth == d {
				return true
			}
		}
		return false
	}
	switch ctype {
	case 0:
		info.Channels = 1
		if !validDepth(1, 2, 4, 8, 16) {
			return Info{}, newErr(ErrCorrupt, "png: grey image with bit depth %d", depth)
		}
	case 2:
		info.Channels = 3
		if !validDepth(8, 16) {
			return Info{}, newErr(ErrCorrupt, "png: RGB image with bit depth %d", depth)
		}
	case 3:
		info.Channels = 3 // palette entries are RGB
		if !validDepth(1, 2, 4, 8) {
			return Info{}, newErr(ErrCorrupt, "png: palette image with bit depth %d", depth)
		}
	case 4:
		return Info{}, newErr(ErrUnsupported, "png: grey+alpha image (alpha channel)")
	case 6:
		return Info{}, newErr(ErrUnsupported, "png: RGBA image (alpha channel)")
	default:
		return Info{}, newErr(ErrCorrupt, "png: colour type %d", ctype)
	}
	if depth == 16 {
		return Info{}, newErr(ErrUnsupported, "png: 16-bit samples (only 8-bit or less)")
	}
	if interlace > 1 {
		return Info{}, newErr(ErrCorrupt, "png: interlace method %d", interlace)
	}
	return info, nil
}

// checkComplete rejects data whose end marker is missing: libjpeg decodes a truncated JPEG
// into a half-grey picture with only a warning, which would reach the models as a real frame.
func checkComplete(data []byte, info Info) error {
	switch info.Format {
	case FormatJPEG:
		// In entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so FF D9
		// after the frame header can only be the end-of-image marker.
		if bytes.LastIndex(data, []byte{0xFF, 0xD9}) < info.bodyStart {
			return newErr(ErrTruncated, "jpeg: no end-of-image marker (%d bytes)", len(data))
		}
	case FormatPNG:
		if bytes.LastIndex(data, []byte("IEND")) < info.bodyStart {
			return newErr(ErrTruncated, "png: no IEND chunk (%d bytes)", len(data))
		}
	}
	return nil
}
