package imgproc

import (
	"errors"
	"fmt"
	"math"

	"gocv.io/x/gocv"
)

// DecodeOptions control Decode.
type DecodeOptions struct {
	// MaxPixels is the largest frame accepted, checked on the header (<= 0: DefaultMaxPixels).
	MaxPixels int64
	// Reduce decodes at 1/Reduce of the size: 1 (or 0) full, 2, 4 or 8. JPEG is reduced in the
	// DCT domain by libjpeg, far cheaper than a full decode; PNG is decoded then shrunk.
	Reduce int
}

// ErrInvalidReduce is returned for a Reduce other than 0, 1, 2, 4 or 8 (a programming error,
// not bad input).
var ErrInvalidReduce = errors.New("imgproc: reduce must be 1, 2, 4 or 8")

// Decode checks the header (size limit, supported kind, complete data) and only then decodes
// into a 3-channel BGR Mat, grey and IR images included, so every model gets 3 channels. The
// caller owns the Mat and must Close it. Info describes the file at full size; the Mat is
// about Info.Width/Reduce wide.
//
// EXIF orientation is ignored: roadside cameras are mounted fixed, and boxes, labels and the
// evidence must all be in the pixel grid the camera stored.
func Decode(data []byte, opts DecodeOptions) (gocv.Mat, Info, error) {
	var m gocv.Mat
	info, err := DecodeInto(data, opts, &m)
	if err != nil {
		return gocv.Mat{}, Info{}, err
	}
	return m, info, nil
}

// DecodeInto is Decode into *dst, a frame buffer kept across frames: a JPEG whose output
// size and type match dst's is decoded into dst's pixels, sparing a fresh full-frame
// allocation (a 1920×1080 BGR Mat is 6 MB, some 1500 page faults, about 0.7 ms); otherwise
// the old Mat (when dst holds one) is closed and *dst replaced. On error *dst is left as it
// was (its pixels may be overwritten). The caller owns and closes *dst.
func DecodeInto(data []byte, opts DecodeOptions, dst *gocv.Mat) (Info, error) {
	info, err := HeaderLimit(data, opts.MaxPixels)
	if err != nil {
		return Info{}, err
	}
	var flag gocv.IMReadFlag
	switch opts.Reduce {
	case 0, 1:
		opts.Reduce, flag = 1, gocv.IMReadColor
	case 2:
		flag = gocv.IMReadReducedColor2
	case 4:
		flag = gocv.IMReadReducedColor4
	case 8:
		flag = gocv.IMReadReducedColor8
	default:
		return Info{}, fmt.Errorf("%w, got %d", ErrInvalidReduce, opts.Reduce)
	}
	if err := checkComplete(data, info); err != nil {
		return Info{}, err
	}
	if info.Format == FormatJPEG {
		// libjpeg straight into the buffer: the same decoder and settings as OpenCV's, so
		// the same pixels, without OpenCV's copy of the compressed bytes (about 1 ms at
		// 1920×1080). When libjpeg refuses the data, OpenCV decodes it and reports why.
		w := (info.Width + opts.Reduce - 1) / opts.Reduce
		h := (info.Height + opts.Reduce - 1) / opts.Reduce
		if dst.Ptr() != nil && dst.Cols() == w && dst.Rows() == h && dst.Type() == gocv.MatTypeCV8UC3 && dst.IsContinuous() {
			if decodeJPEGInto(data, opts.Reduce, *dst) {
				return info, nil
			}
		} else if m, ok := decodeJPEG(data, info, opts.Reduce); ok {
			replace(dst, m)
			return info, nil
		}
	}
	mat, err := gocv.IMDecode(data, flag|gocv.IMReadIgnoreOrientation)
	if err != nil {
		return Info{}, newErr(ErrCorrupt, "%s %dx%d: decode: %v", info.Format, info.Width, info.Height, err)
	}
	if mat.Empty() {
		mat.Close()
		return Info{}, newErr(ErrCorrupt, "%s %dx%d: the decoder rejected the data", info.Format, info.Width, info.Height)
	}
	// libjpeg rounds reduced sizes up, OpenCV's resize for other formats rounds down.
	r := float64(opts.Reduce)
	okW := mat.Cols() == int(math.Ceil(float64(info.Width)/r)) || mat.Cols() == info.Width/opts.Reduce
	okH := mat.Rows() == int(math.Ceil(float64(info.Height)/r)) || mat.Rows() == info.Height/opts.Reduce
	if !okW || !okH || mat.Channels() != 3 || mat.Type() != gocv.MatTypeCV8UC3 {
		got := fmt.Sprintf("%dx%d with %d channels", mat.Cols(), mat.Rows(), mat.Channels())
		mat.Close()
		return Info{}, newErr(ErrCorrupt, "%s header says %dx%d, decoded (reduce %d) %s", info.Format, info.Width, info.Height, opts.Reduce, got)
	}
	replace(dst, mat)
	return info, nil
}

func replace(dst *gocv.Mat, m gocv.Mat) {
	if dst.Ptr() != nil {
		dst.Close()
	}
	*dst = m
}

// ChooseReduce picks the largest reduction (8, 4, 2, else 1) after which the frame still has
// at least the model's input resolution along both axes, so a scene model loses nothing to the
// reduced decode: a 4000×3000 frame for a 416×416 model gives 4 (1000×750), 1920×1080 gives 2.
// Both axes (not only the one limiting a letterbox) keep the resolution, so the rule holds for
// stretch resizes too and leaves headroom for crops taken from the reduced image.
func ChooseReduce(info Info, modelW, modelH int) int {
	if modelW <= 0 || modelH <= 0 {
		return 1
	}
	for _, r := range []int{8, 4, 2} {
		if info.Width/r >= modelW && info.Height/r >= modelH {
			return r
		}
	}
	return 1
}
