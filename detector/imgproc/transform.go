package imgproc

// Point is a position in pixels (sub-pixel).
type Point struct{ X, Y float64 }

// Box is an axis-aligned box in pixels, corners (X1,Y1) top-left and (X2,Y2) bottom-right.
type Box struct{ X1, Y1, X2, Y2 float64 }

// W is the width.
func (b Box) W() float64 { return b.X2 - b.X1 }

// H is the height.
func (b Box) H() float64 { return b.Y2 - b.Y1 }

// Clamp limits the box to a w×h image.
func (b Box) Clamp(w, h int) Box {
	c := func(v, hi float64) float64 { return max(0, min(v, hi)) }
	return Box{c(b.X1, float64(w)), c(b.Y1, float64(h)), c(b.X2, float64(w)), c(b.Y2, float64(h))}
}

// Transform maps model-input coordinates back to frame pixels. The chain is
// model → source Mat (undo the resize and padding) → frame (undo a reduced decode and add the
// offset of a crop). Letterbox fills the first step; WithFrame and WithOffset the second.
type Transform struct {
	ScaleX, ScaleY float64 // model pixels per source pixel
	PadX, PadY     float64 // model pixels of padding left and top
	SrcW, SrcH     int     // source Mat size
	DstW, DstH     int     // model input size
	ContentW       int     // model pixels covered by the image (the rest is padding)
	ContentH       int
	// FrameScaleX/Y are frame pixels per source pixel: 1 for a full decode, about Reduce for a
	// reduced one.
	FrameScaleX, FrameScaleY float64
	// OffsetX/Y is where the source's (0,0) lies in the frame, for a crop.
	OffsetX, OffsetY float64
}

// WithFrame says the source is a reduced decode of a frameW×frameH frame.
func (t Transform) WithFrame(frameW, frameH int) Transform {
	if t.SrcW > 0 && t.SrcH > 0 {
		t.FrameScaleX = float64(frameW) / float64(t.SrcW)
		t.FrameScaleY = float64(frameH) / float64(t.SrcH)
	}
	return t
}

// WithOffset says the source is a crop whose top-left is at (x, y) in frame pixels.
func (t Transform) WithOffset(x, y float64) Transform {
	t.OffsetX, t.OffsetY = x, y
	return t
}

func (t Transform) fs() (float64, float64) {
	fx, fy := t.FrameScaleX, t.FrameScaleY
	if fx == 0 {
		fx = 1
	}
	if fy == 0 {
		fy = 1
	}
	return fx, fy
}

// PointToFrame maps a model-input point to frame pixels.
func (t Transform) PointToFrame(p Point) Point {
	fx, fy := t.fs()
	return Point{
		X: t.OffsetX + (p.X-t.PadX)/t.ScaleX*fx,
		Y: t.OffsetY + (p.Y-t.PadY)/t.ScaleY*fy,
	}
}

// PointFromFrame maps a frame point to model-input coordinates.
func (t Transform) PointFromFrame(p Point) Point {
	fx, fy := t.fs()
	return Point{
		X: (p.X-t.OffsetX)/fx*t.ScaleX + t.PadX,
		Y: (p.Y-t.OffsetY)/fy*t.ScaleY + t.PadY,
	}
}

// ToFrame maps a model-input box to frame pixels (not clamped: use Box.Clamp).
func (t Transform) ToFrame(b Box) Box {
	p1 := t.PointToFrame(Point{b.X1, b.Y1})
	p2 := t.PointToFrame(Point{b.X2, b.Y2})
	return Box{p1.X, p1.Y, p2.X, p2.Y}
}

// FromFrame maps a frame box to model-input coordinates.
func (t Transform) FromFrame(b Box) Box {
	p1 := t.PointFromFrame(Point{b.X1, b.Y1})
	p2 := t.PointFromFrame(Point{b.X2, b.Y2})
	return Box{p1.X, p1.Y, p2.X, p2.Y}
}
