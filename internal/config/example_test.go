package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const exampleHeader = `# offencecam configuration: every setting with its default (generated from config.Default();
# regenerate with OFFENCECAM_UPDATE_EXAMPLE=1 go test ./internal/config -run TestExampleConfig).
# Each scalar can also be set from the environment: OFFENCECAM_<PATH> (nats.url → OFFENCECAM_NATS_URL).
`

// The documented example must be exactly the defaults, and must load.
func TestExampleConfigIsCurrentAndLoads(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString(exampleHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	require.NoError(t, enc.Encode(Default()))
	path := filepath.Join(testenv.RepoRoot(), "docs", "offencecam.example.yaml")
	if os.Getenv("OFFENCECAM_UPDATE_EXAMPLE") == "1" {
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	have, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, buf.String(), string(have), "docs/offencecam.example.yaml is stale; regenerate it")

	cfg, err := Load(Flags{ConfigFile: path}, nil)
	require.NoError(t, err)
	assert.Equal(t, Default().Review, cfg.Review)
}
