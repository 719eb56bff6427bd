package objstore

import (
	"strings"
	"testing"
)

func TestS3ConfigValidate(t *testing.T) {
	ok := S3Config{Endpoint: "minio.local:9000", AccessKey: "ak", SecretKey: "sk"}
	for _, c := range []struct {
		name     string
		mut      func(*S3Config)
		wantErr  string // substring; "" means valid
		wantHost string
		wantTLS  bool
	}{
		{"host:port", func(c *S3Config) {}, "", "minio.local:9000", false},
		{"host:port tls flag", func(c *S3Config) { c.UseTLS = true }, "", "minio.local:9000", true},
		{"http URL", func(c *S3Config) { c.Endpoint = "http://127.0.0.1:7070" }, "", "127.0.0.1:7070", false},
		{"https URL wins over flag", func(c *S3Config) { c.Endpoint = "https://s3.example.be"; c.UseTLS = false }, "", "s3.example.be", true},
		{"http URL wins over flag", func(c *S3Config) { c.Endpoint = "http://s3.example.be:80/"; c.UseTLS = true }, "", "s3.example.be:80", false},
		{"ipv6", func(c *S3Config) { c.Endpoint = "[::1]:9000" }, "", "[::1]:9000", false},
		{"empty endpoint", func(c *S3Config) { c.Endpoint = "" }, "s3.endpoint: must be set", "", false},
		{"no port", func(c *S3Config) { c.Endpoint = "minio.local" }, "s3.endpoint:", "", false},
		{"bad scheme", func(c *S3Config) { c.Endpoint = "ftp://x:21" }, "s3.endpoint: scheme", "", false},
		{"URL with path", func(c *S3Config) { c.Endpoint = "http://x:9000/bucket" }, "s3.endpoint:", "", false},
		{"URL with user", func(c *S3Config) { c.Endpoint = "http://u:p@x:9000" }, "s3.endpoint:", "", false},
		{"host:port with path", func(c *S3Config) { c.Endpoint = "x:9000/b" }, "s3.endpoint:", "", false},
		{"no host", func(c *S3Config) { c.Endpoint = "http://" }, "s3.endpoint:", "", false},
		{"missing access key", func(c *S3Config) { c.AccessKey = "" }, "s3.access_key: must be set", "", false},
		{"missing secret key", func(c *S3Config) { c.SecretKey = " " }, "s3.secret_key: must be set", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.mut(&cfg)
			err := cfg.Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				host, tls, _ := cfg.hostAndTLS()
				if host != c.wantHost || tls != c.wantTLS {
					t.Errorf("host/tls = %q/%v, want %q/%v", host, tls, c.wantHost, c.wantTLS)
				}
				if _, err := NewS3(cfg); err != nil {
					t.Errorf("NewS3: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, c.wantErr)
			}
			if _, err := NewS3(cfg); err == nil {
				t.Error("NewS3 accepted an invalid config")
			}
		})
	}
	err := S3Config{}.Validate()
	for _, field := range []string{"s3.endpoint", "s3.access_key", "s3.secret_key"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("empty config error %v does not name %s", err, field)
		}
	}
	if !DefaultS3Config().PathStyle {
		t.Error("DefaultS3Config is not path style")
	}
}

func TestMetadataValueEncoding(t *testing.T) {
	for _, v := range []string{"plain", "", "Liège", "日本", " padded ", "=?UTF-8?B?Zm9v?=", "tab\there", "a=b; c", strings.Repeat("é", 300)} {
		enc := encodeMetadata(map[string]string{"k": v})["k"]
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] >= 0x7f {
				t.Fatalf("encoded %q = %q: not header-safe", v, enc)
			}
		}
		if enc != strings.TrimSpace(enc) {
			t.Errorf("encoded %q = %q: surrounding space would be lost in HTTP", v, enc)
		}
		if got := decodeMetaValue(enc); got != v {
			t.Errorf("round trip %q -> %q -> %q", v, enc, got)
		}
	}
}
