package platform

import (
	_ "embed"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
	"gopkg.in/yaml.v3"

	"github.com/crossborder/offencecam/pipeline"
)

//go:embed languages.yaml
var embeddedLanguages []byte

// LanguageConfig decides the language of procedure of a fine record (see Languages.For).
type LanguageConfig struct {
	// Default is used for bilingual Brussels-Capital, places abroad and unknown municipalities.
	Default string `yaml:"default"`
	// ByCamera and BySite pin the language of a camera or site; they win over everything
	// else because a fixed camera's place never changes.
	ByCamera map[string]string `yaml:"by_camera,omitempty"`
	BySite   map[string]string `yaml:"by_site,omitempty"`
	// ByMunicipality adds to or overrides the shipped municipality table.
	ByMunicipality map[string]string `yaml:"by_municipality,omitempty"`
}

func validLang(l string) bool { return l == LangFR || l == LangNL || l == LangDE }

func (c LanguageConfig) validate(prefix string) error {
	if !validLang(c.Default) {
		return fmt.Errorf("%s.default: %q is not one of fr, nl, de", prefix, c.Default)
	}
	for name, m := range map[string]map[string]string{"by_camera": c.ByCamera, "by_site": c.BySite, "by_municipality": c.ByMunicipality} {
		for k, v := range m {
			if !validLang(v) {
				return fmt.Errorf("%s.%s[%q]: %q is not one of fr, nl, de", prefix, name, k, v)
			}
		}
	}
	return nil
}

// Basis of a language choice, carried in the record so the choice can be explained.
const (
	BasisCamera       = "camera"
	BasisSite         = "site"
	BasisMunicipality = "municipality"
	BasisBilingual    = "bilingual_default"
	BasisDefault      = "default"
)

const bilingual = "bilingual"

// Languages applies the language rule.
type Languages struct {
	cfg   LanguageConfig
	table map[string]string // normalised municipality name -> fr|nl|de|bilingual
}

// NewLanguages combines the configuration with the shipped municipality table.
func NewLanguages(cfg LanguageConfig) (*Languages, error) {
	var raw map[string][][]string
	if err := yaml.Unmarshal(embeddedLanguages, &raw); err != nil {
		return nil, fmt.Errorf("platform: shipped language table: %w", err)
	}
	l := &Languages{cfg: cfg, table: map[string]string{}}
	for lang, groups := range raw {
		for _, names := range groups {
			for _, n := range names {
				l.table[normName(n)] = lang
			}
		}
	}
	for n, lang := range cfg.ByMunicipality {
		l.table[normName(n)] = lang
	}
	return l, nil
}

// For picks the language of procedure: per camera, then per site, then the municipality of
// a Belgian place (configured, then shipped table; bilingual Brussels-Capital uses the
// default), then the default.
func (l *Languages) For(camera, site string, loc *pipeline.Location) (lang, basis string) {
	if v, ok := l.cfg.ByCamera[camera]; ok && camera != "" {
		return v, BasisCamera
	}
	if v, ok := l.cfg.BySite[site]; ok && site != "" {
		return v, BasisSite
	}
	if loc != nil && loc.Municipality != "" && (loc.Country == "" || strings.EqualFold(loc.Country, "BE")) {
		switch v := l.table[normName(loc.Municipality)]; v {
		case bilingual:
			return l.cfg.Default, BasisBilingual
		case LangFR, LangNL, LangDE:
			return v, BasisMunicipality
		}
	}
	return l.cfg.Default, BasisDefault
}

// normName folds case and accents and drops everything but letters and digits, so
// "Braine-l'Alleud", "braine l alleud" and "BRAINE-L’ALLEUD" are one key.
func normName(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
