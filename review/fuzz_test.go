package review

import (
	"net/url"
	"strings"
	"testing"

	"github.com/crossborder/offencecam/review/cases"
)

// FuzzSafeBack: the language switch's redirect target never leaves the site.
func FuzzSafeBack(f *testing.F) {
	for _, s := range []string{"/queue", "//evil.example", "/\\evil", "https://evil", "", "/cases/a b", "/%2f%2fevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeBack(s)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
			t.Fatalf("safeBack(%q) = %q leaves the site", s, got)
		}
		if strings.ContainsAny(got, "\\\t\r\n\x00") {
			t.Fatalf("safeBack(%q) = %q keeps a character browsers strip or reinterpret", s, got)
		}
		u, err := url.Parse(got)
		if err == nil && u.Host != "" {
			t.Fatalf("safeBack(%q) = %q has a host", s, got)
		}
	})
}

// FuzzNormalisePlate: a corrected plate is only upper-case letters and digits, and
// normalising is idempotent.
func FuzzNormalisePlate(f *testing.F) {
	for _, s := range []string{"1-abc-234", "AB 12 CD", "é-ß-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := cases.NormalisePlate(s)
		for _, r := range p {
			if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				t.Fatalf("NormalisePlate(%q) = %q", s, p)
			}
		}
		if cases.NormalisePlate(p) != p {
			t.Fatalf("not idempotent: %q", s)
		}
	})
}
