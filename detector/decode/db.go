package decode

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"sync"
)

// TextBox is a text region found by PaddleDB: a rotated rectangle as four corners
// (clockwise from top-left) in probability-map pixels, with its DB score.
type TextBox struct {
	Corners [4]Point
	Score   float64
}

// Bounds is the axis-aligned rectangle around the corners.
func (t TextBox) Bounds() Rect {
	r, _ := boundingRect(t.Corners[:])
	return r
}

// PaddleDB defaults, from PaddleOCR's DBPostProcess as configured for PP-OCRv4 det.
const (
	DBThresh        = 0.3
	DBBoxThresh     = 0.6
	DBUnclipRatio   = 1.5
	DBMaxCandidates = 1000
	dbMinSize       = 3
)

// PaddleDB is PaddleOCR's DB (differentiable binarisation) post-processing over the text
// probability map of a PP-OCR det model (output [1,1,h,w], passed here as prob with h, w):
//
//  1. binarise: pixel > thresh;
//  2. connected components, 8-connectivity (iterative flood fill, no recursion), at most
//     maxCandidates of them in raster order (<= 0: no limit);
//  3. per component, the minimum-area rotated rectangle of its pixel centres (rotating
//     calipers over the convex hull), as cv2.minAreaRect on the contour; dropped when its
//     short side is < 3;
//  4. score = mean probability of the pixels inside that rectangle ("fast" box score);
//     dropped when < boxThresh;
//  5. unclip: grow the rectangle by d = area*unclipRatio/perimeter on every side (what a
//     rounded pyclipper offset followed by minAreaRect gives for a rectangle); dropped when
//     the short side is then < 5;
//  6. corners clipped to [0,w]x[0,h], ordered clockwise from top-left.
//
// Boxes come back in reading order (top to bottom, then left to right), in map pixels: the
// caller scales them by frame/map size.
func PaddleDB(prob []float32, h, w int, thresh, boxThresh, unclipRatio float64, maxCandidates int) ([]TextBox, error) {
	if h <= 0 || w <= 0 || h > math.MaxInt32/w || len(prob) != h*w {
		return nil, fmt.Errorf("paddle-db: %d values for a %dx%d map: %w", len(prob), w, h, ErrShape)
	}
	if !finite(thresh) || !finite(boxThresh) || !(unclipRatio >= 0) || math.IsInf(unclipRatio, 1) {
		return nil, fmt.Errorf("paddle-db: thresholds thresh=%v box_thresh=%v unclip_ratio=%v are not usable", thresh, boxThresh, unclipRatio)
	}
	sc := dbScratchPool.Get().(*dbScratch)
	defer dbScratchPool.Put(sc)
	// open[i] is 1 for a text pixel not yet in a component: the raster scan for the next
	// component is then bytes.IndexByte, which skips the background many bytes at a time.
	open := grow(&sc.open, h*w)
	for i, v := range prob {
		open[i] = 0
		if float64(v) > thresh {
			open[i] = 1
		}
	}
	// lo[y], hi[y]: the leftmost and rightmost pixel of the current component in row y,
	// all that its convex hull needs; rows are reset after each component.
	lo, hi := grow(&sc.lo, h), grow(&sc.hi, h)
	for y := range lo {
		lo[y], hi[y] = w, -1
	}
	var boxes []TextBox
	stack := sc.stack[:0]
	defer func() { sc.stack = stack }()
	found := 0
	for pos := 0; ; pos++ {
		k := bytes.IndexByte(open[pos:], 1)
		if k < 0 {
			break
		}
		start := pos + k
		pos = start
		if maxCandidates > 0 && found >= maxCandidates {
			break
		}
		found++
		// Flood fill the component of start.
		minY, maxY := start/w, start/w
		stack = append(stack[:0], start)
		open[start] = 0
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			y := p / w
			x := p - y*w
			lo[y], hi[y] = min(lo[y], x), max(hi[y], x)
			minY, maxY = min(minY, y), max(maxY, y)
			x0, x1 := max(x-1, 0), min(x+1, w-1)
			for ny := max(y-1, 0); ny <= min(y+1, h-1); ny++ {
				row := open[ny*w : (ny+1)*w]
				for nx := x0; nx <= x1; nx++ {
					if row[nx] != 0 {
						row[nx] = 0
						stack = append(stack, ny*w+nx)
					}
				}
			}
		}
		tb, ok := dbBox(prob, h, w, minY, lo[minY:maxY+1], hi[minY:maxY+1], boxThresh, unclipRatio)
		for y := minY; y <= maxY; y++ {
			lo[y], hi[y] = w, -1
		}
		if ok {
			boxes = append(boxes, tb)
		}
	}
	sort.SliceStable(boxes, func(i, j int) bool {
		a, b := boxes[i].Corners[0], boxes[j].Corners[0]
		if math.Abs(a.Y-b.Y) >= 10 {
			return a.Y < b.Y
		}
		return a.X < b.X
	})
	return boxes, nil
}

// dbScratch is the reusable memory of one PaddleDB call: a map's mask is ~100–900 KB, and a
// fresh one per call, scanned a pixel at a time, was a large part of the decoder's time.
type dbScratch struct {
	open          []uint8
	stack, lo, hi []int
}

var dbScratchPool = sync.Pool{New: func() any { return new(dbScratch) }}

// grow returns (*s)[:n], reallocating only when the capacity is short.
func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}

// dbBox turns one component (rows minY… with their leftmost and rightmost pixel) into a
// TextBox, or reports it filtered out.
func dbBox(prob []float32, h, w, minY int, lo, hi []int, boxThresh, unclipRatio float64) (TextBox, bool) {
	pts := make([]Point, 0, 2*len(lo))
	for i := range lo {
		if hi[i] < 0 {
			continue // unreachable: an 8-connected component spans every row between its ends
		}
		pts = append(pts, Point{float64(lo[i]), float64(minY + i)})
		if hi[i] != lo[i] {
			pts = append(pts, Point{float64(hi[i]), float64(minY + i)})
		}
	}
	r, ok := minAreaRect(convexHull(pts))
	if !ok || math.Min(r.w, r.h) < dbMinSize {
		return TextBox{}, false
	}
	score := r.meanInside(prob, h, w)
	if !(score >= boxThresh) {
		return TextBox{}, false
	}
	d := r.w * r.h * unclipRatio / (2 * (r.w + r.h))
	r.w += 2 * d
	r.h += 2 * d
	if math.Min(r.w, r.h) < dbMinSize+2 {
		return TextBox{}, false
	}
	c := r.corners()
	for i := range c {
		c[i].X = math.Min(math.Max(c[i].X, 0), float64(w))
		c[i].Y = math.Min(math.Max(c[i].Y, 0), float64(h))
	}
	return TextBox{Corners: OrderCorners(c), Score: score}, true
}

// convexHull is Andrew's monotone chain; it returns the hull counter-clockwise (in a y-down
// frame: clockwise on screen) without repeating the first point. Collinear points are dropped.
func convexHull(pts []Point) []Point {
	if len(pts) < 3 {
		return append([]Point(nil), pts...)
	}
	p := append([]Point(nil), pts...)
	sort.Slice(p, func(i, j int) bool {
		if p[i].X != p[j].X {
			return p[i].X < p[j].X
		}
		return p[i].Y < p[j].Y
	})
	cross := func(o, a, b Point) float64 { return (a.X-o.X)*(b.Y-o.Y) - (a.Y-o.Y)*(b.X-o.X) }
	hull := make([]Point, 0, 2*len(p))
	for _, q := range p {
		for len(hull) >= 2 && cross(hull[len(hull)-2], hull[len(hull)-1], q) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, q)
	}
	lower := len(hull) + 1
	for i := len(p) - 2; i >= 0; i-- {
		q := p[i]
		for len(hull) >= lower && cross(hull[len(hull)-2], hull[len(hull)-1], q) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, q)
	}
	return hull[:len(hull)-1]
}

// rotRect is a rotated rectangle: centre, unit axis u (v is u turned 90 degrees), extents
// w along u and h along v.
type rotRect struct {
	cx, cy, ux, uy, w, h float64
}

// minAreaRect finds the minimum-area enclosing rectangle of a convex polygon with rotating
// calipers: one side of the optimum lies on a hull edge, so trying each edge direction is
// exact. Fewer than 3 hull points (a dot or a line) give no rectangle.
func minAreaRect(hull []Point) (rotRect, bool) {
	if len(hull) < 3 {
		return rotRect{}, false
	}
	best, bestArea := rotRect{}, math.Inf(1)
	for i := range hull {
		a, b := hull[i], hull[(i+1)%len(hull)]
		ex, ey := b.X-a.X, b.Y-a.Y
		l := math.Hypot(ex, ey)
		if l == 0 {
			continue
		}
		ux, uy := ex/l, ey/l
		minU, maxU, minV, maxV := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, p := range hull {
			pu := p.X*ux + p.Y*uy
			pv := -p.X*uy + p.Y*ux
			minU, maxU = math.Min(minU, pu), math.Max(maxU, pu)
			minV, maxV = math.Min(minV, pv), math.Max(maxV, pv)
		}
		area := (maxU - minU) * (maxV - minV)
		if area < bestArea {
			cu, cv := (minU+maxU)/2, (minV+maxV)/2
			bestArea = area
			best = rotRect{cx: cu*ux - cv*uy, cy: cu*uy + cv*ux, ux: ux, uy: uy, w: maxU - minU, h: maxV - minV}
		}
	}
	return best, !math.IsInf(bestArea, 1)
}

func (r rotRect) corners() [4]Point {
	hu, hv := r.w/2, r.h/2
	// v = (-uy, ux)
	var c [4]Point
	for i, s := range [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}} {
		du, dv := s[0]*hu, s[1]*hv
		c[i] = Point{r.cx + du*r.ux - dv*r.uy, r.cy + du*r.uy + dv*r.ux}
	}
	return c
}

// meanInside is the mean probability over pixels whose centres lie in the rectangle (with
// half a pixel of tolerance, as a filled polygon would include its boundary pixels).
func (r rotRect) meanInside(prob []float32, h, w int) float64 {
	c := r.corners()
	b, _ := boundingRect(c[:])
	x0, y0 := max(int(math.Floor(b.X)), 0), max(int(math.Floor(b.Y)), 0)
	x1, y1 := min(int(math.Ceil(b.X2())), w-1), min(int(math.Ceil(b.Y2())), h-1)
	const tol = 0.5
	sum, n := 0.0, 0
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			dx, dy := float64(x)-r.cx, float64(y)-r.cy
			pu := dx*r.ux + dy*r.uy
			pv := -dx*r.uy + dy*r.ux
			if math.Abs(pu) <= r.w/2+tol && math.Abs(pv) <= r.h/2+tol {
				sum += float64(prob[y*w+x])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}
