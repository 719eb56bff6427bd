// Package config loads offencecam's one configuration: built-in defaults, then one YAML file,
// then OFFENCECAM_* environment variables, then command-line flags, validated at start with
// errors that name the field by its YAML path.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration. Stage sections are added as stages land.
type Config struct {
	Data   string       `yaml:"data"`
	Listen string       `yaml:"listen"`
	Log    LogConfig    `yaml:"log"`
	NATS   NATSConfig   `yaml:"nats"`
	S3     S3Config     `yaml:"s3"`
	Models ModelsConfig `yaml:"models"`
	Stages `yaml:",inline"`
}

// LogConfig configures slog.
type LogConfig struct {
	Format string `yaml:"format"` // json or text
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// NATSConfig selects the embedded server (URL empty) or an external one.
type NATSConfig struct {
	URL string `yaml:"url"`
	// EmbeddedListen is where the embedded server accepts clients; loopback by default so the
	// one-box default exposes nothing.
	EmbeddedListen  string        `yaml:"embedded_listen"`
	Replicas        int           `yaml:"replicas"`
	FramesMaxMsgs   int64         `yaml:"frames_max_msgs"`
	FramesMaxBytes  int64         `yaml:"frames_max_bytes"`
	FramesDedup     time.Duration `yaml:"frames_dedup"`
	DetectionsAge   time.Duration `yaml:"detections_max_age"`
	DetectionsDedup time.Duration `yaml:"detections_dedup"`
	FinesDedup      time.Duration `yaml:"fines_dedup"`
	AuditMaxAge     time.Duration `yaml:"audit_max_age"`
	DLQMaxAge       time.Duration `yaml:"dlq_max_age"`
	SeenTTL         time.Duration `yaml:"seen_ttl"`
}

// S3Config selects an S3-compatible server (Endpoint set) or the local object store.
// Credentials come from the environment (OFFENCECAM_S3_ACCESS_KEY / OFFENCECAM_S3_SECRET_KEY,
// or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never from flags, so they stay out of `ps`.
type S3Config struct {
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
}

// ModelsConfig locates the model cache.
type ModelsConfig struct {
	Cache  string `yaml:"cache"`  // default <data>/models
	Mirror string `yaml:"mirror"` // a mirror directory tried first when fetching
}

// Default is the one-box default.
func Default() Config {
	return Config{
		Data:   "./var",
		Listen: "127.0.0.1:8080",
		Log:    LogConfig{Format: "json", Level: "info"},
		NATS: NATSConfig{
			EmbeddedListen:  "127.0.0.1:0",
			Replicas:        1,
			FramesMaxMsgs:   100_000,
			FramesMaxBytes:  256 << 20,
			FramesDedup:     10 * time.Minute,
			DetectionsAge:   90 * 24 * time.Hour,
			DetectionsDedup: 24 * time.Hour,
			FinesDedup:      7 * 24 * time.Hour,
			AuditMaxAge:     10 * 365 * 24 * time.Hour,
			DLQMaxAge:       90 * 24 * time.Hour,
			SeenTTL:         14 * 24 * time.Hour,
		},
		Stages: defaultStages(),
	}
}

// Flags are the command-line overrides every role shares. Empty means not given.
type Flags struct {
	ConfigFile string
	Data       string
	Listen     string
	NATSURL    string
	S3Endpoint string
}

// Load builds the configuration from defaults, the file, the environment and the flags, and
// validates it.
func Load(f Flags, environ []string) (Config, error) {
	cfg := Default()
	env := envMap(environ)
	path := f.ConfigFile
	if path == "" {
		path = env["OFFENCECAM_CONFIG"]
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		if err := decodeStrict(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	if cfg.S3.AccessKey == "" {
		cfg.S3.AccessKey = env["AWS_ACCESS_KEY_ID"]
	}
	if cfg.S3.SecretKey == "" {
		cfg.S3.SecretKey = env["AWS_SECRET_ACCESS_KEY"]
	}
	if f.Data != "" {
		cfg.Data = f.Data
	}
	if f.Listen != "" {
		cfg.Listen = f.Listen
	}
	if f.NATSURL != "" {
		cfg.NATS.URL = f.NATSURL
	}
	if f.S3Endpoint != "" {
		cfg.S3.Endpoint = f.S3Endpoint
	}
	if cfg.Models.Cache == "" {
		cfg.Models.Cache = filepath.Join(cfg.Data, "models")
	}
	cfg.resolveStagePaths()
	return cfg, cfg.Validate()
}

func decodeStrict(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return err
	}
	return nil
}

// Validate checks the configuration and names the first bad field.
func (c Config) Validate() error {
	if c.Data == "" {
		return errors.New("data: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
	}
	if c.NATS.URL != "" {
		u, err := url.Parse(c.NATS.URL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("nats.url: %q is not a URL like nats://host:4222", c.NATS.URL)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("nats.url: scheme %q is not nats, tls, ws or wss", u.Scheme)
		}
	} else if _, _, err := net.SplitHostPort(c.NATS.EmbeddedListen); err != nil {
		return fmt.Errorf("nats.embedded_listen: %q is not host:port: %v", c.NATS.EmbeddedListen, err)
	}
	if err := c.NATSLimits().Validate(); err != nil {
		return err
	}
	if c.S3.Endpoint != "" {
		ep := c.S3.Endpoint
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("s3.endpoint: %q is not host:port or an http(s) URL", c.S3.Endpoint)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("s3.endpoint: %q must not have a path", c.S3.Endpoint)
		}
		if c.S3.AccessKey == "" {
			return errors.New("s3.access_key: required with s3.endpoint (set OFFENCECAM_S3_ACCESS_KEY or AWS_ACCESS_KEY_ID)")
		}
		if c.S3.SecretKey == "" {
			return errors.New("s3.secret_key: required with s3.endpoint (set OFFENCECAM_S3_SECRET_KEY or AWS_SECRET_ACCESS_KEY)")
		}
	}
	if _, err := NewLoggerCheck(c.Log); err != nil {
		return err
	}
	return c.Stages.validate()
}

// NewLoggerCheck validates the log section without building a logger.
func NewLoggerCheck(l LogConfig) (bool, error) {
	switch l.Format {
	case "json", "text":
	default:
		return false, fmt.Errorf("log.format: %q is not json or text", l.Format)
	}
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		return false, fmt.Errorf("log.level: %q is not debug, info, warn or error", l.Level)
	}
	return true, nil
}
