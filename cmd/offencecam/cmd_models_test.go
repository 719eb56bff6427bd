package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossborder/offencecam/internal/testenv"
)

// runCLI runs the real binary (the test binary doubling as offencecam) and returns its
// combined output and exit status.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	// The commands' own cache resolution is under test: make's OFFENCECAM_MODELS_CACHE
	// (which `make test` exports for the tests) must not override it.
	cmd := offencecam(t, []string{"OFFENCECAM_MODELS_CACHE="}, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	default:
		t.Fatalf("offencecam %v: %v", args, err)
		return "", -1
	}
}

// The acceptance test: `models verify` detects a corrupted cached file (a flipped byte)
// and exits 1; `models fetch` repairs it from the mirror.
func TestModelsVerifyDetectsCorruptionFetchRepairs(t *testing.T) {
	mirror := filepath.Dir(testenv.SharedPath(t, "models", "yolox_nano.onnx"))
	cache := t.TempDir()
	names := []string{"yolox-nano", "fast-plate-ocr"}

	out, code := runCLI(t, append([]string{"models", "fetch", "--cache", cache, "--mirror", mirror}, names...)...)
	if code != 0 {
		t.Fatalf("fetch: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "3 files of 2 models ready") {
		t.Fatalf("fetch output:\n%s", out)
	}
	out, code = runCLI(t, append([]string{"models", "verify", "--cache", cache}, names...)...)
	if code != 0 || !strings.Contains(out, "all 3 files ok") {
		t.Fatalf("verify of a fresh cache: exit %d\n%s", code, out)
	}

	p := filepath.Join(cache, "yolox_nano.onnx")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[12345] ^= 0x80
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, append([]string{"models", "verify", "--cache", cache}, names...)...)
	if code != 1 {
		t.Fatalf("verify of a corrupted cache: exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "corrupt") || !strings.Contains(out, "yolox_nano.onnx") || !strings.Contains(out, "1 of 3 files missing or corrupt") {
		t.Fatalf("verify output does not name the corrupt file:\n%s", out)
	}

	out, code = runCLI(t, append([]string{"models", "fetch", "--cache", cache, "--mirror", mirror}, names...)...)
	if code != 0 || !strings.Contains(out, "cached copy is bad") {
		t.Fatalf("repair: exit %d\n%s", code, out)
	}
	out, code = runCLI(t, append([]string{"models", "verify", "--cache", cache}, names...)...)
	if code != 0 {
		t.Fatalf("verify after repair: exit %d\n%s", code, out)
	}
}

func TestModelsListAndUsage(t *testing.T) {
	cache := t.TempDir()
	if err := os.WriteFile(filepath.Join(cache, "yolox_nano.onnx"), make([]byte, 3678356), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "models", "list", "--cache", cache)
	if code != 0 {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	for _, want := range []string{"NAME", "LICENCE", "CACHED", "onnxruntime-gpu *", "paddleocr-rec", "Apache-2.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "yolox-nano" && f[len(f)-1] != "yes" {
			t.Errorf("yolox-nano (right size in the cache) not listed as cached: %q", line)
		}
		if len(f) > 0 && f[0] == "yunet-face" && f[len(f)-1] != "no" {
			t.Errorf("yunet-face (absent) not listed as missing: %q", line)
		}
	}

	if out, code := runCLI(t, "models", "verify", "--cache", cache, "no-such-model"); code != 2 || !strings.Contains(out, `"no-such-model"`) {
		t.Fatalf("unknown model: exit %d, want 2\n%s", code, out)
	}
	if out, code := runCLI(t, "models", "frobnicate"); code != 2 || !strings.Contains(out, "unknown subcommand") {
		t.Fatalf("unknown subcommand: exit %d, want 2\n%s", code, out)
	}
	// --manifests adds an operator's manifests to the builtin catalogue.
	own := t.TempDir()
	manifest := "name: own-seatbelt\nversion: \"1\"\nkind: model\ntask: detect\nlicence: proprietary\n" +
		"files:\n  - {name: seatbelt.onnx, sha256: " + strings.Repeat("ab", 32) + ", sources: [{mirror: seatbelt.onnx}]}\n" +
		"input: {name: images, type: float32, shape: [1, 3, 320, 320]}\noutputs: [{name: out, type: float32, shape: [1, -1, 7]}]\n" +
		"decoder: {type: yolov8}\nclasses: [{id: 0, name: belt, role: seatbelt}, {id: 1, name: no_belt, role: no_seatbelt}]\n"
	if err := os.WriteFile(filepath.Join(own, "own.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "models", "list", "--cache", cache, "--manifests", own); code != 0 || !strings.Contains(out, "own-seatbelt") {
		t.Fatalf("list --manifests: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(filepath.Join(own, "bad.yaml"), []byte("name: x\nlicense: MIT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "models", "list", "--manifests", own); code != 2 || !strings.Contains(out, "license") {
		t.Fatalf("bad operator manifest: exit %d, want 2 naming the field\n%s", code, out)
	}

	// --data moves the default cache to DATA/models.
	data := t.TempDir()
	out, code = runCLI(t, "models", "list", "--data", data)
	if code != 0 || !strings.Contains(out, filepath.Join(data, "models")) {
		t.Fatalf("list --data: exit %d\n%s", code, out)
	}
}
