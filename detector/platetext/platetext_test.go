package platetext

import (
	"math"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	for raw, want := range map[string]string{
		"1-abc-234":     "1ABC234",
		" AB·123·CD ":   "AB123CD",
		"m.ab 1234":     "MAB1234",
		"12_AB/3\t4":    "12AB34",
		"ＡＢ－１２３":        "AB123", // full-width
		"mü-ab 12":      "MÜAB12",
		"":              "",
		"---":           "",
		"AB\u2022123CD": "AB123CD",
	} {
		if got := Normalize(raw); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestInterpretFormats(t *testing.T) {
	cases := []struct {
		raw, text, country, from, format string
	}{
		// Belgium
		{"1-ABC-234", "1ABC234", BE, FromFormat, "BE 1-ABC-234"},
		{"2-XYZ-001", "2XYZ001", BE, FromFormat, "BE 1-ABC-234"},
		{"ABC-123", "ABC123", BE, FromFormat, "BE ABC-123"}, // also a broad DE fit; BE is more specific
		{"123-ABC", "123ABC", BE, FromFormat, "BE 123-ABC"},
		// Netherlands
		{"12-ABC-3", "12ABC3", NL, FromFormat, "NL sidecode 7"},
		{"AB-123-C", "AB123C", NL, FromFormat, "NL sidecode 9"},
		{"1-ABC-23", "1ABC23", NL, FromFormat, "NL sidecode 8"},
		{"GB-12-XZ", "GB12XZ", NL, FromFormat, "NL sidecode 4"},
		{"X-999-XX", "X999XX", NL, FromFormat, "NL sidecode 10"},
		{"999-XX-9", "999XX9", NL, FromFormat, "NL sidecode 14"},
		// France
		{"AB-123-CD", "AB123CD", FR, FromFormat, "FR SIV AA-123-AA"},
		{"1234 AB 56", "1234AB56", FR, FromFormat, "FR FNI 1234 AB 56"},
		{"123 ABC 2A", "123ABC2A", FR, FromFormat, "FR FNI 1234 AB 2A"},
		{"45 XY 974", "45XY974", FR, FromFormat, "FR FNI 1234 AB 971"},
		// Germany
		{"M-AB 1234", "MAB1234", DE, FromFormat, "DE AB-CD 1234"},
		{"B-XY 123H", "BXY123H", DE, FromFormat, "DE AB-CD 123H"},
		{"LEV-Q 1E", "LEVQ1E", DE, FromFormat, "DE AB-CD 123H"},
		// Luxembourg
		{"AB 1234", "AB1234", LU, FromFormat, "LU AB 1234"}, // beats NL sidecode 1 (legacy) and DE (broad)
		{"12345", "12345", LU, FromFormat, "LU 12345"},
	}
	for _, c := range cases {
		r := Interpret(c.raw, nil)
		if r.Text != c.text || r.Country != c.country || r.CountryFrom != c.from || r.Format != c.format || r.Fixes != 0 {
			t.Errorf("Interpret(%q) = %+v, want text %s country %s from %s format %s", c.raw, r, c.text, c.country, c.from, c.format)
		}
	}
}

func TestInterpretRejects(t *testing.T) {
	for _, raw := range []string{
		"1ABC23A",     // BE shape but a letter where a digit must be; A has no digit confusable
		"AB-000-CD",   // SIV numbers start at 001
		"AB-IZS-CD",   // would need 3 fixes
		"HH-AB-12345", // 9 characters: too long for DE
		"0ABC",        // nothing
		"",
	} {
		r := Interpret(raw, nil)
		if r.Valid() || r.Country != "" || r.CountryFrom != "" || r.Fixes != 0 || r.Text != Normalize(raw) {
			t.Errorf("Interpret(%q) = %+v, want the normalised text unchanged and no country", raw, r)
		}
	}
}

func TestInterpretBand(t *testing.T) {
	cases := []struct{ raw, text, country string }{
		{"B1ABC234", "1ABC234", BE},
		{"B 1-ABC-234", "1ABC234", BE},
		{"NLAB123C", "AB123C", NL},
		{"NL 12-ABC-3", "12ABC3", NL},
		{"F AB-123-CD", "AB123CD", FR},
		{"LAB1234", "AB1234", LU},
		{"D LEV-XY 123", "LEVXY123", DE}, // 9 characters with the band: only valid without it
		{"B1A8C234", "1ABC234", BE},      // band plus a confusable in the rest
	}
	for _, c := range cases {
		r := Interpret(c.raw, nil)
		if r.Text != c.text || r.Country != c.country || r.CountryFrom != FromBand {
			t.Errorf("Interpret(%q) = %+v, want %s from the %s band", c.raw, r, c.text, c.country)
		}
	}
}

func TestInterpretBandAmbiguousGerman(t *testing.T) {
	// "DMAB123" is a valid German layout both as read (e.g. Düsseldorf "D-MA 123") and
	// without a glued band ("M-AB 123"). Without confidences the read is kept.
	r := Interpret("DMAB123", nil)
	if r.Text != "DMAB123" || r.Country != DE || r.CountryFrom != FromFormat {
		t.Fatalf("no confidences: %+v", r)
	}
	// A weakly read first character is the band.
	conf := []float32{0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9}
	r = Interpret("DMAB123", conf)
	if r.Text != "MAB123" || r.Country != DE || r.CountryFrom != FromBand || len(r.CharConf) != 6 {
		t.Fatalf("weak band: %+v", r)
	}
	// A confidently read D is part of the plate.
	conf[0] = 0.95
	r = Interpret("DMAB123", conf)
	if r.Text != "DMAB123" || r.CountryFrom != FromFormat || len(r.CharConf) != 7 {
		t.Fatalf("strong D: %+v", r)
	}
}

// A leading B/D/F/L/NL read as surely as the rest belongs to the registration, even where
// the rest alone would be a plate of that band's country: measured with fast-plate-ocr on
// rendered EU plates, the reader leaves the band's code out, so stripping one would cut the
// Bucharest "B" off "B 123 ABC" (the rest, "123ABC", is an old Belgian layout).
func TestInterpretSurelyReadLeadingLetterIsNotABand(t *testing.T) {
	sure := []float32{0.99, 0.99, 0.98, 0.99, 1, 0.97, 0.99}
	r := Interpret("B123ABC", sure)
	if r.Text != "B123ABC" || r.CountryFrom == FromBand {
		t.Fatalf("Bucharest plate: %+v", r)
	}
	r = Interpret("B123ABC", []float32{0.45, 0.99, 0.98, 0.99, 1, 0.97, 0.99})
	if r.Text != "123ABC" || r.Country != BE || r.CountryFrom != FromBand {
		t.Fatalf("weakly read band: %+v", r)
	}
	r = Interpret("LAB1234", []float32{1, 1, 1, 1, 1, 1, 1})
	if r.Text != "LAB1234" || r.CountryFrom == FromBand {
		t.Fatalf("surely read L: %+v", r)
	}
}

// unsure gives confusable characters a low OCR confidence and the rest a high one.
func unsure(raw string) []float32 {
	var c []float32
	for _, r := range raw {
		if _, ok := confusable[r]; ok {
			c = append(c, 0.5)
		} else {
			c = append(c, 0.99)
		}
	}
	return c
}

func TestInterpretConfusables(t *testing.T) {
	cases := []struct {
		raw, text, country string
		fixes              int
	}{
		{"1-A8C-234", "1ABC234", BE, 1}, // 8 where BE demands a letter
		{"1ABC2S4", "1ABC254", BE, 1},   // S where BE demands a digit
		{"AB-I23-CD", "AB123CD", FR, 1},
		{"AB-IZ3-CD", "AB123CD", FR, 2},
		{"0B-123-C", "DB123C", NL, 1}, // Dutch plates carry no vowels: 0 -> D, not O
		{"AB-0O0-CD", "", "", 0},      // 000 after fixing is still not a SIV number
	}
	for _, c := range cases {
		r := Interpret(c.raw, unsure(c.raw))
		if c.text == "" {
			if r.Valid() || r.Fixes != 0 {
				t.Errorf("Interpret(%q) = %+v, want no valid fix", c.raw, r)
			}
			continue
		}
		if r.Text != c.text || r.Country != c.country || r.Fixes != c.fixes {
			t.Errorf("Interpret(%q) = %+v, want %s %s with %d fixes", c.raw, r, c.text, c.country, c.fixes)
		}
	}
	// An exact fit anywhere beats fixing into another format: "IABC234" is a valid German
	// layout as read, so it is not "corrected" to the Belgian 1ABC234.
	if r := Interpret("IABC234", unsure("IABC234")); r.Text != "IABC234" || r.Country != DE || r.Fixes != 0 {
		t.Fatalf("IABC234: %+v", r)
	}
}

func TestInterpretDoesNotFixConfidentOrUnscoredReads(t *testing.T) {
	sure := []float32{0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99}
	for _, c := range []struct {
		raw  string
		conf []float32
	}{
		{"1-A8C-234", sure},       // the OCR was sure of the 8
		{"1-A8C-234", nil},        // no confidences and no band: the country is a guess
		{"YF2L6G", sure[:6]},      // a correct US plate; fixing would give NL "YFZL66"
		{"R589789", sure[:7]},     // a correct US plate; fixing would give DE "RSB9789"
		{"N2427E", nil},           // a correct US plate; fixing would give NL "NZ427E"
		{"KL3B8K", unsure("KL3")}, // misaligned confidences count as none
	} {
		r := Interpret(c.raw, c.conf)
		if r.Fixes != 0 || r.Text != Normalize(c.raw) {
			t.Errorf("Interpret(%q, %v) = %+v, want the read unchanged", c.raw, c.conf, r)
		}
	}
	// A larger MaxFixConf lets a confident character be fixed.
	r := InterpretWith("1-A8C-234", sure, Options{MaxFixConf: 1.1})
	if r.Text != "1ABC234" || r.Fixes != 1 {
		t.Fatalf("MaxFixConf 1.1: %+v", r)
	}
}

func TestInterpretConfidenceAlignment(t *testing.T) {
	raw := "1-A8C-234"
	conf := []float32{0.9, 0.1, 0.8, 0.6, 0.8, 0.1, 0.9, 0.9, 0.9} // separators get 0.1
	r := Interpret(raw, conf)
	want := []float64{0.9, 0.8, 0.3, 0.8, 0.9, 0.9, 0.9} // the fixed B is halved
	if len(r.CharConf) != len(want) {
		t.Fatalf("CharConf %v", r.CharConf)
	}
	sum := 0.0
	for i := range want {
		if math.Abs(r.CharConf[i]-want[i]) > 1e-6 {
			t.Fatalf("CharConf %v, want %v", r.CharConf, want)
		}
		sum += want[i]
	}
	if math.Abs(r.Confidence-sum/7) > 1e-6 {
		t.Fatalf("Confidence %v", r.Confidence)
	}
	// Confidences that do not line up with the read are ignored rather than misattributed
	// (and without them, no fix is made).
	r = Interpret(raw, conf[:3])
	if r.CharConf != nil || r.Confidence != 0 || r.Text != "1A8C234" {
		t.Fatalf("misaligned confidences: %+v", r)
	}
	// Band removal drops the band's confidences.
	r = Interpret("B1ABC234", []float32{0.2, 1, 1, 1, 1, 1, 1, 1})
	if len(r.CharConf) != 7 || math.Abs(r.Confidence-1) > 1e-9 {
		t.Fatalf("band confidences: %+v", r)
	}
}

func TestInterpretTiesAndPreference(t *testing.T) {
	// "12AB34" is NL sidecode 3 and a French FNI plate (12 AB 34): equally specific.
	r := Interpret("12-AB-34", nil)
	if r.Text != "12AB34" || r.Country != "" || !r.Valid() {
		t.Fatalf("tie: %+v", r)
	}
	r = InterpretWith("12-AB-34", nil, Options{PreferCountry: FR})
	if r.Country != FR || r.CountryFrom != FromFormat {
		t.Fatalf("tie with preference: %+v", r)
	}
	// A preference does not override a more specific format.
	r = InterpretWith("AB1234", nil, Options{PreferCountry: DE})
	if r.Country != LU {
		t.Fatalf("preference over rank: %+v", r)
	}
}

func TestBest(t *testing.T) {
	front := Result{Text: "1ABC234", Country: BE, Format: "BE 1-ABC-234", Confidence: 0.7}
	custom := Result{Text: "MYCAR1", Confidence: 0.97} // owner-made front plate, no format
	rear := Result{Text: "1ABC234", Country: BE, Format: "BE 1-ABC-234", Confidence: 0.9}
	if got := Best([]Result{front, custom, rear}); got.Confidence != 0.9 {
		t.Fatalf("Best = %+v, want the rear read", got)
	}
	tie := Result{Text: "12AB34", Format: "NL sidecode 3 | FR FNI 1234 AB 56", Confidence: 0.99}
	if got := Best([]Result{tie, front}); got.Country != BE {
		t.Fatalf("Best = %+v, want the read with a country", got)
	}
	if got := Best([]Result{custom}); got.Text != "MYCAR1" {
		t.Fatalf("Best of invalid reads = %+v", got)
	}
	if got := Best(nil); got.Text != "" {
		t.Fatalf("Best(nil) = %+v", got)
	}
}

func FuzzInterpret(f *testing.F) {
	for _, s := range []string{"1-ABC-234", "B1ABC234", "NLAB123C", "DMAB123", "AB-IZ3-CD", "ＡＢ", "\xff\xfe"} {
		f.Add(s, []byte{200, 100, 50})
	}
	f.Fuzz(func(t *testing.T, raw string, confBytes []byte) {
		n := utf8.RuneCountInString(raw)
		var conf []float32
		if len(confBytes) > 0 {
			conf = make([]float32, n)
			for i := range conf {
				conf[i] = float32(confBytes[i%len(confBytes)]) / 255
			}
		}
		r := Interpret(raw, conf)
		if r.CharConf != nil && len(r.CharConf) != utf8.RuneCountInString(r.Text) {
			t.Fatalf("%d confidences for %q", len(r.CharConf), r.Text)
		}
		for _, c := range r.Text {
			if !unicode.IsLetter(c) && !unicode.IsDigit(c) {
				t.Fatalf("separator %q left in %q", c, r.Text)
			}
		}
		if r.Fixes > 2 || !(r.Confidence >= 0 && r.Confidence <= 1) {
			t.Fatalf("result %+v", r)
		}
		norm := Normalize(raw)
		if Normalize(norm) != norm {
			t.Fatalf("Normalize not idempotent on %q", raw)
		}
		if r.Fixes == 0 && r.CountryFrom != FromBand && r.Text != norm {
			t.Fatalf("text %q changed from %q without a fix or band", r.Text, norm)
		}
		if r.Country != "" && !r.Valid() {
			t.Fatalf("country without format: %+v", r)
		}
	})
}
