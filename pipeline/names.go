// Package pipeline is the wire between offencecam's stages: message types, stream, subject,
// key-value and bucket names. Stages never import one another; they share only this package.
package pipeline

import (
	"strings"
)

// Version is the schema version written in every message's "v" field. Readers accept any
// version they understand and keep fields they do not (see Extra on each message).
const Version = 1

// JetStream streams and their subjects (DESIGN.md, "Wire").
const (
	StreamFrames     = "FRAMES"
	StreamDetections = "DETECTIONS"
	StreamFines      = "FINES"
	StreamAudit      = "AUDIT"
	StreamDLQ        = "DLQ"

	SubjectFramesAll     = "frames.>"
	SubjectDetectionsAll = "detections.>"
	SubjectFinesCreate   = "fines.create"
	SubjectFineResults   = "fines.result.>" // platform outcomes, consumed by review
	SubjectFinesAll      = "fines.>"
	SubjectAuditAll      = "audit.>"
	SubjectDLQAll        = "dlq.>"
)

// Key-value buckets.
const (
	KVCases = "cases"
	KVSeen  = "seen"
)

// Object-store buckets.
const (
	BucketFrames     = "frames"
	BucketEvidence   = "evidence"
	BucketQuarantine = "quarantine"
)

// Durable consumer names, so that every role that restarts picks up where it stopped.
const (
	ConsumerDetect   = "detect"
	ConsumerReview   = "review"
	ConsumerPlatform = "platform"
	// ConsumerReviewResults is review's consumer of platform outcomes (fines.result.>).
	ConsumerReviewResults = "review-results"
)

// Offence kinds the detector can flag. The platform catalogue must cover every one.
const (
	OffencePhone    = "phone"    // hand-held mobile phone while driving
	OffenceSeatbelt = "seatbelt" // driver not wearing a seat belt
)

// OffenceKinds lists every offence kind the detector may flag, in a stable order.
var OffenceKinds = []string{OffencePhone, OffenceSeatbelt}

// FrameSubject is the FRAMES subject for a camera.
func FrameSubject(camera string) string { return "frames." + Token(camera) }

// DetectionSubject is the DETECTIONS subject for a camera.
func DetectionSubject(camera string) string { return "detections." + Token(camera) }

// FineResultSubject is the subject of the platform's outcome for one case.
func FineResultSubject(caseID string) string { return "fines.result." + Token(caseID) }

// AuditSubject is the AUDIT subject for one entity (case, user, evidence…).
func AuditSubject(entity, id string) string { return "audit." + Token(entity) + "." + Token(id) }

// DLQSubject is the DLQ subject for a stage (ingest, detect, review, platform).
func DLQSubject(stage string) string { return "dlq." + Token(stage) }

// Token makes s safe as one NATS subject token or KV key: camera ids and case ids come from
// outside (keys, metadata), and a '.', '*', '>' or space in them would change the subject's
// meaning. Allowed bytes pass through; anything else becomes '_'. An empty string becomes "_".
func Token(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '=':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
