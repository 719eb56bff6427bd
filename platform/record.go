package platform

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crossborder/offencecam/pipeline"
)

// RecordFormat names the version of the record layout; it changes with
// schema/fine-record.schema.json.
const RecordFormat = "offencecam.fine-record/1"

// Record is what the fines platform receives for one confirmed case. It carries everything
// a notice must state: the nature of the offence, place, date and time, the law infringed,
// the penalty and the detection device. Its body is a pure function of the FINES message and
// the catalogue, so every retry sends the same bytes under the same Idempotency-Key.
type Record struct {
	Format    string          `json:"format"`
	CaseID    string          `json:"case_id"`
	PassageID string          `json:"passage_id,omitempty"`
	Catalogue CatalogueRef    `json:"catalogue"`
	Offences  []RecordOffence `json:"offences"`
	Total     Money           `json:"total"`
	OffenceAt OffenceTime     `json:"offence_at"`
	Place     Place           `json:"place"`
	Vehicle   Vehicle         `json:"vehicle"`
	Evidence  []EvidenceRef   `json:"evidence"`
	Reviews   []Review        `json:"reviews"`
	Confirmed string          `json:"confirmed_at"`
	Models    []ModelRef      `json:"models"`
	Device    Device          `json:"device"`
	Language  string          `json:"language"`
	LangBasis string          `json:"language_basis"`
}

// CatalogueRef says which catalogue priced the record.
type CatalogueRef struct {
	Version       string `json:"version"`
	EffectiveDate string `json:"effective_date"`
}

// RecordOffence is one offence with its legal basis and penalty.
type RecordOffence struct {
	Kind       string            `json:"kind"`
	Code       string            `json:"code"`
	Legal      LegalRef          `json:"legal"`
	Degree     int               `json:"degree"`
	Penalty    RecordPenalty     `json:"penalty"`
	EUCategory EUCategory        `json:"eu_category"`
	Label      string            `json:"label"` // in the language of procedure
	Labels     map[string]string `json:"labels"`
}

// RecordPenalty is the amount due and its collection procedure.
type RecordPenalty struct {
	Money
	Procedure      string `json:"procedure"`
	ProcedureLabel string `json:"procedure_label,omitempty"`
}

// Money is an amount as a decimal string with two places, never a float.
type Money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// OffenceTime is the instant of the offence in UTC and in the local time of the place.
type OffenceTime struct {
	UTC      string `json:"utc"`
	Local    string `json:"local"`
	TimeZone string `json:"time_zone"`
}

// Place is where the offence was seen.
type Place struct {
	Site         string  `json:"site,omitempty"`
	Road         string  `json:"road,omitempty"`
	KmPoint      float64 `json:"km_point,omitempty"`
	Direction    string  `json:"direction,omitempty"`
	Municipality string  `json:"municipality,omitempty"`
	Country      string  `json:"country"`
	GPS          *GPS    `json:"gps,omitempty"`
}

// GPS is a WGS 84 position.
type GPS struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Vehicle identifies the vehicle by its plate.
type Vehicle struct {
	Plate   string `json:"plate"`
	Country string `json:"country"`
}

// EvidenceRef is a stored evidence object with the hash that proves it unchanged.
type EvidenceRef struct {
	Kind        string `json:"kind"`
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	View        string `json:"view,omitempty"`
}

// Review is one reviewer's decision.
type Review struct {
	Stage     string   `json:"stage"`
	Reviewer  string   `json:"reviewer"`
	Outcome   string   `json:"outcome"`
	Offences  []string `json:"offences,omitempty"`
	DecidedAt string   `json:"decided_at"`
}

// ModelRef names a model that took part in the detection.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Role    string `json:"role,omitempty"`
}

// Device is the detection device.
type Device struct {
	Camera string `json:"camera"`
	Site   string `json:"site,omitempty"`
}

// ErrRecord marks a FINES message that cannot become a valid record; the case is rejected
// with the reason, never sent.
var ErrRecord = errors.New("fine record invalid")

// Builder turns FINES messages into records.
type Builder struct {
	cat   *Catalogue
	langs *Languages
	zone  *time.Location
}

// NewBuilder needs a catalogue that covers every offence kind, the language rule and the
// time zone local times are rendered in.
func NewBuilder(cat *Catalogue, langs *Languages, zone *time.Location) *Builder {
	return &Builder{cat: cat, langs: langs, zone: zone}
}

// Build makes the record. Errors wrap ErrRecord and say what is missing; the JSON Schema
// check (Schema.Validate) catches the rest.
func (b *Builder) Build(f pipeline.FineRecord) (Record, error) {
	bad := func(format string, a ...any) (Record, error) {
		return Record{}, fmt.Errorf("%w: %s", ErrRecord, fmt.Sprintf(format, a...))
	}
	if len(f.Offences) == 0 {
		return bad("offences: none confirmed")
	}
	if f.OffenceAt.IsZero() {
		return bad("offence_at: missing")
	}
	lang, basis := b.langs.For(f.Camera, f.Site, f.Location)
	r := Record{
		Format:    RecordFormat,
		CaseID:    f.CaseID,
		PassageID: f.PassageID,
		Catalogue: CatalogueRef{Version: b.cat.Version, EffectiveDate: b.cat.EffectiveDate},
		OffenceAt: OffenceTime{
			UTC:      f.OffenceAt.UTC().Format(time.RFC3339Nano),
			Local:    f.OffenceAt.In(b.zone).Format(time.RFC3339Nano),
			TimeZone: b.zone.String(),
		},
		Place:     Place{Site: f.Site},
		Vehicle:   Vehicle{Plate: normPlate(f.Plate), Country: strings.ToUpper(strings.TrimSpace(f.Country))},
		Evidence:  []EvidenceRef{},
		Reviews:   []Review{},
		Models:    []ModelRef{},
		Device:    Device{Camera: f.Camera, Site: f.Site},
		Language:  lang,
		LangBasis: basis,
	}
	if !f.ConfirmedAt.IsZero() {
		r.Confirmed = f.ConfirmedAt.UTC().Format(time.RFC3339Nano)
	}
	var total int64
	currency := ""
	seen := map[string]bool{}
	for _, kind := range f.Offences {
		if seen[kind] {
			continue // a kind confirmed twice is still one offence
		}
		seen[kind] = true
		e, ok := b.cat.Offences[kind]
		if !ok {
			return bad("offences: kind %q is not in catalogue %s", kind, b.cat.Version)
		}
		minor, err := amountMinor(e.Penalty.Amount)
		if err != nil {
			return bad("catalogue %s: %s: %v", b.cat.Version, kind, err)
		}
		if currency != "" && currency != e.Penalty.Currency {
			return bad("offences: mixed currencies %s and %s", currency, e.Penalty.Currency)
		}
		currency = e.Penalty.Currency
		total += minor
		r.Offences = append(r.Offences, RecordOffence{
			Kind:   kind,
			Code:   e.Code,
			Legal:  e.Legal,
			Degree: e.Degree,
			Penalty: RecordPenalty{
				Money:          Money{Amount: e.Penalty.Amount, Currency: e.Penalty.Currency},
				Procedure:      e.Penalty.Procedure,
				ProcedureLabel: b.cat.Procedures[e.Penalty.Procedure][lang],
			},
			EUCategory: e.EUCategory,
			Label:      e.Labels[lang],
			Labels:     e.Labels,
		})
	}
	r.Total = Money{Amount: formatMinor(total), Currency: currency}
	if loc := f.Location; loc != nil {
		r.Place.Road = loc.Road
		r.Place.KmPoint = loc.KmPoint
		r.Place.Direction = loc.Direction
		r.Place.Municipality = loc.Municipality
		r.Place.Country = loc.Country
		if loc.Lat != 0 || loc.Lon != 0 {
			r.Place.GPS = &GPS{Lat: loc.Lat, Lon: loc.Lon}
		}
	}
	if r.Place.Country == "" && r.Place.Municipality != "" && b.cat.Jurisdiction != "" {
		// A camera registry entry without a country is in the catalogue's jurisdiction.
		r.Place.Country = b.cat.Jurisdiction
	}
	for _, e := range f.Evidence {
		r.Evidence = append(r.Evidence, EvidenceRef{Kind: e.Kind, Bucket: e.Bucket, Key: e.Key,
			SHA256: e.SHA256, Size: e.Size, ContentType: e.ContentType, View: e.View})
	}
	for _, d := range f.Decisions {
		rv := Review{Stage: d.Stage, Reviewer: d.Reviewer, Outcome: d.Outcome, Offences: d.Offences}
		if !d.DecidedAt.IsZero() {
			rv.DecidedAt = d.DecidedAt.UTC().Format(time.RFC3339Nano)
		}
		r.Reviews = append(r.Reviews, rv)
	}
	for _, m := range f.Models {
		r.Models = append(r.Models, ModelRef{Name: m.Name, Version: m.Version, Role: m.Role})
	}
	return r, nil
}

// normPlate drops the separators a reviewer may type when correcting a plate ("1-ABC-234",
// "1 abc 234") and upper-cases it; anything else stays, for the schema to judge.
func normPlate(p string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '\u00b7', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(p))
}
