// Package natstest starts a real, embedded NATS server with the provisioned wire for tests.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a test NATS server with JetStream and every stream and KV of the wire.
type Server struct {
	*natsx.Embedded
	Dir string
	NC  *nats.Conn
	JS  jetstream.JetStream
}

// Start starts an embedded server in a temporary directory, provisions the wire with
// natsx.DefaultLimits (adjusted by tune when non-nil) and connects. Everything is stopped
// when the test ends.
func Start(t testing.TB, tune func(*natsx.Limits)) *Server {
	t.Helper()
	dir := t.TempDir()
	return StartIn(t, dir, tune)
}

// StartIn is Start with a given directory, so a test can restart a server on the same store.
func StartIn(t testing.TB, dir string, tune func(*natsx.Limits)) *Server {
	t.Helper()
	emb, err := natsx.StartEmbedded(natsx.EmbeddedConfig{Dir: dir})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, emb.ClientURL(), t.Name())
	if err != nil {
		emb.Shutdown()
		t.Fatalf("connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	l := natsx.DefaultLimits()
	if tune != nil {
		tune(&l)
	}
	if err := natsx.Provision(ctx, js, l); err != nil {
		t.Fatalf("provision: %v", err)
	}
	s := &Server{Embedded: emb, Dir: dir, NC: nc, JS: js}
	t.Cleanup(func() {
		nc.Close()
		emb.Shutdown()
	})
	return s
}
