package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "offencecam.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(Flags{}, nil)
	require.NoError(t, err)
	assert.Equal(t, "./var", cfg.Data)
	assert.Equal(t, "127.0.0.1:8080", cfg.Listen)
	assert.Equal(t, filepath.Join("./var", "models"), cfg.Models.Cache)
	assert.Empty(t, cfg.NATS.URL, "the default is the embedded server")
}

func TestPrecedenceFileThenEnvThenFlags(t *testing.T) {
	p := writeFile(t, "data: /from/file\nlisten: 127.0.0.1:9000\nnats:\n  frames_dedup: 3m\nlog:\n  level: debug\n")
	cfg, err := Load(Flags{ConfigFile: p}, nil)
	require.NoError(t, err)
	assert.Equal(t, "/from/file", cfg.Data)
	assert.Equal(t, 3*time.Minute, cfg.NATS.FramesDedup)
	assert.Equal(t, "debug", cfg.Log.Level)

	env := []string{"OFFENCECAM_DATA=/from/env", "OFFENCECAM_NATS_FRAMES_DEDUP=4m", "OFFENCECAM_LISTEN=127.0.0.1:9100"}
	cfg, err = Load(Flags{ConfigFile: p}, env)
	require.NoError(t, err)
	assert.Equal(t, "/from/env", cfg.Data)
	assert.Equal(t, 4*time.Minute, cfg.NATS.FramesDedup)

	cfg, err = Load(Flags{ConfigFile: p, Data: "/from/flag", NATSURL: "nats://n1:4222"}, env)
	require.NoError(t, err)
	assert.Equal(t, "/from/flag", cfg.Data)
	assert.Equal(t, "127.0.0.1:9100", cfg.Listen)
	assert.Equal(t, "nats://n1:4222", cfg.NATS.URL)
	assert.Equal(t, filepath.Join("/from/flag", "models"), cfg.Models.Cache)
}

func TestConfigFileFromEnv(t *testing.T) {
	p := writeFile(t, "data: /x\n")
	cfg, err := Load(Flags{}, []string{"OFFENCECAM_CONFIG=" + p})
	require.NoError(t, err)
	assert.Equal(t, "/x", cfg.Data)
}

func TestBadConfigurationNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		env   []string
		flags Flags
		want  string
	}{
		{name: "unknown field", file: "nats:\n  ulr: nats://x\n", want: "ulr"},
		{name: "unknown top-level field", file: "listne: 1\n", want: "listne"},
		{name: "bad nats url", flags: Flags{NATSURL: "http://x:4222"}, want: "nats.url"},
		{name: "nats url without host", flags: Flags{NATSURL: "::nope"}, want: "nats.url"},
		{name: "bad s3 endpoint", flags: Flags{S3Endpoint: "ftp://x"}, env: []string{"OFFENCECAM_S3_ACCESS_KEY=a", "OFFENCECAM_S3_SECRET_KEY=b"}, want: "s3.endpoint"},
		{name: "missing s3 access key", flags: Flags{S3Endpoint: "http://127.0.0.1:9000"}, want: "s3.access_key"},
		{name: "missing s3 secret key", flags: Flags{S3Endpoint: "127.0.0.1:9000"}, env: []string{"AWS_ACCESS_KEY_ID=a"}, want: "s3.secret_key"},
		{name: "bad listen", flags: Flags{Listen: "8080"}, want: "listen"},
		{name: "bad env duration", env: []string{"OFFENCECAM_NATS_SEEN_TTL=forever"}, want: "nats.seen_ttl"},
		{name: "seen ttl shorter than dedup", file: "nats:\n  seen_ttl: 1s\n", want: "nats.seen_ttl"},
		{name: "bad log level", file: "log:\n  level: loud\n", want: "log.level"},
		{name: "missing file", flags: Flags{ConfigFile: "/nonexistent/offencecam.yaml"}, want: "config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.flags
			if tc.file != "" {
				f.ConfigFile = writeFile(t, tc.file)
			}
			_, err := Load(f, tc.env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestS3CredentialsFromEnvironment(t *testing.T) {
	cfg, err := Load(Flags{S3Endpoint: "https://s3.example:9000"},
		[]string{"OFFENCECAM_S3_ACCESS_KEY=ak", "AWS_SECRET_ACCESS_KEY=sk"})
	require.NoError(t, err)
	assert.Equal(t, "ak", cfg.S3.AccessKey)
	assert.Equal(t, "sk", cfg.S3.SecretKey)
}

func TestStageSectionsFromFileAndEnv(t *testing.T) {
	p := writeFile(t, "review:\n  lease_duration: 3m\ningest:\n  cameras:\n    cam1:\n      site: E40-Gent\n      driver_side: left\n")
	cfg, err := Load(Flags{ConfigFile: p}, []string{"OFFENCECAM_PLATFORM_CONCURRENCY=3"})
	require.NoError(t, err)
	assert.Equal(t, 3*time.Minute, cfg.Review.LeaseDuration)
	assert.Equal(t, "E40-Gent", cfg.Ingest.Cameras["cam1"].Site)
	assert.Equal(t, 3, cfg.Platform.Concurrency)

	_, err = Load(Flags{ConfigFile: writeFile(t, "review:\n  lease_duration: -1s\n")}, nil)
	assert.ErrorContains(t, err, "review.lease_duration")
	_, err = Load(Flags{ConfigFile: writeFile(t, "ingest:\n  cameras:\n    cam1:\n      driver_side: middle\n")}, nil)
	assert.ErrorContains(t, err, "ingest.cameras.cam1.driver_side")
}
