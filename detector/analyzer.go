// Package detector turns camera frames into pipeline.Detections: ONNX Runtime sessions
// (detector/ort), gocv preprocessing (detector/imgproc), output decoders (detector/decode),
// plate text rules (detector/platetext), the stage graph that ties them together, evidence
// rendering, and the detection worker (detector/worker) that runs it on FRAMES.
package detector

import (
	"context"

	"github.com/crossborder/offencecam/pipeline"
)

// View is one frame of a passage with its bytes.
type View struct {
	Frame pipeline.Frame
	Data  []byte
}

// Artifact is an evidence image rendered by the analyser (annotated frame with faces other
// than the driver's masked, plate crop, driver crop), with the SHA-256 of Data in hex.
type Artifact struct {
	Kind        string // pipeline.EvidenceAnnotated, EvidencePlateCrop, EvidenceDriverCrop
	View        string
	ContentType string
	Data        []byte
	SHA256      string
}

// Result is the analysis of one passage. Detection.Evidence is left empty: the worker fills it
// once the originals and artifacts are stored.
type Result struct {
	Detection pipeline.Detection
	Artifacts []Artifact
}

// Analyzer analyses all views of one passage together: the plate from the view that reads it
// best, the occupants from the view that shows them.
type Analyzer interface {
	Analyze(ctx context.Context, views []View) (Result, error)
}
