package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ObjectRef is one announced object: where it is and how to find it. Keys lists the forms of
// the key to try in order (an event's key decoded, then raw); ETag is a hint only, the Stat
// of the object is authoritative.
type ObjectRef struct {
	Bucket string
	Keys   []string
	ETag   string
	Source string // pipeline.SourceEvent, SourceListing or SourceInbox
}

// s3Event is the part of the AWS S3 event notification format ingest reads (MinIO's and
// versitygw's NATS targets send the same shape).
type s3Event struct {
	Records []struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
				ETag string `json:"eTag"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// ErrBadEvent marks a notification that is not an S3 event ingest can read.
var ErrBadEvent = errors.New("ingest: bad S3 event")

// ParseEvent reads an S3 event notification and returns the objects it announces as created.
// Other events (removals, versitygw's s3:TestEvent) yield no refs and no error.
func ParseEvent(data []byte) ([]ObjectRef, error) {
	var ev s3Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	var refs []ObjectRef
	for i, r := range ev.Records {
		name := strings.TrimPrefix(r.EventName, "s3:")
		if !strings.HasPrefix(name, "ObjectCreated:") {
			continue
		}
		b, k := r.S3.Bucket.Name, r.S3.Object.Key
		if b == "" || k == "" {
			return refs, fmt.Errorf("%w: record %d (%s) has no bucket or key", ErrBadEvent, i, r.EventName)
		}
		refs = append(refs, ObjectRef{
			Bucket: b,
			Keys:   KeyCandidates(k),
			ETag:   NormalizeETag(r.S3.Object.ETag),
			Source: "event",
		})
	}
	return refs, nil
}

// KeyCandidates are the keys an event's key may stand for, most likely first. AWS and MinIO
// URL-encode the key in event records (a space as '+'); versitygw sends it raw. Trying the
// decoded form first and the raw form second finds the object from either kind of server;
// a key that contains '+' or '%' literally is found by the second try.
func KeyCandidates(eventKey string) []string {
	dec, err := url.QueryUnescape(eventKey)
	if err != nil || dec == eventKey || dec == "" {
		return []string{eventKey}
	}
	return []string{dec, eventKey}
}

// NormalizeETag drops the quotes some servers put around an ETag, so ETags from events,
// listings and Stat compare equal.
func NormalizeETag(etag string) string {
	return strings.Trim(strings.TrimSpace(etag), `"`)
}
