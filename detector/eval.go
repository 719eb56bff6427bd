package detector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/pipeline"
)

// ClassEval is the score of one labelled class of a YOLO set.
type ClassEval struct {
	evalmetrics.ClassMetrics
	// Note says why a class has no predictions (no model for it), so a zero is not misread.
	Note string `json:"note,omitempty"`
}

// SetEval is the result of EvalSet.
type SetEval struct {
	Images  int                  `json:"images"`
	Classes map[string]ClassEval `json:"classes"`
	Order   []string             `json:"-"` // class names in data.yaml order
	Errors  []string             `json:"errors,omitempty"`
	// ImageLevel scores the largest vehicle's driver per image, as a reviewer sees a case:
	// "phone" (labelled: the image has a phone box; predicted: a phone offence) and
	// "seatbelt_worn" (labelled: the image has a seatbelt box; predicted: the driver's belt
	// judged worn). A key is present when data.yaml has the class. Box-level figures cannot
	// score the occupant classifier, which draws no boxes.
	ImageLevel map[string]evalmetrics.BinaryMetrics `json:"image_level,omitempty"`
}

// Image-level keys of SetEval.ImageLevel.
const (
	ImagePhone        = "phone"
	ImageSeatbeltWorn = "seatbelt_worn"
)

// PlateEval is the result of EvalPlates.
type PlateEval struct {
	evalmetrics.PlateMetrics
	Reads []PlateReadEval `json:"-"`
}

// PlateReadEval is one labelled plate and what the pipeline read.
type PlateReadEval struct {
	File, Ref, Hyp string
	Err            error
}

// Which predictions stand for which dataset class names: the public roadside sets call a
// phone "mobile" (or "phone", "cell phone").
var classAliases = map[string]string{
	"mobile": "phone", "phone": "phone", "cell phone": "phone", "cellphone": "phone", "mobile_phone": "phone",
	"windshield": "windshield", "windscreen": "windshield",
	"seatbelt": "seatbelt", "seat_belt": "seatbelt", "belt": "seatbelt",
	"no_seatbelt": "no_seatbelt", "noseatbelt": "no_seatbelt", "no-seatbelt": "no_seatbelt",
	"car": "vehicle", "vehicle": "vehicle",
}

// imageFiles lists the JPEG and PNG files under dir (recursively), sorted.
func imageFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && IsImageName(p) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// IsImageName reports whether a file name has an image extension analyze and eval read.
func IsImageName(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// EvalSet scores the graph on a YOLO-format set: dir holds data.yaml (class names) and
// images/ with labels/ beside it. Predictions are taken from every box the graph produced
// (phones, windshields, seatbelts) at any score, so AP covers the whole curve; precision and
// recall use the configured thresholds.
func (g *Graph) EvalSet(ctx context.Context, dir string, progress func(done, total int)) (SetEval, error) {
	f, err := os.Open(filepath.Join(dir, "data.yaml"))
	if err != nil {
		return SetEval{}, fmt.Errorf("eval: %w", err)
	}
	names, err := evalmetrics.ParseDataYAML(f)
	f.Close()
	if err != nil {
		return SetEval{}, fmt.Errorf("eval: %s: %w", dir, err)
	}
	imgDir := filepath.Join(dir, "images")
	if _, err := os.Stat(imgDir); err != nil {
		imgDir = dir
	}
	files, err := imageFiles(imgDir)
	if err != nil {
		return SetEval{}, fmt.Errorf("eval: %w", err)
	}
	out := SetEval{Classes: map[string]ClassEval{}, Order: names}
	var preds []evalmetrics.Prediction
	var gts []evalmetrics.GroundTruth
	imageLevel := map[string][]evalmetrics.Outcome{}
	for i, p := range files {
		if progress != nil {
			progress(i, len(files))
		}
		if err := ctx.Err(); err != nil {
			return SetEval{}, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			out.Errors = append(out.Errors, err.Error())
			continue
		}
		res, details, err := g.AnalyzeDetailed(ctx, []View{{Frame: pipeline.Frame{Key: p}, Data: data}}, AnalyzeOptions{NoRender: true})
		if err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		out.Images++
		d := details[0]
		var labels []evalmetrics.Label
		lf, err := os.Open(evalmetrics.LabelPathFor(p))
		if err == nil {
			labels, err = evalmetrics.ParseYOLOLabels(lf)
			lf.Close()
			if err != nil {
				out.Errors = append(out.Errors, fmt.Sprintf("%s: %v", p, err))
			}
			for _, l := range labels {
				gts = append(gts, evalmetrics.GroundTruth{Image: p, Class: l.Class, Box: l.Box(d.Width, d.Height)})
			}
		}
		for k, o := range g.imageOutcomes(names, labels, res.Detection) {
			imageLevel[k] = append(imageLevel[k], o)
		}
		for ci, name := range names {
			var boxes []Scored
			switch classAliases[strings.ToLower(name)] {
			case "phone":
				boxes = d.Phones
			case "windshield":
				boxes = d.Windshields
			case "vehicle":
				boxes = d.Vehicles
			case "seatbelt", "no_seatbelt":
				for _, s := range d.Seatbelts {
					if s.Label == classAliases[strings.ToLower(name)] {
						boxes = append(boxes, s)
					}
				}
			}
			for _, b := range boxes {
				preds = append(preds, evalmetrics.Prediction{Image: p, Class: ci, Score: b.Score, Box: evalmetrics.Box{X: b.Box.X, Y: b.Box.Y, W: b.Box.W, H: b.Box.H}})
			}
		}
	}
	if progress != nil {
		progress(len(files), len(files))
	}
	thr := func(ci int) float64 {
		switch classAliases[strings.ToLower(names[ci])] {
		case "phone":
			return g.phoneThr
		case "seatbelt", "no_seatbelt":
			return g.seatbeltThr
		}
		return g.cfg.Thresholds.Scene
	}
	for ci, name := range names {
		var cp []evalmetrics.Prediction
		for _, p := range preds {
			if p.Class == ci {
				cp = append(cp, p)
			}
		}
		m := evalmetrics.Evaluate(cp, gts, len(names), thr(ci))[ci]
		ce := ClassEval{ClassMetrics: m}
		switch classAliases[strings.ToLower(name)] {
		case "phone":
			if g.classifies(g.phone) {
				ce.Note = "no phone model draws boxes: detector.models.phone is the occupant classifier (see image_level)"
			}
		case "seatbelt", "no_seatbelt":
			switch {
			case g.seatbelt == nil:
				ce.Note = "no seatbelt model configured (detector.models.seatbelt): nothing predicted"
			case g.classifies(g.seatbelt):
				ce.Note = "no seatbelt model draws boxes: detector.models.seatbelt is the occupant classifier (see image_level)"
			}
		case "windshield":
			if !g.scene.hasRole("windshield") {
				ce.Note = "geometric prior on the vehicle box (the scene model has no windshield class)"
			}
		case "":
			ce.Note = "no detector output maps to this class"
		}
		out.Classes[name] = ce
	}
	if len(imageLevel) > 0 {
		out.ImageLevel = map[string]evalmetrics.BinaryMetrics{}
		for k, outs := range imageLevel {
			out.ImageLevel[k] = evalmetrics.CountBinary(outs)
		}
	}
	return out, nil
}

// imageOutcomes are an image's image-level outcomes (see SetEval.ImageLevel) for the classes
// data.yaml names. The prediction is the largest vehicle's: vehicle 0 of the only view.
func (g *Graph) imageOutcomes(names []string, labels []evalmetrics.Label, det pipeline.Detection) map[string]evalmetrics.Outcome {
	out := map[string]evalmetrics.Outcome{}
	for _, name := range names {
		switch classAliases[strings.ToLower(name)] {
		case "phone":
			out[ImagePhone] = evalmetrics.Outcome{}
		case "seatbelt":
			out[ImageSeatbeltWorn] = evalmetrics.Outcome{}
		}
	}
	for _, l := range labels {
		if l.Class < 0 || l.Class >= len(names) {
			continue
		}
		switch classAliases[strings.ToLower(names[l.Class])] {
		case "phone":
			out[ImagePhone] = evalmetrics.Outcome{Positive: true}
		case "seatbelt":
			out[ImageSeatbeltWorn] = evalmetrics.Outcome{Positive: true}
		}
	}
	if len(det.Vehicles) == 0 {
		return out
	}
	veh := det.Vehicles[0]
	if o, ok := out[ImagePhone]; ok {
		for _, off := range g.vehicleOffences(veh) {
			o.Predicted = o.Predicted || off.Kind == pipeline.OffencePhone
		}
		out[ImagePhone] = o
	}
	if o, ok := out[ImageSeatbeltWorn]; ok {
		o.Predicted = veh.Seatbelt.State == pipeline.SeatbeltWorn
		out[ImageSeatbeltWorn] = o
	}
	return out
}

// EvalPlates runs the full pipeline on every image of a plate set (each image with a .txt
// beside it holding `file x y w h TEXT`) and compares the plate read of the vehicle whose
// plate box overlaps the labelled box best (else the best read of the image) with the label.
func (g *Graph) EvalPlates(ctx context.Context, dir string, progress func(done, total int)) (PlateEval, error) {
	txts, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return PlateEval{}, err
	}
	type item struct {
		img   string
		label evalmetrics.PlateLabel
	}
	var items []item
	for _, t := range txts {
		f, err := os.Open(t)
		if err != nil {
			return PlateEval{}, err
		}
		labels, err := evalmetrics.ParsePlateLabels(f)
		f.Close()
		if err != nil {
			continue // not a label file (a licence text)
		}
		for _, l := range labels {
			img := filepath.Join(filepath.Dir(t), l.File)
			if _, err := os.Stat(img); err != nil {
				continue
			}
			items = append(items, item{img, l})
		}
	}
	if len(items) == 0 {
		return PlateEval{}, fmt.Errorf("eval: no plate labels (file x y w h TEXT) with their images in %s", dir)
	}
	var out PlateEval
	var pairs []evalmetrics.PlatePair
	for i, it := range items {
		if progress != nil {
			progress(i, len(items))
		}
		if err := ctx.Err(); err != nil {
			return PlateEval{}, err
		}
		r := PlateReadEval{File: it.img, Ref: it.label.Text}
		data, err := os.ReadFile(it.img)
		if err == nil {
			var res Result
			var details []ViewDetail
			res, details, err = g.AnalyzeDetailed(ctx, []View{{Frame: pipeline.Frame{Key: it.img}, Data: data}}, AnalyzeOptions{NoRender: true})
			if err == nil {
				r.Hyp = pickPlate(res.Detection, details[0], it.label.Box)
			}
		}
		r.Err = err
		out.Reads = append(out.Reads, r)
		pairs = append(pairs, evalmetrics.PlatePair{Ref: r.Ref, Hyp: r.Hyp})
	}
	if progress != nil {
		progress(len(items), len(items))
	}
	out.PlateMetrics = evalmetrics.EvaluatePlates(pairs)
	return out, nil
}

// pickPlate is the read of the vehicle whose plate box matches the label best; when none
// overlaps, the main vehicle's read (one plate per image).
func pickPlate(det pipeline.Detection, d ViewDetail, want evalmetrics.Box) string {
	best, bestIoU := "", 0.0
	for _, v := range det.Vehicles {
		if v.Plate == nil || v.Plate.Box == nil {
			continue
		}
		b := v.Plate.Box
		if iou := evalmetrics.IoU(evalmetrics.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, want); iou > bestIoU {
			best, bestIoU = v.Plate.Text, iou
		}
	}
	if best != "" {
		return best
	}
	for _, v := range det.Vehicles {
		if v.Plate != nil {
			return v.Plate.Text
		}
	}
	return ""
}
