package platform

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crossborder/offencecam/pipeline"
)

// TestSchemaFailuresNeverSent: records the schema (or the catalogue) refuses are never
// POSTed, and each is reported rejected with the reason; an undecodable message goes to the
// DLQ and its case is reported rejected too.
func TestSchemaFailuresNeverSent(t *testing.T) {
	srv := natsServer(t)
	js := srv.JS
	plat := newFakePlatform(t, "", func(string, int) string { return actOK })

	badSHA := validFine("bad-sha")
	badSHA.Evidence[0].SHA256 = "not-a-hash"
	noPlate := validFine("no-plate")
	noPlate.Plate = ""
	noPlace := validFine("no-place")
	noPlace.Location = nil
	unknownKind := validFine("unknown-kind")
	unknownKind.Offences = []string{"speeding"}
	noReview := validFine("no-review")
	noReview.Decisions = nil
	for _, f := range []pipeline.FineRecord{badSHA, noPlate, noPlace, unknownKind, noReview, validFine("good")} {
		publishFine(t, js, f)
	}
	_, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: pipeline.SubjectFinesCreate, Data: []byte("{not json"),
		Header: nats.Header{nats.MsgIdHdr: []string{"garbled"}}})
	require.NoError(t, err)

	cfg := testConfig()
	cfg.Endpoint = plat.srv.URL
	cfg.AllowInsecureHTTP = true
	reg := prometheus.NewRegistry()
	stop := runConnector(t, js, reg, t.TempDir(), cfg)
	want := map[string]string{
		"bad-sha":      "/evidence/0/sha256",
		"no-plate":     "/vehicle/plate",
		"no-place":     "/place",
		"unknown-kind": `kind "speeding" is not in catalogue`,
		"no-review":    "/reviews",
		"garbled":      "undecodable FINES message",
	}
	eventually(t, 20*time.Second, "all outcomes", func() bool {
		for id := range want {
			if !final(lastResult(t, js, id)) {
				return false
			}
		}
		return final(lastResult(t, js, "good"))
	})
	stop()

	assert.Equal(t, pipeline.FineCreated, lastResult(t, js, "good").Status)
	plat.mu.Lock()
	assert.Equal(t, map[string]int{"good": 1}, plat.attempts, "only the valid record reached the platform")
	plat.mu.Unlock()
	for id, reason := range want {
		fr := lastResult(t, js, id)
		assert.Equal(t, pipeline.FineRejected, fr.Status, id)
		assert.Contains(t, fr.Message, reason, id)
		ev := lastAudit(t, js, id)
		require.NotNil(t, ev, id)
		assert.Equal(t, AuditInvalid, ev.Action, id)
		assert.Equal(t, "platform_rejected", ev.To, id)
		assert.Equal(t, fr.Message, ev.Reason, id)
	}
	// Records that fail never get a "sent" result: nothing was sent.
	s, err := js.Stream(t.Context(), pipeline.StreamFines)
	require.NoError(t, err)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(pipeline.FineResultSubject("bad-sha")))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.State.Subjects[pipeline.FineResultSubject("bad-sha")], "only the rejected result, no sent")
	info, err = s.Info(t.Context(), jetstream.WithSubjectFilter(pipeline.FineResultSubject("good")))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.State.Subjects[pipeline.FineResultSubject("good")], "sent, then created")

	dlq, err := js.Stream(t.Context(), pipeline.StreamDLQ)
	require.NoError(t, err)
	m, err := dlq.GetLastMsgForSubject(t.Context(), pipeline.DLQSubject("platform"))
	require.NoError(t, err)
	entry, err := pipeline.Decode[pipeline.DLQEntry](m.Data)
	require.NoError(t, err)
	assert.Equal(t, []byte("{not json"), entry.RawData)
	assert.Equal(t, "garbled", entry.Headers[nats.MsgIdHdr])
	assert.Equal(t, 6.0, metricValue(t, reg, "offencecam_platform_attempts_total", OutcomeInvalid))
	assert.Zero(t, finesCreateLeft(t, js))
}

// TestMutualTLS sends over HTTPS to a platform that requires a client certificate signed by
// its CA, and checks that without the certificate nothing gets through.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	serverCert := issue(t, ca, caKey, "platform.test", true)
	clientCertFile, clientKeyFile := writePair(t, dir, "client", issue(t, ca, caKey, "offencecam-connector", false))
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600))

	var mu sync.Mutex
	var peers []string
	plat := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers = append(peers, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"reference": "TLS-" + r.Header.Get("Idempotency-Key")})
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	plat.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert}
	plat.StartTLS()
	t.Cleanup(plat.Close)

	srv := natsServer(t)
	js := srv.JS

	// Without a client certificate the handshake fails: retried, never accepted.
	cfg := testConfig()
	cfg.Endpoint = plat.URL
	cfg.TLS.CAFile = caFile
	cfg.TLS.ServerName = "platform.test"
	publishFine(t, js, validFine("tls-1"))
	reg := prometheus.NewRegistry()
	stop := runConnector(t, js, reg, t.TempDir(), cfg)
	eventually(t, 20*time.Second, "handshake failures", func() bool {
		return metricValue(t, reg, "offencecam_platform_attempts_total", OutcomeNetworkError) >= 2
	})
	stop()
	mu.Lock()
	assert.Empty(t, peers)
	mu.Unlock()
	assert.Equal(t, pipeline.FineSent, lastResult(t, js, "tls-1").Status, "still waiting, not rejected")

	cfg.TLS.CertFile, cfg.TLS.KeyFile = clientCertFile, clientKeyFile
	stop = runConnector(t, js, prometheus.NewRegistry(), t.TempDir(), cfg)
	eventually(t, 20*time.Second, "created over mTLS", func() bool { return final(lastResult(t, js, "tls-1")) })
	stop()
	assert.Equal(t, "TLS-tls-1", lastResult(t, js, "tls-1").Reference)
	mu.Lock()
	assert.Equal(t, []string{"offencecam-connector"}, peers)
	mu.Unlock()
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, server bool) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{cn}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePair(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600))
	kb, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

var _ = context.Background
