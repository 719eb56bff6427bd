package platform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crossborder/offencecam/pipeline"
)

func TestCatalogueCoversEveryOffenceKind(t *testing.T) {
	cat, err := DefaultCatalogue()
	require.NoError(t, err)
	require.NoError(t, cat.Covers(pipeline.OffenceKinds))
	for _, kind := range pipeline.OffenceKinds {
		e := cat.Offences[kind]
		for _, lang := range []string{LangFR, LangNL, LangDE} {
			assert.NotEmpty(t, e.Labels[lang], "%s label %s", kind, lang)
			assert.NotEmpty(t, cat.Procedures[e.Penalty.Procedure][lang], "%s procedure label %s", kind, lang)
		}
		for _, src := range []string{e.Legal.Source, e.DegreeSource, e.Penalty.Source, e.EUCategory.Source} {
			assert.NotEmpty(t, cat.Sources[src].Title, "%s cites source %q", kind, src)
		}
	}
	assert.NotEmpty(t, cat.Version)
	assert.False(t, cat.Effective().IsZero())
}

func TestCatalogueShippedValues(t *testing.T) {
	cat, err := DefaultCatalogue()
	require.NoError(t, err)
	phone := cat.Offences[pipeline.OffencePhone]
	assert.Equal(t, "8.4", phone.Legal.Article)
	assert.Equal(t, 3, phone.Degree)
	assert.Equal(t, Penalty{Amount: "174.00", Currency: "EUR", Procedure: "immediate_collection", Source: "be-immediate-collection"}, phone.Penalty)
	assert.Equal(t, "h", phone.EUCategory.Letter)
	seatbelt := cat.Offences[pipeline.OffenceSeatbelt]
	assert.Equal(t, "35.1.1", seatbelt.Legal.Article)
	assert.Equal(t, 2, seatbelt.Degree)
	assert.Equal(t, "116.00", seatbelt.Penalty.Amount)
	assert.Equal(t, "b", seatbelt.EUCategory.Letter)
	assert.Equal(t, "perception immédiate", cat.Procedures["immediate_collection"][LangFR])
	assert.Equal(t, "onmiddellijke inning", cat.Procedures["immediate_collection"][LangNL])
}

func TestCatalogueOverrideAndRefusals(t *testing.T) {
	dir := t.TempDir()
	// An override with a new amount is used as given: amounts come from data.
	over := strings.Replace(string(embeddedCatalogue), `amount: "174.00"`, `amount: "189.50"`, 1)
	over = strings.Replace(over, `version: "BE-2026.1"`, `version: "BE-2027.1"`, 1)
	path := filepath.Join(dir, "cat.yaml")
	require.NoError(t, os.WriteFile(path, []byte(over), 0o600))
	cat, err := LoadCatalogue(path)
	require.NoError(t, err)
	assert.Equal(t, "189.50", cat.Offences[pipeline.OffencePhone].Penalty.Amount)
	assert.Equal(t, "BE-2027.1", cat.Version)

	cases := map[string]struct{ from, to, want string }{
		"typo":        {`amount: "116.00"`, `ammount: "116.00"`, "field ammount not found"},
		"bad amount":  {`amount: "116.00"`, `amount: "116"`, "offences.seatbelt.penalty.amount"},
		"bad letter":  {`letter: b`, `letter: z`, "offences.seatbelt.eu_category.letter"},
		"no label":    {"de: Nichttragen des Sicherheitsgurts durch den Fahrer", "de: ''", "offences.seatbelt.labels.de"},
		"bad source":  {"source: be-road-code", "source: nowhere", `source "nowhere" is not in sources`},
		"bad date":    {`effective_date: "2026-01-01"`, `effective_date: "soon"`, "effective_date"},
		"bad degree":  {"degree: 2", "degree: 7", "offences.seatbelt.degree"},
		"no currency": {"currency: EUR\n      procedure: immediate_collection\n      source: be-immediate-collection\n    eu_category:\n      directive: (EU) 2015/413\n      letter: b", "currency: euro\n      procedure: immediate_collection\n      source: be-immediate-collection\n    eu_category:\n      directive: (EU) 2015/413\n      letter: b", "currency"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, string(embeddedCatalogue), tc.from)
			_, err := ParseCatalogue([]byte(strings.Replace(string(embeddedCatalogue), tc.from, tc.to, 1)))
			require.ErrorIs(t, err, ErrCatalogue)
			assert.ErrorContains(t, err, tc.want)
		})
	}

	// A catalogue without seatbelt parses, but a connector refuses it.
	var raw map[string]any
	require.NoError(t, yamlUnmarshal(embeddedCatalogue, &raw))
	delete(raw["offences"].(map[string]any), pipeline.OffenceSeatbelt)
	partial := filepath.Join(dir, "partial.yaml")
	require.NoError(t, os.WriteFile(partial, yamlMarshal(t, raw), 0o600))
	cat, err = LoadCatalogue(partial)
	require.NoError(t, err)
	assert.ErrorContains(t, cat.Covers(pipeline.OffenceKinds), "seatbelt")
	cfg := DefaultConfig()
	cfg.Catalogue = partial
	_, err = New(Deps{JS: natsServer(t).JS, DataDir: dir}, cfg)
	assert.ErrorContains(t, err, "platform.catalogue")
	assert.ErrorContains(t, err, "seatbelt")
}

func TestLanguageRule(t *testing.T) {
	l, err := NewLanguages(LanguageConfig{Default: LangNL,
		ByCamera:       map[string]string{"cam-pinned": LangDE},
		BySite:         map[string]string{"site-pinned": LangFR},
		ByMunicipality: map[string]string{"Hamois": LangFR}})
	require.NoError(t, err)
	loc := func(m, country string) *pipeline.Location {
		return &pipeline.Location{Municipality: m, Country: country}
	}
	cases := []struct {
		camera, site string
		loc          *pipeline.Location
		lang, basis  string
	}{
		{"cam-pinned", "site-pinned", loc("Gent", "BE"), LangDE, BasisCamera},
		{"c", "site-pinned", loc("Gent", "BE"), LangFR, BasisSite},
		{"c", "s", loc("Gent", "BE"), LangNL, BasisMunicipality},
		{"c", "s", loc("NAMUR", ""), LangFR, BasisMunicipality},
		{"c", "s", loc("Liege", "BE"), LangFR, BasisMunicipality},
		{"c", "s", loc("Braine l’Alleud", "BE"), LangFR, BasisMunicipality},
		{"c", "s", loc("Sankt-Vith", "BE"), LangDE, BasisMunicipality},
		{"c", "s", loc("Bütgenbach", "BE"), LangDE, BasisMunicipality},
		{"c", "s", loc("Hamois", "BE"), LangFR, BasisMunicipality},
		{"c", "s", loc("Ixelles", "BE"), LangNL, BasisBilingual},
		{"c", "s", loc("Sint-Joost-ten-Node", "BE"), LangNL, BasisBilingual},
		{"c", "s", loc("Nowhere", "BE"), LangNL, BasisDefault},
		{"c", "s", loc("Lille", "FR"), LangNL, BasisDefault},
		{"c", "s", loc("Namur", "FR"), LangNL, BasisDefault},
		{"c", "s", nil, LangNL, BasisDefault},
	}
	for _, tc := range cases {
		lang, basis := l.For(tc.camera, tc.site, tc.loc)
		assert.Equal(t, tc.lang, lang, "%+v", tc)
		assert.Equal(t, tc.basis, basis, "%+v", tc)
	}
}

func newTestBuilder(t testing.TB) *Builder {
	cat, err := DefaultCatalogue()
	require.NoError(t, err)
	langs, err := NewLanguages(LanguageConfig{Default: LangFR})
	require.NoError(t, err)
	zone, err := time.LoadLocation("Europe/Brussels")
	require.NoError(t, err)
	return NewBuilder(cat, langs, zone)
}

func TestBuildRecordCarriesWhatANoticeStates(t *testing.T) {
	b := newTestBuilder(t)
	f := validFine("c-1")
	f.Offences = []string{pipeline.OffencePhone, pipeline.OffenceSeatbelt, pipeline.OffencePhone}
	rec, err := b.Build(f)
	require.NoError(t, err)
	body, err := json.Marshal(rec)
	require.NoError(t, err)
	s, err := CompileSchema()
	require.NoError(t, err)
	require.NoError(t, s.Validate(body))

	assert.Equal(t, "c-1", rec.CaseID)
	require.Len(t, rec.Offences, 2, "a kind confirmed twice is one offence")
	assert.Equal(t, "8.4", rec.Offences[0].Legal.Article)
	assert.Equal(t, "174.00", rec.Offences[0].Penalty.Amount)
	assert.Equal(t, "onmiddellijke inning", rec.Offences[0].Penalty.ProcedureLabel, "Dilbeek is Dutch-speaking")
	assert.Equal(t, "h", rec.Offences[0].EUCategory.Letter)
	assert.Equal(t, "35.1.1", rec.Offences[1].Legal.Article)
	assert.Equal(t, Money{Amount: "290.00", Currency: "EUR"}, rec.Total)
	assert.Equal(t, "2026-07-14T08:30:15Z", rec.OffenceAt.UTC)
	assert.Equal(t, "2026-07-14T10:30:15+02:00", rec.OffenceAt.Local)
	assert.Equal(t, "Europe/Brussels", rec.OffenceAt.TimeZone)
	assert.Equal(t, LangNL, rec.Language)
	assert.Equal(t, rec.Offences[0].Labels[LangNL], rec.Offences[0].Label)
	assert.Equal(t, "E40", rec.Place.Road)
	assert.Equal(t, 8.3, rec.Place.KmPoint)
	assert.Equal(t, &GPS{Lat: 50.8695, Lon: 4.2466}, rec.Place.GPS)
	assert.Equal(t, Device{Camera: "cam-e40-01", Site: "E40-Groot-Bijgaarden"}, rec.Device)
	assert.Equal(t, Vehicle{Plate: "1ABC234", Country: "BE"}, rec.Vehicle)
	assert.Len(t, rec.Evidence, 2)
	assert.Equal(t, "bram", rec.Reviews[1].Reviewer)
	assert.Equal(t, "yolox-nano-coco", rec.Models[0].Name)

	// Winter time renders +01:00.
	f.OffenceAt = time.Date(2026, 1, 10, 23, 30, 0, 0, time.UTC)
	rec, err = b.Build(f)
	require.NoError(t, err)
	assert.Equal(t, "2026-01-11T00:30:00+01:00", rec.OffenceAt.Local)

	// The same input always gives the same bytes (retries resend the same body).
	again, err := b.Build(f)
	require.NoError(t, err)
	b1, _ := json.Marshal(rec)
	b2, _ := json.Marshal(again)
	assert.Equal(t, b1, b2)
}

func TestPlateIsNormalisedBeforeTheSchema(t *testing.T) {
	s, err := CompileSchema()
	require.NoError(t, err)
	b := newTestBuilder(t)
	for in, want := range map[string]string{"1-abc-234": "1ABC234", " 1 ABC 234 ": "1ABC234", "lö-ab·12": "LÖAB12"} {
		f := validFine("c-p")
		f.Plate = in
		f.Country = "be"
		rec, err := b.Build(f)
		require.NoError(t, err)
		assert.Equal(t, want, rec.Vehicle.Plate)
		assert.Equal(t, "BE", rec.Vehicle.Country)
		body, _ := json.Marshal(rec)
		assert.NoError(t, s.Validate(body), in)
	}
	f := validFine("c-p")
	f.Plate = "1ABC/234"
	rec, err := b.Build(f)
	require.NoError(t, err)
	body, _ := json.Marshal(rec)
	assert.ErrorContains(t, s.Validate(body), "/vehicle/plate")
}

func TestSchemaRejectsWithLocations(t *testing.T) {
	s, err := CompileSchema()
	require.NoError(t, err)
	b := newTestBuilder(t)
	f := validFine("c-2")
	f.Country = "belgium"
	f.Evidence[1].SHA256 = strings.ToUpper(f.Evidence[1].SHA256)
	f.ConfirmedAt = time.Time{}
	rec, err := b.Build(f)
	require.NoError(t, err)
	body, _ := json.Marshal(rec)
	err = s.Validate(body)
	require.ErrorIs(t, err, ErrSchema)
	for _, want := range []string{"/vehicle/country", "/evidence/1/sha256", "/confirmed_at"} {
		assert.ErrorContains(t, err, want)
	}
	assert.ErrorIs(t, s.Validate([]byte("nope")), ErrSchema)
	assert.ErrorContains(t, s.Validate([]byte(`{}`)), "missing properties")
}

func TestSchemaFileIsTheEmbeddedOne(t *testing.T) {
	onDisk, err := os.ReadFile("schema/fine-record.schema.json")
	require.NoError(t, err)
	assert.Equal(t, onDisk, SchemaJSON)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(SchemaJSON, &doc))
	assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", doc["$schema"])
}

func TestHTTPStatusHandling(t *testing.T) {
	type reply struct {
		status int
		header map[string]string
		body   string
	}
	cases := []struct {
		name    string
		r       reply
		kind    resultKind
		outcome string
		ref     string
		msg     string
		after   time.Duration
	}{
		{"201", reply{201, nil, `{"reference":"R-1"}`}, resultCreated, OutcomeCreated, "R-1", "", 0},
		{"200", reply{200, nil, `{"reference":"R-2"}`}, resultCreated, OutcomeCreated, "R-2", "", 0},
		{"409", reply{409, nil, `{"reference":"R-old","message":"exists"}`}, resultCreated, OutcomeDuplicate, "R-old", "exists", 0},
		{"422", reply{422, nil, `{"message":"unknown plate"}`}, resultRejected, OutcomeRejected, "", "unknown plate", 0},
		{"400 problem", reply{400, nil, `{"title":"Bad","detail":"offence_at in the future"}`}, resultRejected, OutcomeRejected, "", "offence_at in the future", 0},
		{"400 text", reply{400, nil, "plain words"}, resultRejected, OutcomeRejected, "", "plain words", 0},
		{"413 empty", reply{413, nil, ""}, resultRejected, OutcomeRejected, "", "HTTP 413 Request Entity Too Large", 0},
		{"401", reply{401, nil, ""}, resultRetry, OutcomeEndpointError, "", "HTTP 401 Unauthorized", 0},
		{"404", reply{404, nil, ""}, resultRetry, OutcomeEndpointError, "", "HTTP 404 Not Found", 0},
		{"408", reply{408, nil, ""}, resultRetry, OutcomeTimeout, "", "HTTP 408 Request Timeout", 0},
		{"429 seconds", reply{429, map[string]string{"Retry-After": "7"}, ""}, resultRetry, OutcomeThrottled, "", "HTTP 429 Too Many Requests", 7 * time.Second},
		{"503", reply{503, nil, `{"error":"down"}`}, resultRetry, OutcomeServerError, "", "down", 0},
		{"302", reply{302, map[string]string{"Location": "/elsewhere"}, ""}, resultRetry, OutcomeUnexpected, "", "HTTP 302 Found", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "k-1", r.Header.Get("Idempotency-Key"))
				assert.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
				for k, v := range tc.r.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.r.status)
				_, _ = w.Write([]byte(tc.r.body))
			}))
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.Endpoint = srv.URL
			h, err := newHTTPSink(cfg, "tok")
			require.NoError(t, err)
			res := h.deliver(t.Context(), "k-1", []byte(`{}`))
			assert.Equal(t, tc.kind, res.kind)
			assert.Equal(t, tc.outcome, res.outcome)
			assert.Equal(t, tc.ref, res.reference)
			assert.Equal(t, tc.msg, res.message)
			assert.Equal(t, tc.after, res.retryAfter)
			assert.Equal(t, tc.r.status, res.status)
		})
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, 120*time.Second, parseRetryAfter("120", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Zero(t, parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
	assert.Zero(t, parseRetryAfter("-5", now))
	assert.Zero(t, parseRetryAfter("soon", now))
	assert.Zero(t, parseRetryAfter("", now))
}

func TestBackoffIsCappedJitteredAndHonoursRetryAfter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinBackoff = 100 * time.Millisecond
	cfg.MaxBackoff = 2 * time.Second
	cfg.MaxRetryAfter = 10 * time.Second
	c := &Connector{cfg: cfg}
	distinct := map[time.Duration]bool{}
	for attempt := 1; attempt <= 40; attempt++ {
		full := min(cfg.MinBackoff<<min(attempt-1, 20), cfg.MaxBackoff)
		for range 20 {
			d := c.backoff(attempt, 0)
			assert.GreaterOrEqual(t, d, full/2, "attempt %d", attempt)
			assert.LessOrEqual(t, d, full, "attempt %d", attempt)
			distinct[d] = true
		}
	}
	assert.Greater(t, len(distinct), 50, "jitter spreads retries")
	assert.Equal(t, 5*time.Second, c.backoff(1, 5*time.Second), "Retry-After beats a shorter backoff")
	assert.Equal(t, 10*time.Second, c.backoff(1, time.Hour), "Retry-After is capped by max_retry_after")
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	cases := map[string]struct {
		mut  func(*Config)
		want string
	}{
		"http":          {func(c *Config) { c.Endpoint = "http://platform.example/fines" }, "platform.endpoint: http://"},
		"scheme":        {func(c *Config) { c.Endpoint = "ftp://platform.example" }, "platform.endpoint"},
		"no host":       {func(c *Config) { c.Endpoint = "https:///fines" }, "platform.endpoint"},
		"userinfo":      {func(c *Config) { c.Endpoint = "https://u:p@platform.example" }, "platform.endpoint: credentials"},
		"token twice":   {func(c *Config) { c.Token, c.TokenFile = "a", "b" }, "platform.token"},
		"half mtls":     {func(c *Config) { c.TLS.CertFile = "c.pem" }, "platform.tls.cert_file"},
		"timeout":       {func(c *Config) { c.RequestTimeout = 0 }, "platform.request_timeout"},
		"backoff order": {func(c *Config) { c.MaxBackoff = c.MinBackoff / 2 }, "platform.max_backoff"},
		"ack wait":      {func(c *Config) { c.AckWait = time.Millisecond }, "platform.ack_wait"},
		"concurrency":   {func(c *Config) { c.Concurrency = 0 }, "platform.concurrency"},
		"zone":          {func(c *Config) { c.TimeZone = "Mars/Olympus" }, "platform.time_zone"},
		"default lang":  {func(c *Config) { c.Language.Default = "en" }, "platform.language.default"},
		"site lang":     {func(c *Config) { c.Language.BySite = map[string]string{"s": "it"} }, "platform.language.by_site"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			assert.ErrorContains(t, c.Validate(), tc.want)
		})
	}
	ok := DefaultConfig()
	ok.Endpoint = "http://127.0.0.1:9/fines"
	ok.AllowInsecureHTTP = true
	assert.NoError(t, ok.Validate())
}

func TestTokenNeverPrinted(t *testing.T) {
	c := DefaultConfig()
	c.Token = "very-secret"
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "config", c)
	assert.Contains(t, logged.String(), `"token_set":true`)
	for _, s := range []string{c.String(), sprintf("%v", c), sprintf("%+v", c), logged.String()} {
		assert.NotContains(t, s, "very-secret")
	}
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }

func yamlMarshal(t *testing.T, v any) []byte {
	b, err := yaml.Marshal(v)
	require.NoError(t, err)
	return b
}
