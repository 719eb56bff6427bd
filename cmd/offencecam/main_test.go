package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/objstore/objstoretest"
	"github.com/crossborder/offencecam/internal/testenv"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as the offencecam binary: with OFFENCECAM_TEST_MAIN=1 it runs main,
// so black-box tests exercise the real command line, signals and exit codes without a
// second build.
func TestMain(m *testing.M) {
	if os.Getenv("OFFENCECAM_TEST_MAIN") == "1" {
		os.Args = append([]string{"offencecam"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// offencecam returns a command running the binary with args.
func offencecam(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), "OFFENCECAM_TEST_MAIN=1"), env...)
	return cmd
}

var uiLine = regexp.MustCompile(`UI http://([0-9.:]+)/`)

// syncBuffer is a bytes.Buffer safe for the exec copier writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe starts `offencecam serve` and returns the process and its HTTP address.
func startServe(t *testing.T, env []string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := offencecam(t, env, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("serve stderr:\n%s", stderr.String())
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := uiLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		require.True(t, ok, "serve exited before announcing its address: %s", stderr.String())
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not announce its address within 30s: %s", stderr.String())
	}
	return nil, ""
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeIsReadyServesMetricsAndStopsOnSIGTERM(t *testing.T) {
	cache := testenv.ModelCache()
	testenv.ModelFile(t, "yolox_nano.onnx")
	start := time.Now()
	cmd, addr := startServe(t, []string{"OFFENCECAM_MODELS_CACHE=" + cache}, "--data", t.TempDir())

	// The deadline counts from the announced address, like the other serve tests: serve loads
	// its models before it listens, which on a loaded machine can take most of startServe's
	// 30s, and must not eat the time readyz gets.
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; {
		if code, body = httpGet(t, "http://"+addr+"/readyz"); code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling an external process; there is nothing to wait on
	}
	require.Equal(t, 200, code, "readyz within 15s of listening: %s", body)
	t.Logf("ready %v after start", time.Since(start).Round(time.Millisecond))

	code, body = httpGet(t, "http://"+addr+"/healthz")
	assert.Equal(t, 200, code)
	code, body = httpGet(t, "http://"+addr+"/metrics")
	assert.Equal(t, 200, code)
	for _, m := range []string{"offencecam_build_info", "go_goroutines", "process_cpu_seconds_total",
		// one of each role's own metrics: every role runs in serve and registers on /metrics
		"offencecam_ingest_in_flight", "offencecam_detector_consumer_pending", "offencecam_model_inference_seconds",
		"offencecam_review_cases", "offencecam_platform_records_total"} {
		assert.Contains(t, body, m)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	stopAt := time.Now()
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "exit status after SIGTERM")
		assert.Less(t, time.Since(stopAt), 5*time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not exit within 5s of SIGTERM")
	}
}

func TestBadConfigurationFailsAtStartNamingTheField(t *testing.T) {
	dir := t.TempDir()
	unknown := dir + "/unknown.yaml"
	require.NoError(t, os.WriteFile(unknown, []byte("nats:\n  ulr: nats://x:4222\n"), 0o600))
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown field", nil, []string{"--config", unknown}, "ulr"},
		{"bad nats url", nil, []string{"--nats-url", "http://x:1"}, "nats.url"},
		{"bad s3 url", []string{"OFFENCECAM_S3_ACCESS_KEY=a", "OFFENCECAM_S3_SECRET_KEY=b"}, []string{"--s3-endpoint", "ftp://x"}, "s3.endpoint"},
		{"missing s3 credentials", []string{"OFFENCECAM_S3_ACCESS_KEY=", "OFFENCECAM_S3_SECRET_KEY=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, []string{"--s3-endpoint", "http://127.0.0.1:9"}, "s3.access_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := offencecam(t, tc.env, append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, tc.args...)...)
			cmd.WaitDelay = 20 * time.Second
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "must fail at start")
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.NotEqual(t, 0, ee.ExitCode())
			assert.Contains(t, string(out), tc.want)
			assert.False(t, strings.Contains(string(out), "listening"), "must fail before listening")
		})
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	out, err := offencecam(t, nil, "frobnicate").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "unknown command")
}

func TestServeJoinsExternalNATSAndS3(t *testing.T) {
	testenv.ModelFile(t, "yolox_nano.onnx")
	ns := natstest.Start(t, nil)
	s3 := objstoretest.StartVersity(t, objstoretest.VersityOptions{})
	env := []string{
		"OFFENCECAM_MODELS_CACHE=" + testenv.ModelCache(),
		"OFFENCECAM_S3_ACCESS_KEY=" + s3.AccessKey, "OFFENCECAM_S3_SECRET_KEY=" + s3.SecretKey,
	}
	endpoint := s3.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	cmd, addr := startServe(t, env, "--data", t.TempDir(), "--nats-url", ns.ClientURL(), "--s3-endpoint", endpoint)
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if code, body = httpGet(t, "http://"+addr+"/readyz"); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling an external process
	}
	require.Equal(t, 200, code, body)

	// The buckets were made on the external S3 server, not in a local directory.
	store, err := objstore.NewS3(s3)
	require.NoError(t, err)
	_, err = store.List(context.Background(), pipeline.BucketEvidence, "", objstore.ListOptions{Limit: 1})
	require.NoError(t, err)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}

var roleLine = regexp.MustCompile(`offencecam (\w+): (?:UI|metrics) http://([0-9.:]+)/`)

// Every role also runs alone against an external NATS (the scaled-out deployment): it comes
// up ready, and SIGTERM stops it with status 0.
func TestRoleCommandsRunAloneAgainstExternalNATS(t *testing.T) {
	testenv.ModelFile(t, "libonnxruntime.so.1")
	ns := natstest.Start(t, nil)
	data := t.TempDir()
	for _, role := range []string{"ingest", "detect", "review", "platform"} {
		t.Run(role, func(t *testing.T) {
			cmd := offencecam(t, []string{"OFFENCECAM_MODELS_CACHE=" + testenv.ModelCache()},
				role, "--nats-url", ns.ClientURL(), "--data", data, "--listen", "127.0.0.1:0")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			require.NoError(t, cmd.Start())
			defer func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}()
			addr := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if m := roleLine.FindStringSubmatch(sc.Text()); m != nil && m[1] == role {
						addr <- m[2]
					}
				}
			}()
			var a string
			select {
			case a = <-addr:
			case <-time.After(60 * time.Second):
				t.Fatalf("%s did not announce its listener: %s", role, stderr.String())
			}
			var code int
			var body string
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
				if code, body = httpGet(t, "http://"+a+"/readyz"); code == 200 {
					break
				}
				time.Sleep(50 * time.Millisecond) // polling an external process
			}
			require.Equal(t, 200, code, "%s readyz: %s\n%s", role, body, stderr.String())
			assert.Contains(t, body, `"`+role+`":"ok"`, "the role reports its own readiness")
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			require.NoError(t, cmd.Wait(), stderr.String())
		})
	}
}

// With the one-box default an administrator adds a reviewer while serve runs: `review user`
// joins serve's embedded NATS through the data directory, the new account logs in to that
// serve at once, and a second serve on the same directory is refused instead of opening the
// same JetStream store twice.
func TestReviewUserJoinsTheRunningServe(t *testing.T) {
	cache := testenv.ModelCache()
	testenv.ModelFile(t, "yolox_nano.onnx")
	env := []string{"OFFENCECAM_MODELS_CACHE=" + cache}
	data := t.TempDir()
	serve, addr := startServe(t, env, "--data", data)
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if code, body = httpGet(t, "http://"+addr+"/readyz"); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling an external process; there is nothing to wait on
	}
	require.Equal(t, 200, code, body)

	add := offencecam(t, env, "review", "user", "add", "bob", "-roles", "reviewer", "-lang", "nl", "-password-stdin", "--data", data)
	add.Stdin = strings.NewReader("a long test password\n")
	out, err := add.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "joining the embedded NATS of the running serve")

	login := func() int {
		res, err := http.Post("http://"+addr+"/api/login", "application/json",
			strings.NewReader(`{"user":"bob","password":"a long test password"}`))
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusOK, login(), "the running serve knows bob at once")

	second := offencecam(t, env, "serve", "--listen", "127.0.0.1:0", "--data", data)
	out, err = second.CombinedOutput()
	require.Error(t, err, "a second serve on the same data directory: %s", out)
	assert.Contains(t, string(out), "in use")

	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	require.NoError(t, serve.Wait())
	// With serve stopped the command opens the store itself, and finds bob there.
	out, err = offencecam(t, env, "review", "user", "list", "--data", data).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `(?m)^bob\s+reviewer\s+nl\s+active`, string(out))
	assert.NotContains(t, string(out), "joining")
}
