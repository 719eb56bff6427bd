package platform

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Kinds of attempt result.
type resultKind int

const (
	resultRetry    resultKind = iota // try again later: the platform or the network failed
	resultCreated                    // the platform holds the record
	resultRejected                   // the platform refused the record; retrying cannot help
)

// Outcome labels of offencecam_platform_attempts_total.
const (
	OutcomeCreated       = "created"           // 2xx, or a new ledger line
	OutcomeDuplicate     = "duplicate"         // 409 already exists, or already in the ledger
	OutcomeRejected      = "rejected"          // other 4xx
	OutcomeInvalid       = "invalid"           // failed the catalogue or the schema; never sent
	OutcomeNetworkError  = "network_error"     // connection refused/reset, TLS failure…
	OutcomeTimeout       = "timeout"           // no answer within request_timeout, or 408
	OutcomeServerError   = "server_error"      // 5xx
	OutcomeThrottled     = "throttled"         // 429
	OutcomeEndpointError = "endpoint_error"    // 401/403/404/405: credentials or URL, not the record
	OutcomeUnexpected    = "unexpected_status" // 1xx/3xx
	OutcomeLedgerError   = "ledger_error"      // the local ledger could not be written
)

// attemptResult is one delivery attempt's outcome.
type attemptResult struct {
	kind       resultKind
	outcome    string
	status     int // HTTP status, 0 when there was none
	reference  string
	message    string
	retryAfter time.Duration
}

// sink receives fine records: the HTTP platform or the local ledger.
type sink interface {
	deliver(ctx context.Context, caseID string, body []byte) attemptResult
	mode() string
	close() error
}

// httpSink POSTs records to the fines platform.
type httpSink struct {
	client   *http.Client
	endpoint string
	token    string
	timeout  time.Duration
}

const maxResponseBody = 64 << 10

func newHTTPSink(cfg Config, token string) (*httpSink, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("platform.tls.cert_file / key_file: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("platform.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("platform.tls.ca_file: %s holds no PEM certificate", cfg.TLS.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.TLS.ServerName != "" {
		tlsCfg.ServerName = cfg.TLS.ServerName
	}
	tr.TLSClientConfig = tlsCfg
	return &httpSink{
		client: &http.Client{
			Transport: tr,
			// A redirect of a POST either drops the body (301/302/303) or re-sends it
			// somewhere the configuration did not name: neither is acceptable for fines.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		endpoint: cfg.Endpoint,
		token:    token,
		timeout:  cfg.RequestTimeout,
	}, nil
}

func (h *httpSink) mode() string { return "http" }

func (h *httpSink) close() error {
	h.client.CloseIdleConnections()
	return nil
}

func (h *httpSink) deliver(ctx context.Context, caseID string, body []byte) attemptResult {
	rctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, h.endpoint, bytes.NewReader(body))
	if err != nil {
		return attemptResult{kind: resultRetry, outcome: OutcomeNetworkError, message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", caseID)
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return attemptResult{kind: resultRetry, outcome: OutcomeTimeout,
				message: fmt.Sprintf("no response within %s", h.timeout)}
		}
		return attemptResult{kind: resultRetry, outcome: OutcomeNetworkError, message: redactURLError(err)}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	st := resp.StatusCode
	res := attemptResult{status: st}
	switch {
	case st >= 200 && st < 300:
		if readErr != nil {
			// The platform said yes but the body is lost: asking again with the same
			// Idempotency-Key returns the reference (409 or a replayed 2xx).
			return attemptResult{kind: resultRetry, outcome: OutcomeNetworkError, status: st,
				message: "reading response: " + readErr.Error()}
		}
		res.kind, res.outcome = resultCreated, OutcomeCreated
		res.reference = referenceOf(data)
		if res.reference == "" {
			res.message = "the platform's response carried no reference"
		}
	case st == http.StatusConflict:
		res.kind, res.outcome = resultCreated, OutcomeDuplicate
		res.reference = referenceOf(data)
		res.message = messageOf(data, st)
	case st == http.StatusRequestTimeout:
		res.kind, res.outcome = resultRetry, OutcomeTimeout
	case st == http.StatusTooManyRequests:
		res.kind, res.outcome = resultRetry, OutcomeThrottled
	case st == http.StatusTooEarly:
		res.kind, res.outcome = resultRetry, OutcomeServerError
	case st >= 500:
		res.kind, res.outcome = resultRetry, OutcomeServerError
	case st == http.StatusUnauthorized, st == http.StatusForbidden, st == http.StatusNotFound, st == http.StatusMethodNotAllowed:
		// These describe the credentials or the URL, not the record: rejecting would mark
		// every valid offence platform_rejected while a token is expired.
		res.kind, res.outcome = resultRetry, OutcomeEndpointError
	case st >= 400:
		res.kind, res.outcome = resultRejected, OutcomeRejected
	default:
		res.kind, res.outcome = resultRetry, OutcomeUnexpected
	}
	if res.message == "" && res.kind != resultCreated {
		res.message = messageOf(data, st)
	}
	if res.kind == resultRetry {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// referenceOf reads {"reference": "..."}, the documented response of 2xx and 409.
func referenceOf(body []byte) string {
	var v struct {
		Reference string `json:"reference"`
	}
	if json.Unmarshal(body, &v) == nil {
		return v.Reference
	}
	return ""
}

// messageOf extracts the platform's explanation: {"message"}, {"error"}, RFC 9457
// {"detail"}/{"title"}, or the text of the body.
func messageOf(body []byte, status int) string {
	var v map[string]any
	if json.Unmarshal(body, &v) == nil {
		for _, k := range []string{"message", "error", "detail", "title"} {
			if s, ok := v[k].(string); ok && strings.TrimSpace(s) != "" {
				return clip(s)
			}
		}
	}
	if s := strings.TrimSpace(string(body)); s != "" && !strings.HasPrefix(s, "{") {
		return clip(s)
	}
	return fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > 1<<31 {
			n = 1 << 31
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// redactURLError keeps the cause of a transport error without the URL's userinfo or query,
// which might carry secrets.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
