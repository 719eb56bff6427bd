// Package natsx owns offencecam's NATS plumbing: the embedded server of the one-box default,
// connections with reconnect handling for external servers, and idempotent provisioning of
// every stream and key-value bucket the wire needs (DESIGN.md, "Wire").
package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// Dir holds JetStream's file store (<Dir>/jetstream). Required.
	Dir string
	// Listen is host:port for clients; port 0 picks a free one. Default 127.0.0.1:0, so the
	// one-box default is not reachable from the network unless the operator asks.
	Listen string
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv  *server.Server
	dir  string
	lock *os.File // an exclusive flock on <dir>/embedded.lock for the server's lifetime
}

// markerFile, in EmbeddedConfig.Dir, names the embedded server running on that directory:
// a second process on the same data directory (`review user …` beside `serve`) joins it
// through Running instead of opening the same JetStream store a second time.
const markerFile = "running.json"

type marker struct {
	URL      string `json:"url"`
	ServerID string `json:"server_id"`
	PID      int    `json:"pid"`
}

// Running returns the client URL of the embedded server that a live process runs on dir, or
// ok false when there is none: no marker, or a stale one left by a killed process (its URL
// does not answer, or answers with another server's identity).
func Running(dir string) (url string, pid int, ok bool) {
	data, err := os.ReadFile(filepath.Join(dir, markerFile))
	if err != nil {
		return "", 0, false
	}
	var m marker
	if json.Unmarshal(data, &m) != nil || m.URL == "" || m.ServerID == "" {
		return "", 0, false
	}
	nc, err := nats.Connect(m.URL, nats.Name("offencecam-probe"), nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return "", 0, false
	}
	defer nc.Close()
	if nc.ConnectedServerId() != m.ServerID {
		return "", 0, false
	}
	return m.URL, m.PID, true
}

// StartEmbedded starts a NATS server with JetStream in this process and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("natsx: embedded server needs a data directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("natsx: embedded server directory: %w", err)
	}
	// The lock, not the marker, keeps two servers off one store: the kernel drops it when
	// its process dies, however it dies.
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, "embedded.lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("natsx: lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if url, pid, ok := Running(cfg.Dir); ok {
			return nil, fmt.Errorf("natsx: %s is in use by the embedded NATS server of process %d (%s): %w", cfg.Dir, pid, url, ErrInUse)
		}
		return nil, fmt.Errorf("natsx: %s is locked by another process (%v): %w", cfg.Dir, err, ErrInUse)
	}
	started := false
	defer func() {
		if !started {
			lock.Close()
		}
	}()
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("natsx: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsx: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "offencecam-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.Dir, "jetstream"),
		NoSigs:     true, // the process owns signal handling, not the embedded server
		NoLog:      true,
		// Generous payload: a Detection carries boxes and scores, never images, but DLQ
		// entries wrap an original message.
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsx: new embedded server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("natsx: embedded server not ready within 15s")
	}
	e := &Embedded{srv: srv, dir: cfg.Dir, lock: lock}
	started = true
	if err := e.writeMarker(); err != nil {
		e.Shutdown()
		return nil, err
	}
	slog.Info("embedded NATS started", "url", srv.ClientURL(), "store", opts.StoreDir)
	return e, nil
}

// ErrInUse is returned (wrapped) by StartEmbedded when a live process already runs an
// embedded server on the directory.
var ErrInUse = errors.New("data directory in use")

func (e *Embedded) writeMarker() error {
	data, err := json.Marshal(marker{URL: e.srv.ClientURL(), ServerID: e.srv.ID(), PID: os.Getpid()})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(e.dir, markerFile+".*")
	if err != nil {
		return fmt.Errorf("natsx: marker: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("natsx: marker: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("natsx: marker: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(e.dir, markerFile)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("natsx: marker: %w", err)
	}
	return nil
}

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has flushed its store, and removes the
// directory's marker if it still names this server.
func (e *Embedded) Shutdown() {
	p := filepath.Join(e.dir, markerFile)
	if data, err := os.ReadFile(p); err == nil {
		var m marker
		if json.Unmarshal(data, &m) == nil && m.ServerID == e.srv.ID() {
			os.Remove(p)
		}
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.Close()
}

// Connect opens a connection that reconnects forever: a NATS restart or network blip must
// pause the pipeline, not end it. The first connection is retried until ctx ends, so a role
// started before its NATS server waits for it instead of exiting.
func Connect(ctx context.Context, url, name string, extra ...nats.Option) (*nats.Conn, error) {
	log := slog.With("nats_url", url, "client", name)
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", c.ConnectedUrl())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("NATS async error", "subject", subj, "err", err)
		}),
	}
	opts = append(opts, extra...)
	backoff := 200 * time.Millisecond
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		log.Warn("NATS connect failed, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("natsx: connect %s: %w (last error: %v)", url, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Ready reports whether the connection is up, for /readyz.
func Ready(nc *nats.Conn) error {
	if nc == nil {
		return errors.New("nats: no connection")
	}
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats: connection is %s", st)
	}
	return nil
}
