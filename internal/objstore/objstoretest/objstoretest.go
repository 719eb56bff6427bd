// Package objstoretest starts a real S3 server (versitygw, posix backend) for tests.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/testenv"
)

// VersityOptions tune the gateway.
type VersityOptions struct {
	// EventNATSURL and EventNATSTopic make versitygw publish S3 event notifications (JSON,
	// AWS "Records" shape) for every object created/removed to this NATS subject. The NATS
	// server must already be running: versitygw connects (and publishes one test event) at
	// start. No filter file is passed, so all event types are sent.
	EventNATSURL   string
	EventNATSTopic string
}

// Versity is a running versitygw.
type Versity struct {
	Config objstore.S3Config
	Dir    string // posix backend root: <Dir>/<bucket>/<key>
}

const healthPath = "/healthz"

// StartVersity starts versitygw v1.8.0 (found by testenv.Binary; a missing binary fails the
// test under CI=true, skips elsewhere) on a free loopback port with a posix backend in a
// temp dir, waits until it answers its health endpoint and stops it when the test ends.
func StartVersity(t testing.TB, opts VersityOptions) objstore.S3Config {
	t.Helper()
	return Start(t, opts).Config
}

// Start is StartVersity returning the backend directory as well.
func Start(t testing.TB, opts VersityOptions) *Versity {
	t.Helper()
	bin := testenv.Binary(t, "versitygw")
	dir := filepath.Join(t.TempDir(), "s3")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("versitygw dir: %v", err)
	}
	access, secret := "test-"+randHex(6), randHex(16)

	// The port is picked by binding :0 and released for the gateway; another process can
	// take it in between, so a start that dies early is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		args := []string{"--access", access, "--secret", secret, "--port", addr,
			"--region", "us-east-1", "--health", healthPath, "--quiet"}
		if opts.EventNATSURL != "" {
			topic := opts.EventNATSTopic
			if topic == "" {
				t.Fatalf("VersityOptions.EventNATSTopic must be set with EventNATSURL")
			}
			args = append(args, "--event-nats-url", opts.EventNATSURL, "--event-nats-topic", topic)
		}
		args = append(args, "posix", dir)
		p, err := startProc(bin, args)
		if err != nil {
			t.Fatalf("start versitygw: %v", err)
		}
		if err := p.waitHealthy(addr, 30*time.Second); err != nil {
			p.stop()
			lastErr = fmt.Errorf("%w\nversitygw output:\n%s", err, p.out.String())
			continue
		}
		t.Cleanup(func() {
			if err := p.stop(); err != nil {
				t.Logf("versitygw stop: %v\n%s", err, p.out.String())
			}
		})
		cfg := objstore.DefaultS3Config()
		cfg.Endpoint = "http://" + addr
		cfg.AccessKey, cfg.SecretKey, cfg.Region = access, secret, "us-east-1"
		return &Versity{Config: cfg, Dir: dir}
	}
	t.Fatalf("versitygw did not start: %v", lastErr)
	return nil
}

// NewS3Store starts a versitygw and returns an S3 store on it.
func NewS3Store(t testing.TB, opts VersityOptions) *objstore.S3 {
	t.Helper()
	cfg := StartVersity(t, opts)
	s, err := objstore.NewS3(cfg)
	if err != nil {
		t.Fatalf("objstore.NewS3: %v", err)
	}
	return s
}

type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startProc(bin string, args []string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) waitHealthy(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+healthPath, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("versitygw exited: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("versitygw on %s not healthy within %s", addr, timeout)
		case <-tick.C:
		}
	}
}

// stop terminates the whole process group and waits for the gateway to exit.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return errors.New("versitygw ignored SIGTERM for 5s; killed")
	case <-time.After(5 * time.Second):
		return errors.New("versitygw did not exit after SIGKILL")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the first MiB: enough to diagnose a failed start
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
