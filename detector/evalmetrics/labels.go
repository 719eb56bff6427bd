// Package evalmetrics is the arithmetic behind `offencecam eval`: parsing YOLO label files,
// data.yaml class names and plate ground-truth files, and computing per-class precision,
// recall and AP@0.5, plate exact-match accuracy and character error rate. It runs no model.
package evalmetrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseError is a problem at one line of a label file.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Label is one YOLO ground-truth object, coordinates normalised to the image size.
type Label struct {
	Class        int
	CX, CY, W, H float64
	Line         int  // line in the label file, for messages
	FromPolygon  bool // a segmentation polygon reduced to its bounding box
}

// Box is an axis-aligned box, top-left corner plus size, in pixels.
type Box struct{ X, Y, W, H float64 }

// Box converts the label to pixels of an imgW x imgH image.
func (l Label) Box(imgW, imgH int) Box {
	w, h := l.W*float64(imgW), l.H*float64(imgH)
	return Box{X: l.CX*float64(imgW) - w/2, Y: l.CY*float64(imgH) - h/2, W: w, H: h}
}

// Normalised coordinates may overshoot [0,1] a little (export rounding, boxes drawn to the
// image edge); anything further out is a broken file.
const coordSlack = 0.01

// ParseYOLOLabels reads a YOLO label file: one object per line, "class cx cy w h" with
// coordinates normalised to the image. A segmentation line "class x1 y1 x2 y2 x3 y3 ..."
// (three or more vertices) is accepted and reduced to its bounding box. Blank lines and lines
// starting with '#' are skipped. Errors are *ParseError naming the line.
func ParseYOLOLabels(r io.Reader) ([]Label, error) {
	var out []Label
	err := eachLine(r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) != 5 && (len(f) < 7 || len(f)%2 == 0) {
			return &ParseError{n, fmt.Sprintf("%d fields, want 5 (class cx cy w h) or a polygon (class and 3+ x y pairs)", len(f))}
		}
		cls, err := parseClass(f[0])
		if err != nil {
			return &ParseError{n, err.Error()}
		}
		v := make([]float64, len(f)-1)
		for i, s := range f[1:] {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return &ParseError{n, fmt.Sprintf("field %d %q is not a finite number", i+2, s)}
			}
			if x < -coordSlack || x > 1+coordSlack {
				return &ParseError{n, fmt.Sprintf("field %d = %v is outside [0,1]: labels must be normalised", i+2, x)}
			}
			v[i] = x
		}
		l := Label{Class: cls, Line: n}
		if len(v) == 4 {
			l.CX, l.CY, l.W, l.H = v[0], v[1], v[2], v[3]
		} else {
			x1, y1, x2, y2 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
			for i := 0; i < len(v); i += 2 {
				x1, x2 = math.Min(x1, v[i]), math.Max(x2, v[i])
				y1, y2 = math.Min(y1, v[i+1]), math.Max(y2, v[i+1])
			}
			l.CX, l.CY, l.W, l.H = (x1+x2)/2, (y1+y2)/2, x2-x1, y2-y1
			l.FromPolygon = true
		}
		if !(l.W > 0 && l.H > 0) {
			return &ParseError{n, fmt.Sprintf("box has no area (w=%v h=%v)", l.W, l.H)}
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

func parseClass(s string) (int, error) {
	if c, err := strconv.Atoi(s); err == nil {
		if c < 0 {
			return 0, fmt.Errorf("class %d is negative", c)
		}
		return c, nil
	}
	// Some exporters write classes as floats ("0.0").
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("class %q is not a non-negative integer", s)
	}
	return int(f), nil
}

// eachLine calls fn for every non-blank, non-comment line (1-based numbers), stopping at the
// first error. A UTF-8 byte-order mark is ignored; lines may end in \r\n.
func eachLine(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		line := strings.TrimSpace(string(b))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &ParseError{n + 1, err.Error()}
	}
	return nil
}

// LabelPathFor is the YOLO convention for where an image's label file lives: the last
// "images" directory in the path replaced by "labels", extension replaced by ".txt". When the
// path has no "images" directory the label sits beside the image.
func LabelPathFor(imagePath string) string {
	dir, file := filepath.Split(imagePath)
	base := strings.TrimSuffix(file, filepath.Ext(file)) + ".txt"
	parts := strings.Split(filepath.ToSlash(filepath.Clean(dir)), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i] == "images" {
			parts[i] = "labels"
			return filepath.Join(filepath.FromSlash(strings.Join(parts, "/")), base)
		}
	}
	return filepath.Join(dir, base)
}

// ParseDataYAML reads class names from an Ultralytics data.yaml: `names` as a list
// (`names: [mobile, seatbelt, windshield]`) or as a map from class id to name
// (`names: {0: mobile, 1: seatbelt}`); a map must cover 0..n-1. When `nc` is present it must
// equal the number of names.
func ParseDataYAML(r io.Reader) ([]string, error) {
	var doc struct {
		NC    *int      `yaml:"nc"`
		Names yaml.Node `yaml:"names"`
	}
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("data.yaml: empty document")
		}
		return nil, fmt.Errorf("data.yaml: %w", err)
	}
	var names []string
	switch doc.Names.Kind {
	case yaml.SequenceNode:
		if err := doc.Names.Decode(&names); err != nil {
			return nil, fmt.Errorf("data.yaml: names (line %d): %w", doc.Names.Line, err)
		}
	case yaml.MappingNode:
		var m map[int]string
		if err := doc.Names.Decode(&m); err != nil {
			return nil, fmt.Errorf("data.yaml: names (line %d): keys must be class ids: %w", doc.Names.Line, err)
		}
		names = make([]string, len(m))
		for id, name := range m {
			if id < 0 || id >= len(m) {
				return nil, fmt.Errorf("data.yaml: names (line %d): class ids must be 0..%d, got %d", doc.Names.Line, len(m)-1, id)
			}
			names[id] = name
		}
	case 0:
		return nil, fmt.Errorf("data.yaml: no names")
	default:
		return nil, fmt.Errorf("data.yaml: names (line %d) must be a list or a map of id: name", doc.Names.Line)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("data.yaml: names is empty")
	}
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			return nil, fmt.Errorf("data.yaml: class %d has an empty name", i)
		}
	}
	if doc.NC != nil && *doc.NC != len(names) {
		return nil, fmt.Errorf("data.yaml: nc is %d but names has %d entries", *doc.NC, len(names))
	}
	return names, nil
}

// PlateLabel is one line of a plate ground-truth file: the image, the plate box in pixels and
// the plate text.
type PlateLabel struct {
	File string
	Box  Box
	Text string
	Line int
}

// ParsePlateLabels reads plate ground truth, one plate per line: `file x y w h TEXT`
// separated by tabs or spaces (x, y the top-left corner, pixels). Text made of several
// fields ("627 WWI") is joined with single spaces; eval compares normalised text. Errors are
// *ParseError naming the line.
func ParsePlateLabels(r io.Reader) ([]PlateLabel, error) {
	var out []PlateLabel
	err := eachLine(r, func(n int, line string) error {
		f := strings.Fields(line)
		if len(f) < 6 {
			return &ParseError{n, fmt.Sprintf("%d fields, want 6: file x y w h TEXT", len(f))}
		}
		var v [4]float64
		for i := range v {
			x, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return &ParseError{n, fmt.Sprintf("field %d %q is not a finite number", i+2, f[i+1])}
			}
			v[i] = x
		}
		if !(v[2] > 0 && v[3] > 0) {
			return &ParseError{n, fmt.Sprintf("plate box has no area (w=%v h=%v)", v[2], v[3])}
		}
		out = append(out, PlateLabel{
			File: f[0],
			Box:  Box{X: v[0], Y: v[1], W: v[2], H: v[3]},
			Text: strings.Join(f[5:], " "),
			Line: n,
		})
		return nil
	})
	return out, err
}
