package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No Docker engine runs on the development machines, so the Dockerfile is kept correct by
// construction and by this check of its essentials.
func TestDockerfileEssentials(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	require.NoError(t, err)

	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	type stage struct {
		from  string
		instr []string
	}
	var stages []stage
	for _, l := range lines {
		op := strings.ToUpper(strings.Fields(l)[0])
		if op == "FROM" {
			stages = append(stages, stage{from: l})
			continue
		}
		require.NotEmpty(t, stages, "instruction before FROM: %s", l)
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, l)
	}
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage build")
	for _, s := range stages {
		assert.Contains(t, s.from, "bookworm", "every stage is Debian bookworm: %s", s.from)
	}
	build, final := stages[0], stages[len(stages)-1]
	joined := func(s stage) string { return strings.Join(s.instr, "\n") }

	assert.Contains(t, joined(build), "libopencv-dev", "build stage has OpenCV headers for gocv")
	assert.Regexp(t, `go build .*\./cmd/offencecam`, joined(build))
	assert.Regexp(t, `offencecam models fetch`, joined(build), "models and the ONNX Runtime library are fetched and verified at build")

	f := joined(final)
	assert.Regexp(t, `COPY --from=\S+ /out/offencecam`, f)
	assert.Regexp(t, `COPY --from=\S+ /out/models`, f, "runtime image carries the models and ONNX Runtime")
	assert.Contains(t, f, "runtime-packages.txt", "runtime image installs the OpenCV runtime libraries the binary links")

	var user string
	for _, l := range final.instr {
		if strings.HasPrefix(strings.ToUpper(l), "USER ") {
			user = strings.Fields(l)[1]
		}
	}
	require.NotEmpty(t, user, "final stage sets USER")
	name := strings.Split(user, ":")[0]
	assert.NotEqual(t, "root", name)
	assert.NotEqual(t, "0", name)

	assert.Regexp(t, regexp.MustCompile(`HEALTHCHECK .*CMD .*healthcheck.*/healthz`), f)
	assert.Regexp(t, `ENTRYPOINT \[.*offencecam"\]`, f)
}
