package ingest

import (
	"fmt"
	"regexp"
	"strings"
)

// keyTemplate matches object keys such as cam1/2026/11/27/p42/front.jpg against a layout
// such as {camera}/{yyyy}/{mm}/{dd}/{passage}/{view}.{ext}.
type keyTemplate struct {
	src    string
	re     *regexp.Regexp
	fields []string
}

// templateFields are the fields a key template may use, with the pattern each matches.
// Text fields never cross a '/', so a template's segments line up with the key's.
var templateFields = map[string]string{
	"camera":    `[^/]+?`,
	"site":      `[^/]+?`,
	"lane":      `[^/]+?`,
	"direction": `[^/]+?`,
	"view":      `[^/]+?`,
	"passage":   `[^/]+?`,
	"yyyy":      `\d{4}`,
	"mm":        `\d{2}`,
	"dd":        `\d{2}`,
	"hh":        `\d{2}`,
	"mi":        `\d{2}`,
	"ss":        `\d{2}`,
	"ts":        `\d{8}T?\d{6}(?:\.\d{1,9})?`,
	"ext":       `[A-Za-z0-9]+`,
	"any":       `[^/]*?`,
}

func compileTemplate(src string) (*keyTemplate, error) {
	if src == "" {
		return nil, fmt.Errorf("empty template")
	}
	var b strings.Builder
	b.WriteString("^")
	t := &keyTemplate{src: src}
	seen := map[string]bool{}
	rest := src
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		closeB := strings.IndexByte(rest, '}')
		if open < 0 {
			if closeB >= 0 {
				return nil, fmt.Errorf("%q: unmatched '}'", src)
			}
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		if closeB >= 0 && closeB < open {
			return nil, fmt.Errorf("%q: unmatched '}'", src)
		}
		b.WriteString(regexp.QuoteMeta(rest[:open]))
		rest = rest[open+1:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: unmatched '{'", src)
		}
		name := rest[:end]
		rest = rest[end+1:]
		pat, ok := templateFields[name]
		if !ok {
			return nil, fmt.Errorf("%q: unknown field {%s}", src, name)
		}
		if name == "any" {
			b.WriteString(pat)
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("%q: field {%s} appears twice", src, name)
		}
		seen[name] = true
		t.fields = append(t.fields, name)
		b.WriteString("(" + pat + ")")
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("%q: %v", src, err)
	}
	t.re = re
	return t, nil
}

// match returns the template's fields taken from key, or false when the key does not have
// the template's layout.
func (t *keyTemplate) match(key string) (map[string]string, bool) {
	m := t.re.FindStringSubmatch(key)
	if m == nil {
		return nil, false
	}
	out := make(map[string]string, len(t.fields))
	for i, f := range t.fields {
		out[f] = m[i+1]
	}
	return out, true
}
