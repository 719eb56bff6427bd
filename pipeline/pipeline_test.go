package pipeline

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameRoundTripKeepsUnknownFields(t *testing.T) {
	in := []byte(`{"v":1,"id":"frames/cam1/a.jpg/abc","bucket":"frames","key":"cam1/a.jpg","etag":"abc",
		"size":12,"camera":"cam1","captured_at":"2026-11-27T08:15:00+01:00","passage_id":"p1",
		"received_at":"2026-11-27T07:15:01Z","future_field":{"x":[1,2]},"another":"kept"}`)
	f, err := Decode[Frame](in)
	require.NoError(t, err)
	assert.Equal(t, "cam1", f.Camera)
	assert.Equal(t, "p1", f.PassageID)
	require.Len(t, f.Extra, 2)
	assert.JSONEq(t, `{"x":[1,2]}`, string(f.Extra["future_field"]))

	out, err := json.Marshal(f)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(out, &m))
	assert.JSONEq(t, `"kept"`, string(m["another"]))
	assert.JSONEq(t, `{"x":[1,2]}`, string(m["future_field"]))
	assert.JSONEq(t, `"cam1/a.jpg"`, string(m["key"]))

	// The capture time keeps its zone through the round trip.
	var back Frame
	require.NoError(t, json.Unmarshal(out, &back))
	_, off := back.CapturedAt.Zone()
	assert.Equal(t, 3600, off)
}

func TestExtraNeverOverridesKnownField(t *testing.T) {
	d := Detection{V: Version, PassageID: "p1", Extra: Extra{"passage_id": json.RawMessage(`"evil"`), "new": json.RawMessage(`1`)}}
	out, err := json.Marshal(d)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(out, &m))
	assert.JSONEq(t, `"p1"`, string(m["passage_id"]))
	assert.JSONEq(t, `1`, string(m["new"]))
	assert.True(t, json.Valid(out))
}

func TestEveryMessageRoundTrips(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	cases := []struct {
		name string
		v    any
		back func([]byte) (any, error)
	}{
		{"detection", Detection{V: 1, PassageID: "p", Camera: "c", CapturedAt: at, DetectedAt: at, Flagged: true,
			Vehicles: []Vehicle{{Class: "car", Score: .9, Box: Box{1, 2, 3, 4}, Phone: Finding{State: PhoneHeld, Score: .8},
				Seatbelt: Finding{State: StateUnknown}, Plate: &Plate{Text: "1ABC234", Country: "BE", Confidence: .9}}},
			Offences:  []Offence{{Kind: OffencePhone, Score: .8}},
			Evidence:  []Evidence{{Kind: EvidenceOriginal, Bucket: BucketEvidence, Key: "k", SHA256: "00", Size: 3}},
			TimingsMS: map[string]float64{"scene": 12.5}},
			func(b []byte) (any, error) { return Decode[Detection](b) }},
		{"decision", Decision{V: 1, CaseID: "c", Stage: StageFirst, Reviewer: "a", Outcome: OutcomeConfirm, Offences: []string{OffencePhone}, DecidedAt: at},
			func(b []byte) (any, error) { return Decode[Decision](b) }},
		{"fine", FineRecord{V: 1, CaseID: "c", OffenceAt: at, ConfirmedAt: at, Offences: []string{OffenceSeatbelt}, Plate: "X", Country: "BE"},
			func(b []byte) (any, error) { return Decode[FineRecord](b) }},
		{"audit", AuditEvent{V: 1, At: at, Actor: "a", Action: "view", Entity: "evidence", EntityID: "e", Details: map[string]string{"k": "v"}},
			func(b []byte) (any, error) { return Decode[AuditEvent](b) }},
		{"result", FineResult{V: 1, CaseID: "c", Status: FineCreated, Reference: "R1", At: at},
			func(b []byte) (any, error) { return Decode[FineResult](b) }},
		{"dlq", NewDLQEntry("detect", "boom", StreamFrames, "frames.c", 7, 5, []byte(`{"v":1}`), at),
			func(b []byte) (any, error) { return Decode[DLQEntry](b) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			require.NoError(t, err)
			got, err := tc.back(b)
			require.NoError(t, err)
			assert.Equal(t, tc.v, got)
		})
	}
}

func TestDecodeRejectsMissingOrNewerVersion(t *testing.T) {
	_, err := Decode[Frame]([]byte(`{"id":"x"}`))
	assert.ErrorContains(t, err, `missing "v"`)
	_, err = Decode[Frame]([]byte(`{"v":99,"id":"x"}`))
	assert.ErrorContains(t, err, "newer")
	_, err = Decode[Frame]([]byte(`not json`))
	assert.Error(t, err)
}

func TestDLQKeepsNonJSONOriginal(t *testing.T) {
	e := NewDLQEntry("ingest", "bad", "", "s", 0, 0, []byte{0xff, 0x00}, time.Now())
	assert.Nil(t, e.Data)
	assert.Equal(t, []byte{0xff, 0x00}, e.RawData)
}

func TestSubjectsAreSingleTokens(t *testing.T) {
	assert.Equal(t, "frames.cam_1_x", FrameSubject("cam 1.x"))
	assert.Equal(t, "detections._", DetectionSubject(""))
	assert.Equal(t, "audit.case.a_b__", AuditSubject("case", "a.b*>"))
	assert.Equal(t, "dlq.detect", DLQSubject("detect"))
	assert.Equal(t, "fines.result.c-1", FineResultSubject("c-1"))
	assert.Equal(t, "frames/a b.jpg/e", FrameID("frames", "a b.jpg", "e"))
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"a","extra":[1]}`))
	f.Add([]byte(`{"v":1,"captured_at":"bad"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := Decode[Frame](data)
		if err != nil {
			return
		}
		out, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
	})
}
