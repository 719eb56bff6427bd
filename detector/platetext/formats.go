package platetext

import "strings"

// Country codes are ISO 3166-1 alpha-2, as pipeline.Plate.Country expects.
const (
	BE = "BE"
	NL = "NL"
	FR = "FR"
	DE = "DE"
	LU = "LU"
)

// Character sets a template position may demand.
const (
	letters    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits     = "0123456789"
	nonZero    = "123456789"
	deArea     = letters + "ÄÖÜ"           // German area codes may carry umlauts (MÜ, TÖL).
	frSIVAlpha = "ABCDEFGHJKLMNPQRSTVWXYZ" // SIV never uses I, O, U.
	deSuffix   = "EH"                      // electric / historic vehicle suffix
	frDeptTail = "AB"                      // Corsica: 2A, 2B
	frDOMTail  = "123456"                  // overseas departments 971..976
)

// Ranks order how much a matching format tells about the country when several countries
// accept the same text: an exact fixed layout in current issue says more than a legacy one,
// and both say more than a broad variable-length scheme (German, numeric Luxembourg).
const (
	rankBroad   = 1
	rankLegacy  = 2
	rankCurrent = 3
)

// template is one concrete layout: the allowed characters at each position.
type template struct {
	country string
	format  string // human description, e.g. "BE 1-ABC-234"
	rank    int
	sets    []string
}

// spec builds a template from a compact layout: L letter, D digit, N non-zero digit, or a
// literal set given as an argument for each '?' (in order); any other character stands for
// itself.
func spec(country, format string, rank int, layout string, literal ...string) template {
	t := template{country: country, format: format, rank: rank}
	for _, c := range layout {
		switch c {
		case 'L':
			t.sets = append(t.sets, letters)
		case 'D':
			t.sets = append(t.sets, digits)
		case 'N':
			t.sets = append(t.sets, nonZero)
		case '?':
			t.sets = append(t.sets, literal[0])
			literal = literal[1:]
		default: // a fixed character
			t.sets = append(t.sets, string(c))
		}
	}
	return t
}

// templatesByLen indexes every known layout by its length.
var templatesByLen = buildTemplates()

func buildTemplates() map[int][]template {
	var all []template

	// Belgium (DIV). Since Nov 2010: 1-ABC-234 (first digit is the series, 1 then 2, ...).
	// 2008-2010: 123-ABC. 1973-2008: ABC-123. Sources: nl.wikipedia.org/wiki/Belgisch_kenteken;
	// the faker nl_BE automotive provider lists the same three layouts.
	all = append(all,
		spec(BE, "BE 1-ABC-234", rankCurrent, "NLLLDDD"),
		spec(BE, "BE 123-ABC", rankLegacy, "DDDLLL"),
		spec(BE, "BE ABC-123", rankLegacy, "LLLDDD"),
	)

	// Netherlands: the RDW "sidecodes" 1-14, all six characters. 1-3 (1951-1978) are legacy;
	// 4-14 are the ones on most cars today. Source: RDW "uitleg over de cijfers en letters op
	// de kentekenplaat"; en.wikipedia.org/wiki/Vehicle_registration_plates_of_the_Netherlands.
	nlSidecodes := []string{
		"LLDDDD", "DDDDLL", "DDLLDD", "LLDDLL", "LLLLDD", "DDLLLL", "DDLLLD",
		"DLLLDD", "LLDDDL", "LDDDLL", "LLLDDL", "LDDLLL", "DLLDDD", "DDDLLD",
	}
	for i, l := range nlSidecodes {
		rank := rankCurrent
		if i < 3 {
			rank = rankLegacy
		}
		all = append(all, spec(NL, "NL sidecode "+itoa(i+1), rank, l))
	}

	// France. SIV since 2009: AA-123-AA, letters without I/O/U, number 001-999 (000 is
	// rejected in match). FNI 1950-2009, still on older cars: 1-4 digits, 1-3 letters, then
	// the department: 2 digits, 2A/2B (Corsica) or 971-976 (overseas).
	// Source: fr.wikipedia.org/wiki/Plaque_d'immatriculation_française.
	all = append(all, spec(FR, "FR SIV AA-123-AA", rankCurrent, "??DDD??",
		frSIVAlpha, frSIVAlpha, frSIVAlpha, frSIVAlpha))
	for d := 1; d <= 4; d++ {
		for l := 1; l <= 3; l++ {
			core := strings.Repeat("D", d) + strings.Repeat("L", l)
			all = append(all,
				spec(FR, "FR FNI 1234 AB 56", rankLegacy, core+"DD"),
				spec(FR, "FR FNI 1234 AB 2A", rankLegacy, core+"2?", frDeptTail),
				spec(FR, "FR FNI 1234 AB 971", rankLegacy, core+"97?", frDOMTail),
			)
		}
	}

	// Germany (FZV): area code of 1-3 letters, 1-2 letters, 1-4 digits without a leading
	// zero, optional E (electric) or H (historic) suffix; at most 8 characters in all, the
	// suffix included. Source: FZV §8/§9, de.wikipedia.org/wiki/Kfz-Kennzeichen_(Deutschland).
	seen := map[string]bool{}
	for a := 1; a <= 3; a++ {
		for l := 1; l <= 2; l++ {
			for d := 1; d <= 4; d++ {
				for suffix := 0; suffix <= 1; suffix++ {
					if a+l+d+suffix > 8 {
						continue
					}
					t := template{country: DE, format: "DE AB-CD 1234", rank: rankBroad}
					for i := 0; i < a; i++ {
						t.sets = append(t.sets, deArea)
					}
					for i := 0; i < l; i++ {
						t.sets = append(t.sets, letters)
					}
					t.sets = append(t.sets, nonZero)
					for i := 1; i < d; i++ {
						t.sets = append(t.sets, digits)
					}
					if suffix == 1 {
						t.sets = append(t.sets, deSuffix)
						t.format = "DE AB-CD 123H"
					}
					// The area/letters split is invisible once separators are gone, so
					// different splits give the same layout: keep one.
					key := strings.Join(t.sets, "|")
					if !seen[key] {
						seen[key] = true
						all = append(all, t)
					}
				}
			}
		}
	}

	// Luxembourg: standard series since 2003 AB 1234 (leading zeros allowed); mopeds AB 12;
	// older issues still on the road A 1234 and AB 123; custom/legacy all-digit 4 or 5 digits.
	// Source: en.wikipedia.org/wiki/Vehicle_registration_plates_of_Luxembourg (Règlement
	// grand-ducal du 17 juin 2003).
	all = append(all,
		spec(LU, "LU AB 1234", rankCurrent, "LLDDDD"),
		spec(LU, "LU AB 12", rankLegacy, "LLDD"),
		spec(LU, "LU A 1234", rankLegacy, "LDDDD"),
		spec(LU, "LU AB 123", rankLegacy, "LLDDD"),
		spec(LU, "LU 1234", rankBroad, "DDDD"),
		spec(LU, "LU 12345", rankBroad, "DDDDD"),
	)

	by := map[int][]template{}
	for _, t := range all {
		by[len(t.sets)] = append(by[len(t.sets)], t)
	}
	return by
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

// extraValid applies rules a per-position template cannot express.
func extraValid(t template, s []rune) bool {
	if t.format == "FR SIV AA-123-AA" && string(s[2:5]) == "000" {
		return false
	}
	return true
}

// bands are the country codes printed on the blue EU band for the countries whose formats
// are known here, longest first so "NL" is tried before a one-letter code.
var bands = []struct{ code, country string }{
	{"NL", NL}, {"B", BE}, {"F", FR}, {"D", DE}, {"L", LU},
}

// confusable lists, for a character read where a template wants the other kind, what it may
// really be (first candidate that the position accepts wins).
var confusable = map[rune]string{
	'O': "0", 'Q': "0", 'D': "0", 'I': "1", 'Z': "2", 'S': "5", 'G': "6", 'B': "8",
	'0': "ODQ", '1': "I", '2': "Z", '5': "S", '6': "G", '8': "B",
}

// confusableFor is confusable with country-specific preferences: Dutch plates carry no
// vowels since sidecode 4, so a 0 in a letter position is far more likely a D than an O.
func confusableFor(country string, r rune) string {
	if country == NL && r == '0' {
		return "DOQ"
	}
	return confusable[r]
}
