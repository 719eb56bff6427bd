// Package natsx owns offencecam's NATS plumbing: the embedded server of the one-box default,
// connections with reconnect handling for external servers, and idempotent provisioning of
// every stream and key-value bucket the wire needs (DESIGN.md, "Wire").
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
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
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream in this process and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("natsx: embedded server needs a data directory")
	}
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
	slog.Info("embedded NATS started", "url", srv.ClientURL(), "store", opts.StoreDir)
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has flushed its store.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
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
