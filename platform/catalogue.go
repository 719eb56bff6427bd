package platform

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed catalogue.yaml
var embeddedCatalogue []byte

// Languages of procedure a fine record may carry (Belgium's three official languages).
const (
	LangFR = "fr"
	LangNL = "nl"
	LangDE = "de"
)

// Catalogue maps each offence kind the detector can flag to its legal reference, degree,
// penalty and EU category. It is data, not code, because amounts and codes change by decree.
type Catalogue struct {
	Version       string                       `yaml:"version" json:"version"`
	EffectiveDate string                       `yaml:"effective_date" json:"effective_date"`
	Jurisdiction  string                       `yaml:"jurisdiction" json:"jurisdiction"`
	Sources       map[string]Source            `yaml:"sources" json:"sources"`
	Offences      map[string]OffenceEntry      `yaml:"offences" json:"offences"`
	Procedures    map[string]map[string]string `yaml:"procedures" json:"procedures"`
}

// Source is a legal text the catalogue cites.
type Source struct {
	Title       string `yaml:"title" json:"title"`
	URL         string `yaml:"url,omitempty" json:"url,omitempty"`
	PublishedIn string `yaml:"published_in,omitempty" json:"published_in,omitempty"`
}

// OffenceEntry is one offence kind's legal data.
type OffenceEntry struct {
	Code         string            `yaml:"code" json:"code"`
	Legal        LegalRef          `yaml:"legal" json:"legal"`
	Degree       int               `yaml:"degree" json:"degree"`
	DegreeSource string            `yaml:"degree_source,omitempty" json:"degree_source,omitempty"`
	Penalty      Penalty           `yaml:"penalty" json:"penalty"`
	EUCategory   EUCategory        `yaml:"eu_category" json:"eu_category"`
	Labels       map[string]string `yaml:"labels" json:"labels"`
}

// LegalRef is the provision infringed.
type LegalRef struct {
	Instrument string `yaml:"instrument" json:"instrument"`
	Article    string `yaml:"article" json:"article"`
	Source     string `yaml:"source,omitempty" json:"source,omitempty"`
}

// Penalty is the amount due and how it is collected.
type Penalty struct {
	Amount    string `yaml:"amount" json:"amount"` // decimal with two places, e.g. "174.00"
	Currency  string `yaml:"currency" json:"currency"`
	Procedure string `yaml:"procedure" json:"procedure"`
	Source    string `yaml:"source,omitempty" json:"source,omitempty"`
}

// EUCategory is the offence's category under Article 2 of Directive (EU) 2015/413.
type EUCategory struct {
	Directive string `yaml:"directive" json:"directive"`
	Letter    string `yaml:"letter" json:"letter"`
	Label     string `yaml:"label" json:"label"`
	Source    string `yaml:"source,omitempty" json:"source,omitempty"`
}

// ErrCatalogue marks a catalogue that cannot be used.
var ErrCatalogue = errors.New("platform: invalid offence catalogue")

// DefaultCatalogue is the catalogue shipped in the binary (platform/catalogue.yaml).
func DefaultCatalogue() (*Catalogue, error) {
	return ParseCatalogue(embeddedCatalogue)
}

// LoadCatalogue reads the catalogue at path, or the shipped one when path is empty.
func LoadCatalogue(path string) (*Catalogue, error) {
	if path == "" {
		return DefaultCatalogue()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCatalogue, err)
	}
	c, err := ParseCatalogue(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCatalogue decodes and checks a catalogue. Unknown keys are errors: a misspelt
// "ammount" must not silently drop a penalty.
func ParseCatalogue(b []byte) (*Catalogue, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Catalogue
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCatalogue, err)
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

var (
	amountRE   = regexp.MustCompile(`^[0-9]{1,7}\.[0-9]{2}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	euLetterRE = regexp.MustCompile(`^[a-h]$`)
)

// Check verifies every entry is complete. It does not check coverage of offence kinds;
// Covers does.
func (c *Catalogue) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrCatalogue, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(c.Version) == "" {
		return bad("version: must be set")
	}
	if _, err := time.Parse(time.DateOnly, c.EffectiveDate); err != nil {
		return bad("effective_date: %q is not YYYY-MM-DD", c.EffectiveDate)
	}
	if len(c.Offences) == 0 {
		return bad("offences: empty")
	}
	kinds := make([]string, 0, len(c.Offences))
	for k := range c.Offences {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		e := c.Offences[k]
		p := "offences." + k
		switch {
		case strings.TrimSpace(e.Code) == "":
			return bad("%s.code: must be set", p)
		case strings.TrimSpace(e.Legal.Instrument) == "" || strings.TrimSpace(e.Legal.Article) == "":
			return bad("%s.legal: instrument and article must be set", p)
		case e.Degree < 1 || e.Degree > 4:
			return bad("%s.degree: %d is not in 1..4", p, e.Degree)
		case !amountRE.MatchString(e.Penalty.Amount):
			return bad("%s.penalty.amount: %q is not a decimal with two places", p, e.Penalty.Amount)
		case !currencyRE.MatchString(e.Penalty.Currency):
			return bad("%s.penalty.currency: %q is not an ISO 4217 code", p, e.Penalty.Currency)
		case strings.TrimSpace(e.Penalty.Procedure) == "":
			return bad("%s.penalty.procedure: must be set", p)
		case strings.TrimSpace(e.EUCategory.Directive) == "":
			return bad("%s.eu_category.directive: must be set", p)
		case !euLetterRE.MatchString(e.EUCategory.Letter):
			return bad("%s.eu_category.letter: %q is not one of a..h (Directive (EU) 2015/413 art. 2)", p, e.EUCategory.Letter)
		}
		if minor, _ := amountMinor(e.Penalty.Amount); minor <= 0 {
			return bad("%s.penalty.amount: must be > 0", p)
		}
		for _, lang := range []string{LangFR, LangNL, LangDE} {
			if strings.TrimSpace(e.Labels[lang]) == "" {
				return bad("%s.labels.%s: must be set", p, lang)
			}
		}
		for field, src := range map[string]string{"legal.source": e.Legal.Source, "degree_source": e.DegreeSource,
			"penalty.source": e.Penalty.Source, "eu_category.source": e.EUCategory.Source} {
			if src == "" {
				continue
			}
			if _, ok := c.Sources[src]; !ok {
				return bad("%s.%s: source %q is not in sources", p, field, src)
			}
		}
	}
	return nil
}

// Covers reports the kinds that have no entry, so a catalogue that would leave a flagged
// offence without a legal basis is refused at start, not at the first fine.
func (c *Catalogue) Covers(kinds []string) error {
	var missing []string
	for _, k := range kinds {
		if _, ok := c.Offences[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no entry for offence kind(s) %s", ErrCatalogue, strings.Join(missing, ", "))
	}
	return nil
}

// Effective is the catalogue's effective date.
func (c *Catalogue) Effective() time.Time {
	t, _ := time.Parse(time.DateOnly, c.EffectiveDate)
	return t
}

// amountMinor turns "174.00" into 17400.
func amountMinor(s string) (int64, error) {
	if !amountRE.MatchString(s) {
		return 0, fmt.Errorf("amount %q is not a decimal with two places", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return w*100 + f, nil
}

func formatMinor(m int64) string { return fmt.Sprintf("%d.%02d", m/100, m%100) }
