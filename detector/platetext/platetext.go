// Package platetext turns what a plate OCR read into a plate number: normalisation, the EU
// band's country code that OCR glues to the front, the national formats of BE, NL, FR, DE and
// LU, and confusable characters (O/0, I/1, B/8, ...) fixed only where a format demands the
// other kind of character at that position. It is pure Go and has no state.
package platetext

import (
	"strings"
	"unicode"
)

// Where a Result's country came from.
const (
	FromBand   = "band"
	FromFormat = "format"
)

// Result is an interpreted plate read.
type Result struct {
	Text        string    // normalised, band code removed, confusables fixed
	Raw         string    // what the OCR read
	Country     string    // ISO 3166-1 alpha-2 (BE, NL, FR, DE, LU) or "" when unknown/ambiguous
	CountryFrom string    // FromBand, FromFormat or ""
	Format      string    // the layout that accepted Text, e.g. "BE 1-ABC-234"; "" if none; tied layouts of several countries joined by " | "
	Fixes       int       // confusable characters replaced
	Confidence  float64   // mean of CharConf; 0 when the OCR gave no confidences
	CharConf    []float64 // one per rune of Text; fixed characters count half
}

// Valid reports whether a national format accepted the text.
func (r Result) Valid() bool { return r.Format != "" }

// Options tune Interpret.
type Options struct {
	// PreferCountry breaks ties between countries whose formats accept the same text equally
	// well (e.g. "BE" for cameras in Belgium). Empty: ties leave the country unknown.
	PreferCountry string
	// MaxFixConf: a confusable character is only replaced when the OCR read it with a
	// confidence below this. 0 means DefaultMaxFixConf; above 1, confidence never blocks a fix.
	MaxFixConf float64
}

// DefaultMaxFixConf is the confidence below which a character may be replaced by its
// confusable. Measured on the US plates in ../shared/data/plates with fast-plate-ocr: the
// five correct reads that fixes toward BE/NL/DE layouts would have broken (YF2L6G -> YFZL66,
// R589789 -> RSB9789, ...) all had the touched characters at >= 0.93, while misread
// characters are mostly below 0.7. Plates of countries without a format here must survive.
const DefaultMaxFixConf = 0.9

// Normalize upper-cases a read and keeps only letters and digits: spaces, dashes, dots,
// middle dots and any other separator or symbol go. Full-width forms become ASCII.
func Normalize(raw string) string {
	s, _ := normalizeAligned(raw, nil)
	return string(s)
}

// normalizeAligned is Normalize that also drops the confidences of dropped characters.
// Confidences that do not match the read rune for rune are ignored (nil result).
func normalizeAligned(raw string, conf []float32) ([]rune, []float64) {
	in := []rune(raw)
	if len(conf) != len(in) {
		conf = nil
	}
	out := make([]rune, 0, len(in))
	var oc []float64
	if conf != nil {
		oc = make([]float64, 0, len(in))
	}
	for i, r := range in {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r -= 0xFEE0
		}
		r = unicode.ToUpper(r)
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			continue
		}
		out = append(out, r)
		if conf != nil {
			c := float64(conf[i])
			if !(c >= 0) { // NaN or negative: no information
				c = 0
			}
			oc = append(oc, min(c, 1))
		}
	}
	return out, oc
}

// Interpret is InterpretWith without options.
func Interpret(raw string, charConf []float32) Result {
	return InterpretWith(raw, charConf, Options{})
}

// InterpretWith interprets an OCR read (charConf: one confidence per rune of raw, or nil):
//
//  1. Normalize.
//  2. EU band: when the text starts with a band code (NL, B, F, D, L) and the rest is a valid
//     plate of THAT country (confusables allowed), the code is removed and the country comes
//     from the band, provided the code's characters were read with lower confidence than the
//     rest (band glyphs are small and printed differently, so OCR is less sure of them; a
//     surely read leading B is Bucharest's, not Belgium's band). Without confidences the
//     code is removed unless the whole text is also valid for that country (a German plate
//     of Düsseldorf, "D AB 123", read without its band).
//  3. Otherwise the national formats: the fewest confusable fixes wins, then the most
//     specific format (current fixed layout > legacy fixed layout > broad variable scheme);
//     a tie between countries leaves Country empty (or takes Options.PreferCountry when it is
//     among them), and ties that would fix the text differently leave the text unfixed.
//
// Confusables are fixed at most 2 per plate (1 below 6 characters), never where the read
// already fits, and only characters read with confidence below Options.MaxFixConf. Without
// confidences, characters are fixed only toward the country named by a band: a fix toward
// whichever of five national layouts happens to fit would corrupt correct reads of plates
// from every other country. Without any accepting format the normalised text is returned
// as read.
func InterpretWith(raw string, charConf []float32, opt Options) Result {
	s, conf := normalizeAligned(raw, charConf)
	res := Result{Raw: raw, Text: string(s), CharConf: conf}
	gate := fixGate{conf: conf, max: opt.MaxFixConf}
	if gate.max == 0 {
		gate.max = DefaultMaxFixConf
	}
	for _, b := range bands {
		code := []rune(b.code)
		if len(s) < len(code)+3 || string(s[:len(code)]) != b.code {
			continue
		}
		band := gate
		band.withoutConf = true
		var rest []float64
		if conf != nil {
			rest = conf[len(code):]
		}
		m, ok := choose(s[len(code):], b.country, "", band.from(len(code)))
		if !ok || m.country == "" {
			continue
		}
		// The code's glyphs are small and white on blue, unlike every character of the
		// registration: read as surely as the rest, they are the registration's own
		// (Bucharest "B 123 ABC", Berlin "B AB 1234"), not a glued band.
		weakCode := conf != nil && mean(conf[:len(code)]) < mean(rest)
		if conf != nil && !weakCode {
			continue
		}
		if whole, ok := choose(s, b.country, "", band); ok && whole.country != "" && whole.fixes <= m.fixes && !weakCode {
			return finish(res, whole, conf, FromFormat)
		}
		return finish(res, m, rest, FromBand)
	}
	m, ok := choose(s, "", opt.PreferCountry, gate)
	if !ok {
		res.Confidence = mean(conf)
		return res
	}
	from := FromFormat
	if m.country == "" {
		from = ""
	}
	return finish(res, m, conf, from)
}

func finish(res Result, m match, conf []float64, from string) Result {
	res.Text = string(m.text)
	res.Country = m.country
	res.CountryFrom = from
	res.Format = m.format
	res.Fixes = m.fixes
	res.CharConf = nil
	if conf != nil {
		res.CharConf = make([]float64, len(conf))
		for i, c := range conf {
			if m.fixed[i] {
				c /= 2
			}
			res.CharConf[i] = c
		}
	}
	res.Confidence = mean(res.CharConf)
	return res
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// match is a read fitted to a template.
type match struct {
	country, format string
	rank            int
	text            []rune
	fixed           []bool
	fixes           int
}

func maxFixes(n int) int { return min(2, n/3) }

// fixGate says which characters of a read may be replaced by a confusable.
type fixGate struct {
	conf        []float64 // per character, nil when the OCR gave none
	max         float64   // replace only below this confidence
	withoutConf bool      // with no confidences, allow fixes (the country is known)
	offset      int       // index of the read's first character in conf
}

func (g fixGate) from(offset int) fixGate { g.offset += offset; return g }

func (g fixGate) allows(i int) bool {
	if g.conf == nil {
		return g.withoutConf
	}
	return g.conf[g.offset+i] < g.max
}

// fit fits s to t, replacing confusable characters where t demands the other kind.
func fit(t template, s []rune, limit int, gate fixGate) (match, bool) {
	m := match{country: t.country, format: t.format, rank: t.rank, text: make([]rune, len(s)), fixed: make([]bool, len(s))}
	for i, r := range s {
		set := t.sets[i]
		if strings.ContainsRune(set, r) {
			m.text[i] = r
			continue
		}
		if !gate.allows(i) {
			return match{}, false
		}
		ok := false
		for _, c := range confusableFor(t.country, r) {
			if strings.ContainsRune(set, c) {
				m.text[i], m.fixed[i], ok = c, true, true
				m.fixes++
				break
			}
		}
		if !ok || m.fixes > limit {
			return match{}, false
		}
	}
	return m, extraValid(t, m.text)
}

// choose finds the best fit of s among the templates of country (all when ""). ok is false
// when nothing fits, or when equally good fits disagree on the text. When they agree on the
// text but not on the country, the match comes back with country "" and the tied formats
// joined by " | " (unless prefer is among the tied countries).
func choose(s []rune, country, prefer string, gate fixGate) (match, bool) {
	var best []match
	for _, t := range templatesByLen[len(s)] {
		if country != "" && t.country != country {
			continue
		}
		m, ok := fit(t, s, maxFixes(len(s)), gate)
		if !ok {
			continue
		}
		if len(best) > 0 {
			b := best[0]
			if m.fixes > b.fixes || (m.fixes == b.fixes && m.rank < b.rank) {
				continue
			}
			if m.fixes < b.fixes || m.rank > b.rank {
				best = best[:0]
			}
		}
		best = append(best, m)
	}
	if len(best) == 0 {
		return match{}, false
	}
	first := best[0]
	sameCountry := true
	for _, m := range best[1:] {
		if string(m.text) != string(first.text) {
			return match{}, false
		}
		if m.country != first.country {
			sameCountry = false
		}
	}
	if sameCountry {
		return first, true
	}
	for _, m := range best {
		if m.country == prefer {
			return m, true
		}
	}
	var formats []string
	for _, m := range best {
		formats = append(formats, m.format)
	}
	first.country, first.format = "", strings.Join(formats, " | ")
	return first, true
}

// Best picks, across views and reads of one vehicle, the read a national format accepts,
// then the one read with the highest confidence (Belgian front plates are owner-made and may
// not match the official rear plate, so an invalid read must not win on confidence alone).
// Among equals the earlier read wins; no reads give the zero Result.
func Best(reads []Result) Result {
	var best Result
	for i, r := range reads {
		if i == 0 || better(r, best) {
			best = r
		}
	}
	return best
}

func better(a, b Result) bool {
	if a.Valid() != b.Valid() {
		return a.Valid()
	}
	if (a.Country != "") != (b.Country != "") {
		return a.Country != ""
	}
	return a.Confidence > b.Confidence
}
