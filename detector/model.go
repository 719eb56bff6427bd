package detector

import (
	"context"
	"fmt"
	"os"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/decode"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/detector/ort"
	"github.com/crossborder/offencecam/models"
)

// model is one loaded model of the graph: its manifest, its session and the role it plays.
type model struct {
	m    *models.Manifest
	s    *ort.Session
	role string
	// decoded parameters
	strides  []int
	alphabet string
	pad      byte
	dict     []string
	classes  map[int]string // class id -> role
}

// loadModel opens a session for the manifest named name and reads its decoder parameters.
func loadModel(cat models.Catalog, cacheDir, name, role string, opts ort.Options, so []ort.SessionOption) (*model, error) {
	m, ok := cat[name]
	if !ok {
		return nil, fmt.Errorf("detector: model %q for %s: no such manifest (known: %v)", name, role, cat.Names())
	}
	if m.Kind != models.KindModel {
		return nil, fmt.Errorf("detector: %q for %s is a %s, not a model", name, role, m.Kind)
	}
	cache := models.Cache{Dir: cacheDir}
	path := cache.Path(m.ModelFile())
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("detector: model %s for %s: %w (run `offencecam models fetch`)", name, role, err)
	}
	md := &model{m: m, role: role, classes: map[int]string{}}
	for _, c := range m.Classes {
		if c.Role != "" {
			md.classes[c.ID] = c.Role
		}
	}
	if m.Decoder == nil {
		return nil, fmt.Errorf("detector: model %s: manifest has no decoder", name)
	}
	p := m.Decoder.Params
	switch m.Decoder.Type {
	case models.DecoderYOLOX:
		md.strides = intList(p["strides"], []int{8, 16, 32})
	case models.DecoderYuNet:
		md.strides = intList(p["strides"], decode.YuNetStrides)
	case models.DecoderFastPlate:
		md.alphabet, _ = p["alphabet"].(string)
		padStr, _ := p["pad_char"].(string)
		if md.alphabet == "" || len(padStr) != 1 {
			return nil, fmt.Errorf("detector: model %s: decoder params need alphabet and a one-character pad_char", name)
		}
		md.pad = padStr[0]
	case models.DecoderCTC:
		role, _ := p["dictionary_role"].(string)
		if role == "" {
			role = models.FileRoleDictionary
		}
		f, ok := m.FileByRole(role)
		if !ok {
			return nil, fmt.Errorf("detector: model %s: no %s file", name, role)
		}
		r, err := os.Open(cache.Path(f))
		if err != nil {
			return nil, fmt.Errorf("detector: model %s: dictionary: %w", name, err)
		}
		useSpace, _ := p["use_space_char"].(bool)
		md.dict, err = decode.LoadDict(r, useSpace)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("detector: model %s: dictionary: %w", name, err)
		}
	}
	s, err := ort.NewSession(m, path, opts, so...)
	if err != nil {
		return nil, fmt.Errorf("detector: %s model: %w", role, err)
	}
	md.s = s
	return md, nil
}

func intList(v any, def []int) []int {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return def
	}
	out := make([]int, 0, len(l))
	for _, e := range l {
		switch n := e.(type) {
		case int:
			out = append(out, n)
		case float64:
			out = append(out, int(n))
		default:
			return def
		}
	}
	return out
}

// inputSize is the model input size for a srcW×srcH image.
func (md *model) inputSize(srcW, srcH int) (int, int, error) {
	return imgproc.InputSize(md.m.Input, srcW, srcH)
}

// feed writes img into the session's input (shape chosen for the image) and returns the
// transform from model input back to img's pixels.
func (md *model) feed(img gocv.Mat) (imgproc.Transform, error) {
	w, h, err := md.inputSize(img.Cols(), img.Rows())
	if err != nil {
		return imgproc.Transform{}, fmt.Errorf("model %s: %w", md.m.Name, err)
	}
	return md.feedAt(img, w, h)
}

// feedAt is feed at an explicit input size (models with dynamic H and W).
func (md *model) feedAt(img gocv.Mat, w, h int) (imgproc.Transform, error) {
	in := md.m.Input
	if in.Layout == "NHWC" {
		if err := md.s.SetInputShape(1, int64(h), int64(w), 3); err != nil {
			return imgproc.Transform{}, err
		}
		return imgproc.ResizeNHWCTo(img, md.s.InputUint8(), in, w, h)
	}
	c := int64(3)
	if in.ColorOrder == "GRAY" {
		c = 1
	}
	if err := md.s.SetInputShape(1, c, int64(h), int64(w)); err != nil {
		return imgproc.Transform{}, err
	}
	return imgproc.LetterboxTo(img, md.s.InputFloat32(), in, w, h)
}

// fdet is a detection in frame pixels.
type fdet struct {
	Box        imgproc.Box
	Score      float64
	Class      int
	Role       string
	Corners    [4]imgproc.Point
	HasCorners bool
	Landmarks  []imgproc.Point
}

func rectBox(r decode.Rect) imgproc.Box { return imgproc.Box{X1: r.X, Y1: r.Y, X2: r.X2(), Y2: r.Y2()} }

// toFrame maps decoder detections through t.
func (md *model) toFrame(dets []decode.Det, t imgproc.Transform) []fdet {
	out := make([]fdet, 0, len(dets))
	for _, d := range dets {
		f := fdet{Box: t.ToFrame(rectBox(d.Box)), Score: d.Score, Class: d.Class, Role: md.classes[d.Class], HasCorners: d.HasCorners}
		for i, c := range d.Corners {
			f.Corners[i] = t.PointToFrame(imgproc.Point{X: c.X, Y: c.Y})
		}
		for _, l := range d.Landmarks {
			f.Landmarks = append(f.Landmarks, t.PointToFrame(imgproc.Point{X: l.X, Y: l.Y}))
		}
		out = append(out, f)
	}
	return out
}

// detect runs a detector model on img and returns its detections (after NMS) in the
// coordinates t maps to; scoreThr filters before NMS.
func (md *model) detect(ctx context.Context, img gocv.Mat, scoreThr, nms float64, frameOf func(imgproc.Transform) imgproc.Transform) ([]fdet, error) {
	t, err := md.feed(img)
	if err != nil {
		return nil, err
	}
	if err := md.s.Run(ctx); err != nil {
		return nil, err
	}
	var dets []decode.Det
	switch md.m.Decoder.Type {
	case models.DecoderYOLOX:
		out, shape := md.s.Output(0)
		dets, err = decode.YOLOXMultiLabel(out, shape, t.DstW, t.DstH, md.strides, scoreThr)
	case models.DecoderYOLOv8:
		out, shape := md.s.Output(0)
		dets, err = decode.YOLOv8MultiLabel(out, shape, len(md.m.Classes), scoreThr)
	case models.DecoderNMSEnd2End:
		out, shape := md.s.Output(0)
		dets, err = decode.NMSEnd2End(out, shape, scoreThr)
	case models.DecoderLPDYuNet:
		loc, _ := md.s.Output(0)
		conf, _ := md.s.Output(1)
		iou, _ := md.s.Output(2)
		dets, err = decode.LPDYuNet(loc, conf, iou, t.DstW, t.DstH, scoreThr)
	case models.DecoderYuNet:
		outs := make(map[string][]float32, md.s.NumOutputs())
		for i := 0; i < md.s.NumOutputs(); i++ {
			d, _ := md.s.Output(i)
			outs[md.s.OutputName(i)] = d
		}
		dets, err = decode.YuNet(outs, t.DstW, t.DstH, md.strides, scoreThr)
	default:
		return nil, fmt.Errorf("model %s: decoder %s is not a detector", md.m.Name, md.m.Decoder.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", md.m.Name, err)
	}
	classAware := md.m.Decoder.Type != models.DecoderLPDYuNet && md.m.Decoder.Type != models.DecoderYuNet
	dets = decode.NMS(dets, nms, classAware)
	if frameOf != nil {
		t = frameOf(t)
	}
	return md.toFrame(dets, t), nil
}

// scoreThreshold is the manifest's default score threshold, or def.
func (md *model) scoreThreshold(def float64) float64 {
	if md.m.Thresholds != nil && md.m.Thresholds.Score > 0 {
		return md.m.Thresholds.Score
	}
	return def
}

func (md *model) nmsThreshold(def float64) float64 {
	if md.m.Thresholds != nil && md.m.Thresholds.NMS > 0 {
		return md.m.Thresholds.NMS
	}
	return def
}

func (md *model) hasRole(role string) bool {
	for _, r := range md.classes {
		if r == role {
			return true
		}
	}
	return false
}

func (md *model) close() error {
	if md == nil || md.s == nil {
		return nil
	}
	return md.s.Close()
}
