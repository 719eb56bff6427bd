package detector

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crossborder/offencecam/detector/ort"
	"github.com/crossborder/offencecam/pipeline"
)

// Model choices for the roles of the stage graph (manifest names).
const (
	ModelYOLOXNano    = "yolox-nano"
	ModelPaddleDet    = "paddleocr-det"
	ModelPaddleRec    = "paddleocr-rec"
	ModelLPDYuNet     = "lpd-yunet"
	ModelLPDYuNetInt8 = "lpd-yunet-int8"
	ModelFastPlateOCR = "fast-plate-ocr"
	ModelYuNetFace    = "yunet-face"
	// ModelOccupant is the project's own occupant classifier (training/occupant): phone and
	// seat belt from the driver's crop.
	ModelOccupant = "occupant"
)

// Config is the stage graph's configuration (YAML section `detector`). The model cache
// directory is not part of it: it comes from `models.cache`.
type Config struct {
	Runtime    ort.Options      `yaml:"runtime"`
	Models     ModelsConfig     `yaml:"models"`
	Thresholds ThresholdsConfig `yaml:"thresholds"`
	// MinVehiclePx is the smallest vehicle (shorter side of its box, frame pixels) whose
	// occupants and plate are examined: a far-away car has no readable plate or driver.
	MinVehiclePx int `yaml:"min_vehicle_px"`
	// MinVehicleFrac is the same floor as a fraction of the frame's shorter side: the
	// vehicles in the lane the camera watches fill a good part of the frame, the rest are
	// traffic in the background that only costs time.
	MinVehicleFrac float64 `yaml:"min_vehicle_frac"`
	// MaxVehicles bounds the vehicles examined per view (largest first).
	MaxVehicles int `yaml:"max_vehicles"`
	// WholeFrameVehicle treats the whole frame as the vehicle (class "unknown", score 0)
	// when the scene model finds none, so close-ups still get a plate read.
	WholeFrameVehicle bool `yaml:"whole_frame_vehicle"`
	// Windshield is the geometric prior per camera view (front, overhead, rear), used when
	// the scene model has no windshield class.
	Windshield map[string]Region `yaml:"windshield"`
	// DriverSide is the side of the vehicle the driver sits on, "left" (LHD) or "right";
	// Frame.DriverSide overrides it per camera.
	DriverSide string `yaml:"driver_side"`
	// DefaultView is the view assumed for a frame that does not say (e.g. `analyze` on files).
	DefaultView string `yaml:"default_view"`
	// PhoneRefine runs the phone model again on the full-resolution windshield crop, where a
	// phone is many more pixels than in the whole frame.
	PhoneRefine bool `yaml:"phone_refine"`
	// PlateRegion is the part of the vehicle box searched for the plate by text detection
	// (fractions of the box; the plate sits low on the front and rear).
	PlateRegion Region `yaml:"plate_region"`
	// PlateDetectSide is the longer side of the text detector's input: the plate region is
	// scaled to it (up or down). Text detection dominates the analysis time (its cost grows
	// with the pixels), and PP-OCRv4 det finds no text at all in a region a few hundred
	// pixels wide at native size.
	PlateDetectSide int `yaml:"plate_detect_side"`
	// PlateCandidates is how many plate candidates of one vehicle are read; the read a
	// national format accepts with the highest confidence wins.
	PlateCandidates int `yaml:"plate_candidates"`
	// PlateCountry breaks ties between countries whose formats accept the same text.
	PlateCountry string `yaml:"plate_country"`
	// ReducedDecodeMin is the smallest reduction (2, 4 or 8) for which the scene model gets
	// a reduced decode (IMReadReducedColorN) and the full resolution is decoded only when a
	// crop needs it. Below it the frame is decoded once at full size: at 1/2 (a 1920×1080
	// frame) the reduced decode saves less than the second, full decode that almost every
	// frame with a vehicle needs for its plate costs.
	ReducedDecodeMin int `yaml:"reduced_decode_min"`
	// MaxPixels is the largest frame accepted (header check before decoding).
	MaxPixels int64 `yaml:"max_pixels"`
	// JPEGQuality is the quality of rendered evidence.
	JPEGQuality int `yaml:"jpeg_quality"`
	// FaceMask is how faces other than the driver's are hidden: "pixelate" or "fill".
	FaceMask string `yaml:"face_mask"`
	// JudgePassenger runs the occupant classifier on the front passenger's crop too, for the
	// passenger's belt (Vehicle.passenger_seatbelt). Off by default: it doubles the
	// classifier's cost per vehicle, and Belgian fines go to the driver.
	JudgePassenger bool `yaml:"judge_passenger"`
	// PassengerSeatbeltOffence makes the passenger's belt not worn an offence too (needs
	// judge_passenger).
	PassengerSeatbeltOffence bool `yaml:"passenger_seatbelt_offence"`
	// Shadow names candidate occupant classifiers run beside the live models (shadow.go).
	Shadow ShadowConfig `yaml:"shadow"`
	// Manifests is a directory of additional model manifests (*.yaml, an operator's own
	// models such as a shadow candidate; fetch their files with `models fetch --manifests`).
	Manifests string `yaml:"manifests"`
}

// ModelsConfig names the model of each role (manifest names; "" disables optional roles).
type ModelsConfig struct {
	Scene         string `yaml:"scene"`
	PlateDetector string `yaml:"plate_detector"` // paddleocr-det, lpd-yunet, lpd-yunet-int8 or ""
	PlateReader   string `yaml:"plate_reader"`   // fast-plate-ocr or paddleocr-rec
	Phone         string `yaml:"phone"`          // occupant (classifier), a phone detector, or "" = the scene model's phone class
	Seatbelt      string `yaml:"seatbelt"`       // occupant (classifier), a seatbelt detector, or "" = state unknown
	Face          string `yaml:"face"`           // yunet-face or "" (no masking)
}

// ThresholdsConfig holds the score thresholds.
type ThresholdsConfig struct {
	Scene float64 `yaml:"scene"`
	NMS   float64 `yaml:"nms"`
	// Phone and Seatbelt are the scores from which the driver holds a phone and wears no
	// belt; 0 takes the model's own (an occupant classifier's cross-validated threshold,
	// a detector's score threshold).
	Phone    float64 `yaml:"phone"`
	Seatbelt float64 `yaml:"seatbelt"`
	// Visible is the least visibility (the classifier's probability that the hands, or the
	// chest, can be judged at all) for a judged state; below it (a dark cabin, dark
	// clothing, glare) the state is unknown. 0 takes the model's own gates.
	Visible         float64 `yaml:"visible"`
	PlateConfidence float64 `yaml:"plate_min_confidence"`
	Face            float64 `yaml:"face"`
	// Offence is the score from which a state becomes an offence, per offence kind; a kind
	// not listed uses its state's threshold.
	Offence map[string]float64 `yaml:"offence"`
}

// Region is a rectangle as fractions of a box (0..1 from its top-left corner).
type Region struct {
	X float64 `yaml:"x"`
	Y float64 `yaml:"y"`
	W float64 `yaml:"w"`
	H float64 `yaml:"h"`
}

// DefaultConfig is the configuration measured best on ../shared/data (`offencecam eval`):
//
//   - plates: PP-OCRv4 text detection on the lower vehicle box scaled to 640 px, then
//     fast-plate-ocr: 0.80 exact, CER 0.073 on the 30 shared plates, full pipeline from the
//     whole photo. Alternatives on the same set: PP-OCRv4 det + PP-OCRv4 rec 0.50 (CER 0.29),
//     LPD-YuNet + fast-plate-ocr 0.43 (trained on Chinese plates), LPD-YuNet int8 0.40; text
//     detection scaled to 512 px 0.67, to 960 px 0.80 at twice the time.
//   - phone and seat belt: the occupant classifier on the driver's crop, at the thresholds
//     its training chose on out-of-fold scores (training/occupant/MODEL_CARD.md). The scene
//     model's COCO "cell phone" class found none of the 19 labelled phones of the roadside
//     set, with or without a second full-resolution pass on the windshield.
//   - windshield: the geometric prior, fitted to the 767 labelled windshields of
//     roadside-train that the scene model finds a vehicle for (mean IoU 0.78).
func DefaultConfig() Config {
	return Config{
		Runtime: ort.DefaultOptions(),
		Models: ModelsConfig{
			Scene:         ModelYOLOXNano,
			PlateDetector: ModelPaddleDet,
			PlateReader:   ModelFastPlateOCR,
			Phone:         ModelOccupant,
			Seatbelt:      ModelOccupant,
			Face:          ModelYuNetFace,
		},
		Thresholds: ThresholdsConfig{
			Scene: 0.3, NMS: 0.45, PlateConfidence: 0.3, Face: 0.8,
			Offence: map[string]float64{},
		},
		MinVehiclePx:      48,
		MaxVehicles:       8,
		WholeFrameVehicle: true,
		Windshield: map[string]Region{
			// Oncoming vehicles seen from the front: the glass spans the upper middle of the box.
			// The medians of the 767 labelled windshields of roadside-train relative to the
			// scene model's vehicle box (cars and trucks agree within 0.01): mean IoU with the
			// labels 0.78, against 0.63 for the first guess {0.08, 0.12, 0.84, 0.38}.
			pipeline.ViewFront:    {X: 0.17, Y: 0.20, W: 0.78, H: 0.29},
			pipeline.ViewOverhead: {X: 0.08, Y: 0.20, W: 0.84, H: 0.40},
			pipeline.ViewRear:     {X: 0.10, Y: 0.10, W: 0.80, H: 0.35},
		},
		DriverSide:       "left",
		DefaultView:      pipeline.ViewFront,
		PhoneRefine:      false,
		PlateRegion:      Region{X: 0, Y: 0.35, W: 1, H: 0.65},
		PlateCandidates:  3,
		PlateDetectSide:  640,
		PlateCountry:     "BE",
		MaxPixels:        100_000_000,
		ReducedDecodeMin: 4,
		JPEGQuality:      90,
		FaceMask:         "pixelate",
	}
}

const cfgPath = "detector"

func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%s.%s: %s", cfgPath, field, fmt.Sprintf(format, args...))
}

// Validate checks the configuration and names the bad field by its YAML path.
func (c Config) Validate() error {
	var errs []error
	if err := c.Runtime.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Models.Scene == "" {
		errs = append(errs, fieldErr("models.scene", "required (e.g. %s)", ModelYOLOXNano))
	}
	switch c.Models.PlateDetector {
	case "", ModelPaddleDet, ModelLPDYuNet, ModelLPDYuNetInt8:
	default:
		errs = append(errs, fieldErr("models.plate_detector", "%q is not %s, %s, %s or empty", c.Models.PlateDetector, ModelPaddleDet, ModelLPDYuNet, ModelLPDYuNetInt8))
	}
	switch c.Models.PlateReader {
	case ModelFastPlateOCR, ModelPaddleRec:
	case "":
		if c.Models.PlateDetector != "" {
			errs = append(errs, fieldErr("models.plate_reader", "required when models.plate_detector is set"))
		}
	default:
		errs = append(errs, fieldErr("models.plate_reader", "%q is not %s or %s", c.Models.PlateReader, ModelFastPlateOCR, ModelPaddleRec))
	}
	switch c.Models.Face {
	case "", ModelYuNetFace:
	default:
		errs = append(errs, fieldErr("models.face", "%q is not %s or empty", c.Models.Face, ModelYuNetFace))
	}
	for _, t := range []struct {
		name string
		v    float64
	}{
		{"scene", c.Thresholds.Scene}, {"nms", c.Thresholds.NMS}, {"phone", c.Thresholds.Phone},
		{"seatbelt", c.Thresholds.Seatbelt}, {"visible", c.Thresholds.Visible}, {"plate_min_confidence", c.Thresholds.PlateConfidence},
		{"face", c.Thresholds.Face},
	} {
		if !(t.v >= 0 && t.v <= 1) {
			errs = append(errs, fieldErr("thresholds."+t.name, "must be in 0..1, got %v", t.v))
		}
	}
	for k, v := range c.Thresholds.Offence {
		if !isOffenceKind(k) {
			errs = append(errs, fieldErr("thresholds.offence."+k, "unknown offence kind (known: %s)", strings.Join(pipeline.OffenceKinds, ", ")))
		} else if !(v >= 0 && v <= 1) {
			errs = append(errs, fieldErr("thresholds.offence."+k, "must be in 0..1, got %v", v))
		}
	}
	errs = append(errs, c.Shadow.validate(c.Models)...)
	if c.MinVehiclePx < 0 {
		errs = append(errs, fieldErr("min_vehicle_px", "must be >= 0, got %d", c.MinVehiclePx))
	}
	if !(c.MinVehicleFrac >= 0 && c.MinVehicleFrac < 1) {
		errs = append(errs, fieldErr("min_vehicle_frac", "must be in 0..1, got %v", c.MinVehicleFrac))
	}
	if c.MaxVehicles < 1 {
		errs = append(errs, fieldErr("max_vehicles", "must be >= 1, got %d", c.MaxVehicles))
	}
	for view, r := range c.Windshield {
		if err := r.validate(); err != nil {
			errs = append(errs, fieldErr("windshield."+view, "%v", err))
		}
	}
	if err := c.PlateRegion.validate(); err != nil {
		errs = append(errs, fieldErr("plate_region", "%v", err))
	}
	switch c.DriverSide {
	case "left", "right":
	default:
		errs = append(errs, fieldErr("driver_side", "%q is not left or right", c.DriverSide))
	}
	switch c.DefaultView {
	case pipeline.ViewFront, pipeline.ViewOverhead, pipeline.ViewRear:
	default:
		errs = append(errs, fieldErr("default_view", "%q is not front, overhead or rear", c.DefaultView))
	}
	if c.PlateDetectSide < 64 || c.PlateDetectSide > 4096 {
		errs = append(errs, fieldErr("plate_detect_side", "must be in 64..4096, got %d", c.PlateDetectSide))
	}
	if c.PlateCandidates < 1 {
		errs = append(errs, fieldErr("plate_candidates", "must be >= 1, got %d", c.PlateCandidates))
	}
	switch c.ReducedDecodeMin {
	case 2, 4, 8:
	default:
		errs = append(errs, fieldErr("reduced_decode_min", "must be 2, 4 or 8, got %d", c.ReducedDecodeMin))
	}
	if c.MaxPixels < 1 {
		errs = append(errs, fieldErr("max_pixels", "must be >= 1, got %d", c.MaxPixels))
	}
	if c.JPEGQuality < 1 || c.JPEGQuality > 100 {
		errs = append(errs, fieldErr("jpeg_quality", "must be in 1..100, got %d", c.JPEGQuality))
	}
	if c.PassengerSeatbeltOffence && !c.JudgePassenger {
		errs = append(errs, fieldErr("passenger_seatbelt_offence", "needs judge_passenger: true"))
	}
	switch c.FaceMask {
	case "pixelate", "fill":
	default:
		errs = append(errs, fieldErr("face_mask", "%q is not pixelate or fill", c.FaceMask))
	}
	return errors.Join(errs...)
}

func (r Region) validate() error {
	if !(r.X >= 0 && r.Y >= 0 && r.W > 0 && r.H > 0 && r.X+r.W <= 1.0001 && r.Y+r.H <= 1.0001) {
		return fmt.Errorf("region %+v must lie inside 0..1 with w, h > 0", r)
	}
	return nil
}

func isOffenceKind(k string) bool {
	for _, o := range pipeline.OffenceKinds {
		if o == k {
			return true
		}
	}
	return false
}
