package objstoretest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossborder/offencecam/internal/natsx/natstest"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/objstore/objstoretest"
	"github.com/nats-io/nats.go"
)

// s3Event is the part of versitygw's notification the ingest stage relies on.
type s3Event struct {
	Records []struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string  `json:"key"`
				Size int64   `json:"size"`
				ETag *string `json:"eTag"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// TestVersityNATSEvents proves that with VersityOptions.EventNATS* an upload produces an S3
// event on the NATS subject, and records how the key is encoded in it.
func TestVersityNATSEvents(t *testing.T) {
	ns := natstest.Start(t, nil)
	const topic = "test.s3.events"
	msgs := make(chan *nats.Msg, 64)
	sub, err := ns.NC.ChanSubscribe(topic, msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := ns.NC.Flush(); err != nil {
		t.Fatal(err)
	}

	cfg := objstoretest.StartVersity(t, objstoretest.VersityOptions{EventNATSURL: ns.ClientURL(), EventNATSTopic: topic})
	s, err := objstore.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.EnsureBucket(ctx, "frames"); err != nil {
		t.Fatal(err)
	}
	const key = "cam 7/2026-11-27/é+ß 日本%20.jpg"
	body := []byte("jpeg bytes")
	info, err := s.Put(ctx, "frames", key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{ContentType: "image/jpeg"})
	if err != nil {
		t.Fatal(err)
	}

	var sawTest, gotPut bool
	for !gotPut {
		select {
		case m := <-msgs:
			var probe map[string]any
			if err := json.Unmarshal(m.Data, &probe); err != nil {
				t.Fatalf("event is not JSON: %q", m.Data)
			}
			if probe["Event"] == "s3:TestEvent" { // published once when the gateway connects
				sawTest = true
				continue
			}
			var ev s3Event
			if err := json.Unmarshal(m.Data, &ev); err != nil || len(ev.Records) != 1 {
				t.Fatalf("unexpected event %s (%v)", m.Data, err)
			}
			r := ev.Records[0]
			if r.EventName != "s3:ObjectCreated:Put" {
				continue
			}
			t.Logf("event: %s", m.Data)
			if r.S3.Bucket.Name != "frames" || r.S3.Object.Key != key || r.S3.Object.Size != int64(len(body)) {
				t.Errorf("event bucket %q key %q size %d; want frames, %q (raw, not URL-encoded), %d",
					r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.Size, key, len(body))
			}
			// versitygw sends the ETag with its HTTP quotes.
			if r.S3.Object.ETag == nil || strings.Trim(*r.S3.Object.ETag, `"`) != info.ETag {
				t.Errorf("event eTag %v, want %q", r.S3.Object.ETag, info.ETag)
			}
			if !sawTest {
				t.Errorf("no s3:TestEvent before the first real event")
			}
			gotPut = true
		case <-ctx.Done():
			t.Fatal("no s3:ObjectCreated:Put event within 30s")
		}
	}

	// A streamed upload larger than one part is a multipart upload: the event is
	// CompleteMultipartUpload; versitygw v1.8.0 reports size 0 in it (and in Copy events), so
	// a consumer must Stat the object for its size.
	big := bytes.Repeat([]byte("0123456789abcdef"), 9<<20/16)
	if _, err := s.Put(ctx, "frames", "cam 7/big.jpg", bytes.NewReader(big), -1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-msgs:
			var ev s3Event
			if err := json.Unmarshal(m.Data, &ev); err != nil || len(ev.Records) != 1 {
				t.Fatalf("unexpected event %s (%v)", m.Data, err)
			}
			r := ev.Records[0]
			if r.EventName != "s3:ObjectCreated:CompleteMultipartUpload" {
				continue
			}
			if r.S3.Object.Key != "cam 7/big.jpg" {
				t.Errorf("multipart event key %q", r.S3.Object.Key)
			}
			t.Logf("multipart event: key %q size %d", r.S3.Object.Key, r.S3.Object.Size)
			return
		case <-ctx.Done():
			t.Fatal("no s3:ObjectCreated:CompleteMultipartUpload event within 30s")
		}
	}
}

// TestStartVersityBackendAndStop checks objects land in the posix directory and that the
// gateway is gone after cleanup.
func TestStartVersityBackendAndStop(t *testing.T) {
	var cfg objstore.S3Config
	t.Run("run", func(t *testing.T) {
		v := objstoretest.Start(t, objstoretest.VersityOptions{})
		cfg = v.Config
		s, err := objstore.NewS3(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := s.EnsureBucket(ctx, "b-one"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "b-one", "x/y.txt", bytes.NewReader([]byte("hi")), 2, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(v.Dir, "b-one", "x", "y.txt"))
		if err != nil || string(got) != "hi" {
			t.Fatalf("posix backend file = %q, %v", got, err)
		}
	})
	s, err := objstore.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("versitygw still answers after its test ended")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Ping of a stopped server took %v; readiness checks need a fast answer", d)
	}
}
