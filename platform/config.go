package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// TokenEnv is read for the bearer token when neither platform.token nor platform.token_file
// is set, so the secret can stay out of the configuration file.
const TokenEnv = "OFFENCECAM_PLATFORM_TOKEN"

// Config is the `platform:` section of the configuration file.
type Config struct {
	// Endpoint is the URL records are POSTed to. Empty means local mode: records go to the
	// JSON-lines ledger (the one-box default).
	Endpoint string `yaml:"endpoint"`
	// AllowInsecureHTTP permits an http:// endpoint (test rigs, a platform stub on
	// localhost). Without it only https:// is accepted: records carry personal data.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// Token is the bearer token; TokenFile is read instead when set; OFFENCECAM_PLATFORM_TOKEN
	// when both are empty. Never logged.
	Token     string    `yaml:"token"`
	TokenFile string    `yaml:"token_file"`
	TLS       TLSConfig `yaml:"tls"`
	// RequestTimeout bounds one POST, from connect to the end of the response.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MinBackoff and MaxBackoff bound the exponential backoff between attempts (with jitter).
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxRetryAfter caps how long a Retry-After header may hold a record back.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// AckWait is the FINES consumer's ack wait; the connector signals progress every third of
	// it while a record is being sent or backing off, so it only matters after a crash.
	AckWait time.Duration `yaml:"ack_wait"`
	// Concurrency is how many records are in flight at once.
	Concurrency int `yaml:"concurrency"`
	// Ledger is the local-mode ledger file; empty means <data dir>/fines-ledger.jsonl.
	Ledger string `yaml:"ledger"`
	// Catalogue is an offence catalogue file replacing the shipped one; empty means shipped.
	Catalogue string `yaml:"catalogue"`
	// TimeZone renders the local offence time (IANA name).
	TimeZone string         `yaml:"time_zone"`
	Language LanguageConfig `yaml:"language"`
}

// TLSConfig is mutual TLS towards the platform.
type TLSConfig struct {
	CertFile   string `yaml:"cert_file"` // client certificate (PEM); needs key_file
	KeyFile    string `yaml:"key_file"`
	CAFile     string `yaml:"ca_file"`     // CA bundle for the platform's certificate; empty: system roots
	ServerName string `yaml:"server_name"` // overrides the name checked in the platform's certificate
}

// DefaultConfig is local mode with production-sized timings.
func DefaultConfig() Config {
	return Config{
		RequestTimeout: 30 * time.Second,
		MinBackoff:     time.Second,
		MaxBackoff:     5 * time.Minute,
		MaxRetryAfter:  time.Hour,
		AckWait:        time.Minute,
		Concurrency:    4,
		TimeZone:       "Europe/Brussels",
		Language:       LanguageConfig{Default: LangFR},
	}
}

// Local reports whether records go to the ledger rather than an endpoint.
func (c Config) Local() bool { return c.Endpoint == "" }

// Validate names the first bad field by its YAML path.
func (c Config) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			return fmt.Errorf("platform.endpoint: %v", err)
		case u.Host == "":
			return fmt.Errorf("platform.endpoint: %q has no host", c.Endpoint)
		case u.User != nil:
			return errors.New("platform.endpoint: credentials in the URL are not allowed; use platform.token")
		case u.Scheme == "https":
		case u.Scheme == "http" && c.AllowInsecureHTTP:
		case u.Scheme == "http":
			return errors.New("platform.endpoint: http:// sends personal data in clear; use https:// or set platform.allow_insecure_http")
		default:
			return fmt.Errorf("platform.endpoint: scheme %q is not https", u.Scheme)
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		return errors.New("platform.token / platform.token_file: set one, not both")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("platform.tls.cert_file / platform.tls.key_file: set both or neither")
	}
	switch {
	case c.RequestTimeout <= 0:
		return errors.New("platform.request_timeout: must be > 0")
	case c.MinBackoff <= 0:
		return errors.New("platform.min_backoff: must be > 0")
	case c.MaxBackoff < c.MinBackoff:
		return errors.New("platform.max_backoff: must be >= platform.min_backoff")
	case c.MaxRetryAfter < 0:
		return errors.New("platform.max_retry_after: must be >= 0")
	case c.AckWait < time.Second:
		return errors.New("platform.ack_wait: must be >= 1s")
	case c.Concurrency < 1 || c.Concurrency > 256:
		return fmt.Errorf("platform.concurrency: %d is not in 1..256", c.Concurrency)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "" {
		return fmt.Errorf("platform.time_zone: %q is not an IANA time zone", c.TimeZone)
	}
	return c.Language.validate("platform.language")
}

// LogValue keeps the token out of logs.
func (c Config) LogValue() slog.Value {
	mode := "http"
	if c.Local() {
		mode = "ledger"
	}
	return slog.GroupValue(
		slog.String("mode", mode),
		slog.String("endpoint", c.Endpoint),
		slog.Bool("token_set", c.Token != "" || c.TokenFile != ""),
		slog.Bool("mtls", c.TLS.CertFile != ""),
		slog.String("ledger", c.Ledger),
		slog.String("catalogue", c.Catalogue),
		slog.Int("concurrency", c.Concurrency),
	)
}

type configFields Config

// String keeps the token out of %v and %+v.
func (c Config) String() string {
	if c.Token != "" {
		c.Token = "<redacted>"
	}
	return fmt.Sprintf("%+v", configFields(c))
}
