package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEndpoints(t *testing.T) {
	reg := NewRegistry("test")
	var h Health
	mux := http.NewServeMux()
	h.Mount(mux, reg)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(p string) (int, string) {
		resp, err := http.Get(srv.URL + p)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "offencecam_build_info")
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, body, "process_")

	code, _ = get("/healthz")
	assert.Equal(t, 200, code)

	broken := errors.New("nats down")
	var fail error = broken
	h.Add("nats", func(context.Context) error { return fail })
	code, body = get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	var res struct {
		Ready  bool
		Checks map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	assert.False(t, res.Ready)
	assert.Equal(t, "nats down", res.Checks["nats"])

	fail = nil
	code, _ = get("/readyz")
	assert.Equal(t, 200, code)
}

func TestLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "json", "info")
	require.NoError(t, err)
	l.Debug("hidden")
	l.Info("shown", "k", 1)
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"))
	assert.Contains(t, buf.String(), `"k":1`)
	_, err = NewLogger(&buf, "xml", "info")
	assert.ErrorContains(t, err, "log.format")
	_, err = NewLogger(&buf, "json", "loud")
	assert.ErrorContains(t, err, "log.level")
}
