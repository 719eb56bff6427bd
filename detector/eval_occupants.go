package detector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocv.io/x/gocv"

	"github.com/crossborder/offencecam/detector/evalmetrics"
	"github.com/crossborder/offencecam/models"
	"github.com/crossborder/offencecam/pipeline"
)

// MinPrecision is the precision for which EvalOccupants reports the threshold with the most
// recall: a fine must rarely be wrong before a person even reviews it.
const MinPrecision = 0.9

// OccupantEval is the result of EvalOccupants: image-level precision and recall of the
// offences of each image's largest vehicle's driver against per-driver labels.
type OccupantEval struct {
	Phone    OffenceEval `json:"phone"`    // positive: phone "yes"; scored: yes and no
	Seatbelt OffenceEval `json:"seatbelt"` // positive: belt "not_worn"; scored: worn and not_worn
	// DriverCrop compares the pipeline's driver box with the labelled crop: how well the
	// windshield (a geometric prior when the scene model has no windshield class) places it.
	DriverCrop CropEval `json:"driver_crop"`
	Images     int      `json:"images"`    // images analysed
	NoDriver   int      `json:"no_driver"` // analysed images without scores for the largest vehicle's driver
	Errors     []string `json:"errors,omitempty"`
	// Folds, for an out-of-fold evaluation, are the fold models and how many images each judged.
	Folds []FoldModel `json:"folds,omitempty"`
	// FoldsManifest is the training run's manifest the fold models were read with (input,
	// crop, classes), "" when the folds directory has none and the shipped one served.
	FoldsManifest string          `json:"folds_manifest,omitempty"`
	PerImage      []OccupantImage `json:"per_image"`
}

// OffenceEval is one offence's figures at the configured thresholds, and its precision-recall
// curve over the driver's gated score.
type OffenceEval struct {
	evalmetrics.BinaryMetrics
	// Threshold is the operating threshold on the probability: the state's threshold or the
	// offence's, whichever is higher (both must be met for an offence).
	Threshold float64 `json:"threshold"`
	Gate      float64 `json:"gate"`      // least visibility for the state to be judged
	NoDriver  int     `json:"no_driver"` // scored images predicted negative for want of driver scores
	AP        float64 `json:"average_precision"`
	// ThresholdP90 is the threshold with the most recall at precision >= MinPrecision; null
	// when no threshold reaches it.
	ThresholdP90 *float64              `json:"threshold_precision_0.9"`
	AtP90        *evalmetrics.PRPoint  `json:"at_precision_0.9,omitempty"`
	Curve        []evalmetrics.PRPoint `json:"-"`
}

// CropEval is the overlap of the pipeline's driver box with the labelled driver crops.
type CropEval struct {
	MeanIoU float64 `json:"mean_iou"`
	IoUGE05 float64 `json:"iou_ge_0_5"` // share of images with IoU >= 0.5
	N       int     `json:"n"`          // analysed images with a labelled crop (no driver box: IoU 0)
}

// FoldModel is the model one fold's images were judged with.
type FoldModel struct {
	Fold    int    `json:"fold"`
	File    string `json:"file"`
	SHA256  string `json:"sha256"`
	Version string `json:"version"` // the manifest version the graph reports (ModelRef)
	Images  int    `json:"images"`
}

// OccupantImage is one labelled image: its labels, what the pipeline made of its largest
// vehicle's driver and which model judged it.
type OccupantImage struct {
	Stem  string `json:"stem"`
	Phone string `json:"phone"` // label
	Belt  string `json:"belt"`  // label
	Fold  *int   `json:"fold,omitempty"`
	// Model is the occupant classifier that judged the image, name@version as in the
	// Detection's model references.
	Model  string `json:"model"`
	Driver bool   `json:"driver"` // the largest vehicle's driver was scored
	// Gated scores: the probability where the visibility reaches the gate, else 0.
	PhoneScore   float64  `json:"phone_score"`
	BeltScore    float64  `json:"belt_score"`
	PhoneFlagged bool     `json:"phone_flagged"`
	BeltFlagged  bool     `json:"belt_flagged"`
	DriverIoU    *float64 `json:"driver_iou,omitempty"`
	Error        string   `json:"error,omitempty"`

	label evalmetrics.OccupantLabel
}

// ReadOccupantLabels parses an occupant label file (see evalmetrics.ParseOccupantLabels).
func ReadOccupantLabels(path string) ([]evalmetrics.OccupantLabel, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	labels, err := evalmetrics.ParseOccupantLabels(f)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("eval: %s: no labelled images", path)
	}
	return labels, nil
}

// EvalOccupants analyses the image of every label (found in imagesDir by its stem) and scores
// the largest vehicle's driver: a phone offence, a belt-not-worn offence from the driver's
// own belt (never the passenger's, whom the label does not describe). An image without that
// driver's scores counts as predicted negative. It needs the occupant classifier.
func (g *Graph) EvalOccupants(ctx context.Context, labels []evalmetrics.OccupantLabel, imagesDir string, progress func(done, total int)) (OccupantEval, error) {
	if g.occupant == nil {
		return OccupantEval{}, errors.New("eval: --occupants scores the occupant classifier, and models.phone/models.seatbelt name none")
	}
	paths, err := occupantImagePaths(labels, imagesDir)
	if err != nil {
		return OccupantEval{}, err
	}
	recs := make([]OccupantImage, 0, len(labels))
	recs, err = g.evalOccupantImages(ctx, labels, paths, recs, len(labels), progress)
	if err != nil {
		return OccupantEval{}, err
	}
	return g.summarizeOccupants(recs), nil
}

// evalOccupantImages appends the records of labels to recs, reporting progress against total.
func (g *Graph) evalOccupantImages(ctx context.Context, labels []evalmetrics.OccupantLabel, paths []string, recs []OccupantImage, total int, progress func(done, total int)) ([]OccupantImage, error) {
	for i, l := range labels {
		if progress != nil {
			progress(len(recs), total)
		}
		r, err := g.evalOccupantImage(ctx, l, paths[i])
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	if progress != nil {
		progress(len(recs), total)
	}
	return recs, nil
}

// evalOccupantImage analyses one image. A bad image is recorded in the result; only a
// cancelled context is an error.
func (g *Graph) evalOccupantImage(ctx context.Context, l evalmetrics.OccupantLabel, path string) (OccupantImage, error) {
	r := OccupantImage{Stem: l.Stem, Phone: l.Phone, Belt: l.Belt, label: l,
		Model: g.occupant.m.Name + "@" + g.occupant.m.Version}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		r.Error = err.Error()
		return r, nil
	}
	res, details, err := g.AnalyzeDetailed(ctx, []View{{Frame: pipeline.Frame{Key: path}, Data: data}}, AnalyzeOptions{NoRender: true})
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		r.Error = fmt.Sprintf("%s: %v", path, err)
		return r, nil
	}
	g.judgeDriver(&r, res.Detection, details[0])
	return r, nil
}

// judgeDriver fills r from the analysis of its image: the largest vehicle (vehicle 0 of the
// only view) and its driver's scores.
func (g *Graph) judgeDriver(r *OccupantImage, det pipeline.Detection, d ViewDetail) {
	if r.label.HasCrop {
		iou := 0.0 // no vehicle, no driver box: the prior placed nothing
		if len(det.Vehicles) > 0 && det.Vehicles[0].Driver != nil {
			b := det.Vehicles[0].Driver
			iou = evalmetrics.IoU(evalmetrics.Box{X: b.X, Y: b.Y, W: b.W, H: b.H}, r.label.Crop)
		}
		r.DriverIoU = &iou
	}
	if len(det.Vehicles) > 0 {
		veh := det.Vehicles[0]
		veh.PassengerSeatbelt = nil // the label is the driver's: a passenger's offence is not a hit
		for _, o := range g.vehicleOffences(veh) {
			switch o.Kind {
			case pipeline.OffencePhone:
				r.PhoneFlagged = true
			case pipeline.OffenceSeatbelt:
				r.BeltFlagged = true
			}
		}
	}
	for _, o := range d.Occupants {
		if o.Seat == SeatDriver && o.Vehicle == 0 {
			r.Driver = true
			r.PhoneScore = gatedScore(o.Phone, o.PhoneVisible, g.phoneGate)
			r.BeltScore = gatedScore(o.NoSeatbelt, o.SeatbeltVisible, g.seatbeltGate)
		}
	}
}

// gatedScore is what a threshold can flag: the probability where the visibility reaches the
// gate, else 0 (never flagged, as in gatedFinding).
func gatedScore(prob, visible, gate float64) float64 {
	if visible < gate {
		return 0
	}
	return prob
}

// summarizeOccupants computes the figures of the records at the graph's thresholds.
func (g *Graph) summarizeOccupants(recs []OccupantImage) OccupantEval {
	ev := OccupantEval{PerImage: recs}
	var phone, belt []evalmetrics.Outcome
	phoneNoDriver, beltNoDriver := 0, 0
	var ious []float64
	for _, r := range recs {
		if r.Error != "" {
			ev.Errors = append(ev.Errors, r.Stem+": "+r.Error)
			continue
		}
		ev.Images++
		if !r.Driver {
			ev.NoDriver++
		}
		if pos, ok := r.label.PhonePositive(); ok {
			phone = append(phone, evalmetrics.Outcome{Positive: pos, Predicted: r.PhoneFlagged, Score: r.PhoneScore})
			if !r.Driver {
				phoneNoDriver++
			}
		}
		if pos, ok := r.label.BeltPositive(); ok {
			belt = append(belt, evalmetrics.Outcome{Positive: pos, Predicted: r.BeltFlagged, Score: r.BeltScore})
			if !r.Driver {
				beltNoDriver++
			}
		}
		if r.DriverIoU != nil {
			ious = append(ious, *r.DriverIoU)
		}
	}
	ev.Phone = offenceEval(phone, max(g.phoneThr, g.offenceThr[pipeline.OffencePhone]), g.phoneGate)
	ev.Phone.NoDriver = phoneNoDriver
	ev.Seatbelt = offenceEval(belt, max(g.seatbeltThr, g.offenceThr[pipeline.OffenceSeatbelt]), g.seatbeltGate)
	ev.Seatbelt.NoDriver = beltNoDriver
	ev.DriverCrop = cropEval(ious)
	return ev
}

func offenceEval(outs []evalmetrics.Outcome, thr, gate float64) OffenceEval {
	e := OffenceEval{BinaryMetrics: evalmetrics.CountBinary(outs), Threshold: thr, Gate: gate}
	e.Curve = evalmetrics.PRCurve(outs)
	e.AP = evalmetrics.AveragePrecision(e.Curve)
	if p, ok := evalmetrics.ThresholdForPrecision(e.Curve, MinPrecision); ok {
		e.ThresholdP90, e.AtP90 = &p.Threshold, &p
	}
	return e
}

func cropEval(ious []float64) CropEval {
	c := CropEval{N: len(ious)}
	if c.N == 0 {
		return c
	}
	good := 0
	for _, v := range ious {
		c.MeanIoU += v
		if v >= 0.5 {
			good++
		}
	}
	c.MeanIoU /= float64(c.N)
	c.IoUGE05 = float64(good) / float64(c.N)
	return c
}

// occupantImagePaths finds each label's image in dir (recursively) by its stem, the file
// name without extension (a stem that names its extension is taken as it is). Every
// missing image is an error, found before hours of analysis rather than after.
func occupantImagePaths(labels []evalmetrics.OccupantLabel, dir string) ([]string, error) {
	files, err := imageFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	byStem := map[string][]string{}
	for _, f := range files {
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			continue
		}
		rel = filepath.ToSlash(rel)
		stem := strings.TrimSuffix(rel, filepath.Ext(rel))
		byStem[stem] = append(byStem[stem], f)
		byStem[rel] = append(byStem[rel], f)
	}
	out := make([]string, len(labels))
	var missing, ambiguous []string
	for i, l := range labels {
		switch c := byStem[l.Stem]; len(c) {
		case 0:
			missing = append(missing, l.Stem)
		case 1:
			out[i] = c[0]
		default:
			ambiguous = append(ambiguous, fmt.Sprintf("%s (%s)", l.Stem, strings.Join(c, ", ")))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("eval: %d labelled images not found in %s: %s", len(missing), dir, listSome(missing))
	}
	if len(ambiguous) > 0 {
		return nil, fmt.Errorf("eval: %d stems match several images in %s: %s", len(ambiguous), dir, listSome(ambiguous))
	}
	return out, nil
}

// listSome joins the first few items and says how many more there are.
func listSome(items []string) string {
	const show = 5
	if len(items) <= show {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:show], ", "), len(items)-show)
}

// FoldsFile is the file in a training run's folds directory giving each image's fold.
const FoldsFile = "folds.tsv"

// FoldModelName is the file name of fold k's occupant model in a folds directory.
func FoldModelName(k int) string { return fmt.Sprintf("occupant-fold%d.onnx", k) }

// EvalOccupantFolds is EvalOccupants out of fold: foldsDir (written by training) holds
// folds.tsv (stem, fold) and occupant-fold{k}.onnx, the model trained without fold k. Each
// fold's images are judged by a graph of cfg whose occupant classifier is that fold's model,
// with the shipped manifest's thresholds, so the figures are of images no model trained on.
// Every labelled stem must have a fold.
func EvalOccupantFolds(ctx context.Context, cfg Config, cacheDir string, labels []evalmetrics.OccupantLabel, imagesDir, foldsDir string, progress func(done, total int), opts ...Option) (OccupantEval, error) {
	if len(labels) == 0 {
		return OccupantEval{}, errors.New("eval: no labelled images")
	}
	byFold, folds, err := splitByFold(labels, foldsDir)
	if err != nil {
		return OccupantEval{}, err
	}
	paths, err := occupantImagePaths(labels, imagesDir)
	if err != nil {
		return OccupantEval{}, err
	}
	pathOf := make(map[string]string, len(labels))
	for i, l := range labels {
		pathOf[l.Stem] = paths[i]
	}
	set := settings{}
	for _, o := range opts {
		o(&set)
	}
	cat := set.catalog
	if cat == nil {
		if cat, err = models.Builtin(); err != nil {
			return OccupantEval{}, fmt.Errorf("eval: manifests: %w", err)
		}
	}
	name, err := occupantManifest(cfg, cat)
	if err != nil {
		return OccupantEval{}, err
	}
	base, runManifest, err := foldBase(cat[name], foldsDir)
	if err != nil {
		return OccupantEval{}, err
	}
	files := make(map[string]string, len(folds))
	for _, k := range folds {
		files[FoldModelName(k)] = filepath.Join(foldsDir, FoldModelName(k))
	}
	cache, cleanup, err := foldCache(cacheDir, files)
	if err != nil {
		return OccupantEval{}, err
	}
	defer cleanup()
	if set.lib == "" {
		// The runtime loads once per process from one path: the shared cache's, not the
		// private cache's link to it.
		lib, _ := libraryFor(cfg, cacheDir)
		opts = append(opts, WithLibrary(lib))
	}

	var recs []OccupantImage
	var fms []FoldModel
	var g *Graph // the current fold's; closed when the next opens, and at the end
	defer func() {
		if g != nil {
			g.Close()
		}
	}()
	for _, k := range folds {
		fm, fcat, err := foldCatalog(cat, base, k, cache)
		if err != nil {
			return OccupantEval{}, err
		}
		if g != nil {
			g.Close()
		}
		if g, err = New(cfg, cache, append(opts, WithCatalog(fcat))...); err != nil {
			return OccupantEval{}, fmt.Errorf("eval: fold %d: %w", k, err)
		}
		n := len(recs)
		if recs, err = g.evalOccupantImages(ctx, byFold[k], pathsOf(byFold[k], pathOf), recs, len(labels), progress); err != nil {
			return OccupantEval{}, err
		}
		for i := n; i < len(recs); i++ {
			recs[i].Fold = &k
		}
		fm.Images = len(recs) - n
		fms = append(fms, fm)
	}
	// Every fold's graph has the shipped thresholds: any of them summarises the lot.
	ev := g.summarizeOccupants(recs)
	ev.Folds, ev.FoldsManifest = fms, runManifest
	return ev, nil
}

func pathsOf(labels []evalmetrics.OccupantLabel, pathOf map[string]string) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = pathOf[l.Stem]
	}
	return out
}

// splitByFold reads foldsDir's folds.tsv and groups labels by fold (ascending), in label
// order within a fold.
func splitByFold(labels []evalmetrics.OccupantLabel, foldsDir string) (map[int][]evalmetrics.OccupantLabel, []int, error) {
	p := filepath.Join(foldsDir, FoldsFile)
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("eval: folds: %w", err)
	}
	foldOf, err := evalmetrics.ParseFolds(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("eval: %s: %w", p, err)
	}
	byFold := map[int][]evalmetrics.OccupantLabel{}
	var missing []string
	for _, l := range labels {
		k, ok := foldOf[l.Stem]
		if !ok {
			missing = append(missing, l.Stem)
			continue
		}
		byFold[k] = append(byFold[k], l)
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("eval: %d labelled images have no fold in %s: %s", len(missing), p, listSome(missing))
	}
	folds := make([]int, 0, len(byFold))
	for k := range byFold {
		folds = append(folds, k)
	}
	sort.Ints(folds)
	return byFold, folds, nil
}

// occupantManifest is the name of the configuration's occupant classifier.
func occupantManifest(cfg Config, cat models.Catalog) (string, error) {
	for _, n := range []string{cfg.Models.Phone, cfg.Models.Seatbelt} {
		if m, ok := cat[n]; ok && m.Decoder != nil && m.Decoder.Type == models.DecoderSigmoid {
			return n, nil
		}
	}
	return "", fmt.Errorf("eval: --folds replaces the occupant classifier, and models.phone (%q) and models.seatbelt (%q) name none", cfg.Models.Phone, cfg.Models.Seatbelt)
}

// foldBase is the manifest the fold models are read with. A training run writes its own
// manifest beside its fold models (<name>.yaml): its input size, crop and classes are what
// the fold models were trained and exported with, and may differ from the shipped model's.
// The thresholds stay the shipped ones, so the figures are of the operating point in force.
// Without a run manifest, the shipped one serves as it is.
func foldBase(shipped *models.Manifest, foldsDir string) (*models.Manifest, string, error) {
	p := filepath.Join(foldsDir, shipped.Name+".yaml")
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return shipped, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("eval: folds: %w", err)
	}
	run, err := models.Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("eval: %s: %w", p, err)
	}
	if run.Name != shipped.Name {
		return nil, "", fmt.Errorf("eval: %s is manifest %q, want %q", p, run.Name, shipped.Name)
	}
	m := *run
	m.Thresholds = shipped.Thresholds
	return &m, p, nil
}

// foldCatalog is cat with base (a manifest of cat, or a training run's version of one) in
// place of its namesake, its model file fold k's, found in cache. Its version gains
// "+fold<k>" so each Detection names the model that judged it.
func foldCatalog(cat models.Catalog, base *models.Manifest, k int, cache string) (FoldModel, models.Catalog, error) {
	fname := FoldModelName(k)
	sum, size, err := fileSHA256(filepath.Join(cache, fname))
	if err != nil {
		return FoldModel{}, nil, fmt.Errorf("eval: fold %d: %w", k, err)
	}
	m := *base
	m.Version = fmt.Sprintf("%s+fold%d", m.Version, k)
	m.Files = append([]models.File(nil), m.Files...)
	file := models.File{Name: fname, SHA256: sum, Size: size, Sources: []models.Source{{Mirror: fname}}}
	replaced := false
	for i, f := range m.Files {
		if !replaced && (f.Role == "" || f.Role == models.FileRoleModel) {
			m.Files[i], replaced = file, true
		}
	}
	if !replaced {
		m.Files = append([]models.File{file}, m.Files...)
	}
	out := make(models.Catalog, len(cat))
	for n, mm := range cat {
		out[n] = mm
	}
	out[m.Name] = &m
	return FoldModel{Fold: k, File: fname, SHA256: sum, Version: m.Version}, out, nil
}

// foldCache makes a private model cache: links to every file of cacheDir, and copies of the
// fold models (name -> source path). The shared cache is one flat directory where a file
// name means the same bytes in every manifest, and every training run writes its own
// occupant-fold0.onnx: fold files do not belong there.
func foldCache(cacheDir string, files map[string]string) (dir string, cleanup func(), err error) {
	abs, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", nil, fmt.Errorf("eval: %w", err)
	}
	dir, err = os.MkdirTemp("", "offencecam-folds-")
	if err != nil {
		return "", nil, fmt.Errorf("eval: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	entries, err := os.ReadDir(abs)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("eval: model cache: %w", err)
	}
	for _, e := range entries {
		if _, ours := files[e.Name()]; ours || e.IsDir() {
			continue
		}
		if err := os.Symlink(filepath.Join(abs, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("eval: %w", err)
		}
	}
	for name, src := range files {
		if err := copyFoldModel(src, filepath.Join(dir, name)); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("eval: fold model: %w", err)
		}
	}
	return dir, cleanup, nil
}

func copyFoldModel(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func fileSHA256(p string) (sum string, size int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

// Plot colours (gocv takes color.RGBA and writes BGR itself).
var (
	plotPhone = color.RGBA{R: 31, G: 119, B: 180, A: 255} // blue
	plotBelt  = color.RGBA{R: 214, G: 96, B: 0, A: 255}   // orange
	plotAxis  = color.RGBA{R: 0, G: 0, B: 0, A: 255}
	plotGrid  = color.RGBA{R: 225, G: 225, B: 225, A: 255}
	plotGuide = color.RGBA{R: 150, G: 150, B: 150, A: 255}
)

// plotFrame maps precision/recall onto the plot area of the image.
type plotFrame struct{ x0, y0, x1, y1 int }

func (f plotFrame) pt(recall, precision float64) image.Point {
	return image.Pt(f.x0+int(math.Round(recall*float64(f.x1-f.x0))), f.y1-int(math.Round(precision*float64(f.y1-f.y0))))
}

// PlotOccupantPR draws the precision-recall curves of the phone and belt-not-worn offences
// as a PNG: each with its operating point at the configured thresholds (filled dot) and the
// point of the precision >= 0.9 threshold (ring), the 0.9 precision line dashed.
func PlotOccupantPR(ev OccupantEval) ([]byte, error) {
	const W, H = 1060, 720
	img := gocv.NewMatWithSize(H, W, gocv.MatTypeCV8UC3)
	defer img.Close()
	img.SetTo(gocv.NewScalar(255, 255, 255, 0))
	f := plotFrame{x0: 90, y0: 70, x1: 650, y1: 630}
	drawAxes(&img, f)
	plotText(&img, "Occupant classifier, largest vehicle's driver: precision-recall per image", image.Pt(f.x0, 35), 0.6, plotAxis)
	y := f.y0 + 10
	for _, c := range []struct {
		name string
		e    OffenceEval
		col  color.RGBA
	}{{"phone held", ev.Phone, plotPhone}, {"belt not worn", ev.Seatbelt, plotBelt}} {
		drawCurve(&img, f, c.e, c.col)
		y = drawLegend(&img, image.Pt(f.x1+30, y), c.name, c.e, c.col) + 45
	}
	notes := []string{
		"filled dot: configured thresholds",
		"ring: threshold for precision >= 0.9",
		"dashed: precision 0.9",
		fmt.Sprintf("%d images, %d without driver scores", ev.Images, ev.NoDriver),
	}
	if len(ev.Folds) > 0 {
		notes = append(notes, fmt.Sprintf("out of fold (%d folds)", len(ev.Folds)))
	}
	for i, n := range notes {
		plotText(&img, n, image.Pt(f.x1+30, y+22*i), 0.45, plotAxis)
	}
	buf, err := gocv.IMEncode(gocv.PNGFileExt, img)
	if err != nil {
		return nil, fmt.Errorf("eval: plot: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

func drawAxes(img *gocv.Mat, f plotFrame) {
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		gocv.Line(img, f.pt(v, 0), f.pt(v, 1), plotGrid, 1)
		gocv.Line(img, f.pt(0, v), f.pt(1, v), plotGrid, 1)
		if i%2 == 0 {
			lbl := fmt.Sprintf("%.1f", v)
			p := f.pt(v, 0)
			plotText(img, lbl, image.Pt(p.X-12, p.Y+22), 0.45, plotAxis)
			p = f.pt(0, v)
			plotText(img, lbl, image.Pt(p.X-38, p.Y+5), 0.45, plotAxis)
		}
	}
	gocv.Rectangle(img, image.Rect(f.x0, f.y0, f.x1, f.y1), plotAxis, 1)
	plotText(img, "recall", image.Pt((f.x0+f.x1)/2-25, f.y1+50), 0.6, plotAxis)
	plotText(img, "precision", image.Pt(f.x0-70, f.y0-12), 0.6, plotAxis)
	// The precision a fine needs before review: dashed.
	for x := 0.0; x < 1; x += 0.02 {
		gocv.Line(img, f.pt(x, MinPrecision), f.pt(min(1, x+0.01), MinPrecision), plotGuide, 1)
	}
}

func drawCurve(img *gocv.Mat, f plotFrame, e OffenceEval, col color.RGBA) {
	for i := 1; i < len(e.Curve); i++ {
		a, b := e.Curve[i-1], e.Curve[i]
		gocv.Line(img, f.pt(a.Recall, a.Precision), f.pt(b.Recall, b.Precision), col, 2)
	}
	if len(e.Curve) == 1 {
		gocv.CircleWithParams(img, f.pt(e.Curve[0].Recall, e.Curve[0].Precision), 3, col, -1, gocv.LineAA, 0)
	}
	if e.TP+e.FP > 0 {
		p := f.pt(e.Recall, e.Precision)
		gocv.CircleWithParams(img, p, 7, col, -1, gocv.LineAA, 0)
		gocv.CircleWithParams(img, p, 7, plotAxis, 1, gocv.LineAA, 0)
	}
	if e.AtP90 != nil {
		gocv.CircleWithParams(img, f.pt(e.AtP90.Recall, e.AtP90.Precision), 11, col, 2, gocv.LineAA, 0)
	}
}

// drawLegend writes one curve's legend at p and returns the y below it.
func drawLegend(img *gocv.Mat, p image.Point, name string, e OffenceEval, col color.RGBA) int {
	gocv.Line(img, image.Pt(p.X, p.Y-5), image.Pt(p.X+30, p.Y-5), col, 3)
	plotText(img, fmt.Sprintf("%s (n=%d, %d positive)", name, e.N, e.TP+e.FN), image.Pt(p.X+40, p.Y), 0.5, plotAxis)
	lines := []string{fmt.Sprintf("AP %.3f", e.AP), fmt.Sprintf("at %.3f: P %.3f  R %.3f", e.Threshold, e.Precision, e.Recall)}
	if e.TP+e.FP == 0 {
		lines[1] = fmt.Sprintf("at %.3f: no image flagged", e.Threshold)
	}
	if e.AtP90 != nil {
		lines = append(lines, fmt.Sprintf("P>=0.9 at %.3f: P %.3f  R %.3f", e.AtP90.Threshold, e.AtP90.Precision, e.AtP90.Recall))
	} else {
		lines = append(lines, "no threshold reaches P 0.9")
	}
	for i, l := range lines {
		plotText(img, l, image.Pt(p.X+40, p.Y+22*(i+1)), 0.45, plotAxis)
	}
	return p.Y + 22*len(lines)
}

func plotText(img *gocv.Mat, s string, p image.Point, scale float64, col color.RGBA) {
	gocv.PutTextWithParams(img, s, p, gocv.FontHersheySimplex, scale, col, 1, gocv.LineAA, false)
}
