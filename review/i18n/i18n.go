// Package i18n holds the review UI's message catalogues (French, Dutch, English) and its
// date formatting in Europe/Brussels.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Brussels must work on hosts and images without system tzdata
)

//go:embed messages/*.json
var files embed.FS

// Languages in the order the UI offers them; the first is the fallback for a missing key.
var Languages = []string{"fr", "nl", "en"}

const fallback = "en"

var catalogues = map[string]map[string]string{}

// Brussels is the time zone every date in the UI is shown in.
var Brussels *time.Location

func init() {
	for _, l := range Languages {
		data, err := files.ReadFile("messages/" + l + ".json")
		if err != nil {
			panic(fmt.Sprintf("i18n: catalogue %s missing from the build: %v", l, err))
		}
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			panic(fmt.Sprintf("i18n: catalogue %s: %v", l, err))
		}
		catalogues[l] = m
	}
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		panic(fmt.Sprintf("i18n: Europe/Brussels: %v", err))
	}
	Brussels = loc
}

// Keys returns the sorted keys of a language's catalogue.
func Keys(lang string) []string {
	var out []string
	for k := range catalogues[lang] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Supported reports whether lang has a catalogue.
func Supported(lang string) bool { return slices.Contains(Languages, lang) }

// Localizer translates for one language.
type Localizer struct{ Lang string }

// For returns the localizer of lang, or the fallback language's when lang is unknown.
func For(lang string) Localizer {
	if !Supported(lang) {
		lang = fallback
	}
	return Localizer{Lang: lang}
}

// T translates key, formatting args into it with fmt verbs when given. A key missing from
// the language falls back to English, then to the key itself (visible, never empty).
func (l Localizer) T(key string, args ...any) string {
	s, ok := catalogues[l.Lang][key]
	if !ok {
		if s, ok = catalogues[fallback][key]; !ok {
			s = key
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Has reports whether the key exists (reason codes may come from configuration).
func (l Localizer) Has(key string) bool { _, ok := catalogues[l.Lang][key]; return ok }

// Label translates prefix+"."+code, falling back to the code itself for codes the catalogue
// does not know (operators may configure their own reason codes).
func (l Localizer) Label(prefix string, codeV any) string {
	code := fmt.Sprint(codeV)
	key := prefix + "." + code
	if s, ok := catalogues[l.Lang][key]; ok {
		return s
	}
	if s, ok := catalogues[fallback][key]; ok {
		return s
	}
	return strings.ReplaceAll(code, "_", " ")
}

// Time formats t in Europe/Brussels (dd/mm/yyyy HH:MM:SS, as Belgian forms do in both
// languages); the zero time is a dash.
func (l Localizer) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(Brussels).Format("02/01/2006 15:04:05")
}

// Duration formats a duration roughly (for backlog ages).
func (l Localizer) Duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dmin", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02d", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d %s", int(d.Hours()/24), l.T("unit.days"))
}
