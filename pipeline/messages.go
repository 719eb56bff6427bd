package pipeline

import (
	"encoding/json"
	"time"
)

// Location places a camera; it comes from the camera registry in the configuration.
type Location struct {
	Road         string  `json:"road,omitempty"`
	KmPoint      float64 `json:"km_point,omitempty"`
	Direction    string  `json:"direction,omitempty"`
	Municipality string  `json:"municipality,omitempty"`
	Country      string  `json:"country,omitempty"` // ISO 3166-1 alpha-2 of the place of the offence
	Lat          float64 `json:"lat,omitempty"`
	Lon          float64 `json:"lon,omitempty"`
}

// Views of a vehicle pass.
const (
	ViewFront    = "front"
	ViewOverhead = "overhead"
	ViewRear     = "rear"
)

// Frame sources.
const (
	SourceEvent   = "event"
	SourceListing = "listing"
	SourceInbox   = "inbox"
)

// Frame is one validated camera image waiting in FRAMES (one per bucket/key/etag).
type Frame struct {
	V           int       `json:"v"`
	ID          string    `json:"id"` // bucket/key/etag, also the Nats-Msg-Id
	Bucket      string    `json:"bucket"`
	Key         string    `json:"key"`
	ETag        string    `json:"etag"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type,omitempty"`
	Format      string    `json:"format,omitempty"` // "jpeg" or "png", sniffed from the bytes
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
	Camera      string    `json:"camera"`
	CapturedAt  time.Time `json:"captured_at"`
	Site        string    `json:"site,omitempty"`
	Lane        string    `json:"lane,omitempty"`
	Direction   string    `json:"direction,omitempty"`
	View        string    `json:"view,omitempty"`
	PassageID   string    `json:"passage_id"`
	Location    *Location `json:"location,omitempty"`
	// DriverSide is the side of the vehicle the driver sits on: "left" for left-hand-drive
	// traffic (the default in Belgium), "right" where the camera sees mostly RHD vehicles.
	DriverSide    string    `json:"driver_side,omitempty"`
	SpeedLimitKMH int       `json:"speed_limit_kmh,omitempty"`
	Source        string    `json:"source,omitempty"`
	ReceivedAt    time.Time `json:"received_at"`
	Extra         Extra     `json:"-"`
}

type frameAlias Frame

func (f Frame) MarshalJSON() ([]byte, error) { return marshalKeepingExtra(frameAlias(f), f.Extra) }
func (f *Frame) UnmarshalJSON(b []byte) error {
	var a frameAlias
	extra, err := unmarshalKeepingExtra(b, &a)
	if err != nil {
		return err
	}
	*f = Frame(a)
	f.Extra = extra
	return nil
}
func (f *Frame) SchemaVersion() int { return f.V }

// FrameID is the identity of an uploaded object version: the same bucket/key/etag is the
// same frame however often it is announced.
func FrameID(bucket, key, etag string) string { return bucket + "/" + key + "/" + etag }

// Box is an axis-aligned rectangle in pixels of the frame it was found in.
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Point is a pixel position.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// States of the driver's hands and belt.
const (
	StateUnknown = "unknown"

	PhoneHeld = "held"
	PhoneNone = "none"

	SeatbeltWorn    = "worn"
	SeatbeltNotWorn = "not_worn"
)

// Finding is one judged state with its score and where it was seen.
type Finding struct {
	State string  `json:"state"`
	Score float64 `json:"score"`
	Box   *Box    `json:"box,omitempty"`
	View  string  `json:"view,omitempty"`
}

// Plate is a read licence plate.
type Plate struct {
	Text           string    `json:"text"`                   // normalised: upper case, no separators
	Raw            string    `json:"raw,omitempty"`          // what the OCR read
	Country        string    `json:"country,omitempty"`      // ISO 3166-1 alpha-2
	CountryFrom    string    `json:"country_from,omitempty"` // "band" or "format"
	Confidence     float64   `json:"confidence"`
	CharConfidence []float64 `json:"char_confidence,omitempty"`
	Box            *Box      `json:"box,omitempty"`
	Corners        []Point   `json:"corners,omitempty"`
	View           string    `json:"view,omitempty"`
}

// Vehicle is one vehicle seen in a passage and what was judged about its occupants.
type Vehicle struct {
	Class      string  `json:"class"`
	Score      float64 `json:"score"`
	Box        Box     `json:"box"`
	View       string  `json:"view,omitempty"`
	Windshield *Box    `json:"windshield,omitempty"`
	Driver     *Box    `json:"driver,omitempty"`
	Passenger  *Box    `json:"passenger,omitempty"`
	Phone      Finding `json:"phone"`
	Seatbelt   Finding `json:"seatbelt"`
	// PassengerSeatbelt is the front passenger's belt, where a classifier judged it.
	PassengerSeatbelt *Finding `json:"passenger_seatbelt,omitempty"`
	Plate             *Plate   `json:"plate,omitempty"`
}

// Offence is one flagged offence with the detector's score for it.
type Offence struct {
	Kind    string  `json:"kind"`
	Score   float64 `json:"score"`
	Vehicle int     `json:"vehicle"` // index into Detection.Vehicles
}

// Evidence kinds.
const (
	EvidenceOriginal   = "original"
	EvidenceAnnotated  = "annotated"
	EvidencePlateCrop  = "plate_crop"
	EvidenceDriverCrop = "driver_crop"
)

// Evidence is one stored object kept with a case, with the hash that proves it unchanged.
type Evidence struct {
	Kind        string `json:"kind"`
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	View        string `json:"view,omitempty"`
}

// ModelRef names a model that took part in a decision.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Role    string `json:"role,omitempty"`
}

// FrameRef points at a frame of the passage.
type FrameRef struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
	View   string `json:"view,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}

// Detection is the detector's verdict on one passage, published on DETECTIONS with
// Nats-Msg-Id = passage id.
type Detection struct {
	V          int                `json:"v"`
	PassageID  string             `json:"passage_id"`
	Camera     string             `json:"camera"`
	Site       string             `json:"site,omitempty"`
	Location   *Location          `json:"location,omitempty"`
	CapturedAt time.Time          `json:"captured_at"`
	DetectedAt time.Time          `json:"detected_at"`
	Frames     []FrameRef         `json:"frames"`
	Vehicles   []Vehicle          `json:"vehicles"`
	Offences   []Offence          `json:"offences"`
	Flagged    bool               `json:"flagged"`
	Evidence   []Evidence         `json:"evidence,omitempty"`
	Models     []ModelRef         `json:"models,omitempty"`
	TimingsMS  map[string]float64 `json:"timings_ms,omitempty"`
	// Shadow is what the candidate models of detector.shadow said about the same crops:
	// recorded to compare them with the live models on reviewed cases, never an offence.
	Shadow *Shadow `json:"shadow,omitempty"`
	Extra  Extra   `json:"-"`
}

// Shadow is a candidate model's verdict on a passage, beside the live one.
type Shadow struct {
	Models []ModelRef `json:"models"`
	// Vehicles are index-aligned with Detection.Vehicles.
	Vehicles []ShadowVehicle `json:"vehicles"`
	// Offences are what the candidate would have flagged (kinds, scores, vehicles).
	Offences []Offence `json:"offences"`
}

// ShadowVehicle is the candidate's findings for one vehicle.
type ShadowVehicle struct {
	Phone    Finding `json:"phone"`
	Seatbelt Finding `json:"seatbelt"`
}

type detectionAlias Detection

func (d Detection) MarshalJSON() ([]byte, error) {
	return marshalKeepingExtra(detectionAlias(d), d.Extra)
}
func (d *Detection) UnmarshalJSON(b []byte) error {
	var a detectionAlias
	extra, err := unmarshalKeepingExtra(b, &a)
	if err != nil {
		return err
	}
	*d = Detection(a)
	d.Extra = extra
	return nil
}
func (d *Detection) SchemaVersion() int { return d.V }

// Review stages and outcomes.
const (
	StageFirst      = "first"
	StageSecond     = "second"
	StageSupervisor = "supervisor"

	OutcomeConfirm = "confirm"
	OutcomeReject  = "reject"
	OutcomeDispute = "dispute"
)

// Decision is one reviewer's decision on a case.
type Decision struct {
	V         int       `json:"v"`
	CaseID    string    `json:"case_id"`
	Stage     string    `json:"stage"`
	Reviewer  string    `json:"reviewer"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason,omitempty"` // reason code for a rejection or dispute
	Plate     string    `json:"plate,omitempty"`
	Country   string    `json:"country,omitempty"`
	Offences  []string  `json:"offences,omitempty"` // the confirmed subset of the flagged kinds
	Note      string    `json:"note,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
	Extra     Extra     `json:"-"`
}

type decisionAlias Decision

func (d Decision) MarshalJSON() ([]byte, error) {
	return marshalKeepingExtra(decisionAlias(d), d.Extra)
}
func (d *Decision) UnmarshalJSON(b []byte) error {
	var a decisionAlias
	extra, err := unmarshalKeepingExtra(b, &a)
	if err != nil {
		return err
	}
	*d = Decision(a)
	d.Extra = extra
	return nil
}
func (d *Decision) SchemaVersion() int { return d.V }

// FineRecord is a confirmed case on its way to the fines platform: the FINES outbox message,
// Nats-Msg-Id = case id. The platform connector adds legal codes and amounts from its catalogue.
type FineRecord struct {
	V           int        `json:"v"`
	CaseID      string     `json:"case_id"`
	PassageID   string     `json:"passage_id"`
	Camera      string     `json:"camera"`
	Site        string     `json:"site,omitempty"`
	Location    *Location  `json:"location,omitempty"`
	OffenceAt   time.Time  `json:"offence_at"`
	Offences    []string   `json:"offences"`
	Plate       string     `json:"plate"`
	Country     string     `json:"country"`
	Evidence    []Evidence `json:"evidence"`
	Decisions   []Decision `json:"decisions"`
	Models      []ModelRef `json:"models,omitempty"`
	ConfirmedAt time.Time  `json:"confirmed_at"`
	Extra       Extra      `json:"-"`
}

type fineAlias FineRecord

func (f FineRecord) MarshalJSON() ([]byte, error) { return marshalKeepingExtra(fineAlias(f), f.Extra) }
func (f *FineRecord) UnmarshalJSON(b []byte) error {
	var a fineAlias
	extra, err := unmarshalKeepingExtra(b, &a)
	if err != nil {
		return err
	}
	*f = FineRecord(a)
	f.Extra = extra
	return nil
}
func (f *FineRecord) SchemaVersion() int { return f.V }

// AuditEvent is one entry of the append-only AUDIT stream: who did what, when, to what.
type AuditEvent struct {
	V           int               `json:"v"`
	At          time.Time         `json:"at"`
	Actor       string            `json:"actor"` // user name, or "system:<role>"
	Action      string            `json:"action"`
	Entity      string            `json:"entity"` // "case", "user", "evidence", "fine"…
	EntityID    string            `json:"entity_id"`
	From        string            `json:"from,omitempty"`
	To          string            `json:"to,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	PlateBefore string            `json:"plate_before,omitempty"`
	PlateAfter  string            `json:"plate_after,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Extra       Extra             `json:"-"`
}

type auditAlias AuditEvent

func (a AuditEvent) MarshalJSON() ([]byte, error) { return marshalKeepingExtra(auditAlias(a), a.Extra) }
func (a *AuditEvent) UnmarshalJSON(b []byte) error {
	var x auditAlias
	extra, err := unmarshalKeepingExtra(b, &x)
	if err != nil {
		return err
	}
	*a = AuditEvent(x)
	a.Extra = extra
	return nil
}
func (a *AuditEvent) SchemaVersion() int { return a.V }

// DLQEntry is a message a stage could not process, kept with the reason and the original.
type DLQEntry struct {
	V          int               `json:"v"`
	Stage      string            `json:"stage"`
	Reason     string            `json:"reason"`
	Stream     string            `json:"stream,omitempty"`
	Subject    string            `json:"subject,omitempty"`
	Sequence   uint64            `json:"sequence,omitempty"`
	Deliveries uint64            `json:"deliveries,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`     // the original message when it is JSON
	RawData    []byte            `json:"raw_data,omitempty"` // the original bytes otherwise
	At         time.Time         `json:"at"`
	Extra      Extra             `json:"-"`
}

type dlqAlias DLQEntry

func (d DLQEntry) MarshalJSON() ([]byte, error) { return marshalKeepingExtra(dlqAlias(d), d.Extra) }
func (d *DLQEntry) UnmarshalJSON(b []byte) error {
	var a dlqAlias
	extra, err := unmarshalKeepingExtra(b, &a)
	if err != nil {
		return err
	}
	*d = DLQEntry(a)
	d.Extra = extra
	return nil
}
func (d *DLQEntry) SchemaVersion() int { return d.V }

// NewDLQEntry wraps an original message, keeping it as JSON when it is valid JSON.
func NewDLQEntry(stage, reason, stream, subject string, seq, deliveries uint64, data []byte, at time.Time) DLQEntry {
	e := DLQEntry{V: Version, Stage: stage, Reason: reason, Stream: stream, Subject: subject,
		Sequence: seq, Deliveries: deliveries, At: at.UTC()}
	if json.Valid(data) {
		e.Data = json.RawMessage(append([]byte(nil), data...))
	} else {
		e.RawData = append([]byte(nil), data...)
	}
	return e
}

// Fine result statuses, in the order a case goes through them.
const (
	FineSent     = "sent"     // the platform connector has started sending the record
	FineCreated  = "created"  // the platform holds the record (2xx, or 409 already exists)
	FineRejected = "rejected" // the platform or the schema refused it; Message says why
)

// FineResult is the platform connector's report on one case, published on
// FineResultSubject(case id) in the FINES stream with Nats-Msg-Id = case id + "/" + status.
// The review stage owns the case state and applies it (sent → fine_created / platform_rejected):
// stages talk through messages, never through each other's stores.
type FineResult struct {
	V         int       `json:"v"`
	CaseID    string    `json:"case_id"`
	Status    string    `json:"status"`
	Reference string    `json:"reference,omitempty"` // the platform's fine reference
	Message   string    `json:"message,omitempty"`   // the platform's or the schema's reason
	Attempts  int       `json:"attempts,omitempty"`
	At        time.Time `json:"at"`
	Extra     Extra     `json:"-"`
}

type fineResultAlias FineResult

func (f FineResult) MarshalJSON() ([]byte, error) {
	return marshalKeepingExtra(fineResultAlias(f), f.Extra)
}
func (f *FineResult) UnmarshalJSON(b []byte) error {
	var a fineResultAlias
	extra, err := unmarshalKeepingExtra(b, &a)
	if err != nil {
		return err
	}
	*f = FineResult(a)
	f.Extra = extra
	return nil
}
func (f *FineResult) SchemaVersion() int { return f.V }
