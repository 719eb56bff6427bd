package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	_, ok := c.Cameras[LocalCamera]
	assert.True(t, ok, "the one-box default registers the drop folder's camera")
	assert.Equal(t, LocalCamera, c.Inbox.DefaultCamera)
}

func TestConfigValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"driver side", func(c *Config) { c.Cameras["cam1"] = Camera{DriverSide: "middle"} }, "ingest.cameras.cam1.driver_side: must be left or right"},
		{"view", func(c *Config) { c.Cameras["cam1"] = Camera{DefaultView: "side"} }, "ingest.cameras.cam1.default_view"},
		{"zone", func(c *Config) { c.Cameras["cam1"] = Camera{TimeZone: "Mars/Olympus"} }, "ingest.cameras.cam1.time_zone"},
		{"country", func(c *Config) { c.Cameras["cam1"] = Camera{Country: "bel"} }, "ingest.cameras.cam1.country"},
		{"workers", func(c *Config) { c.Workers = 0 }, "ingest.workers"},
		{"template", func(c *Config) { c.KeyTemplates = []string{"{camera}/{nope}.jpg"} }, "ingest.key_templates[0]: "},
		{"template brace", func(c *Config) { c.KeyTemplates = []string{"{camera/x.jpg"} }, "unmatched '{'"},
		{"sidecar", func(c *Config) { c.SidecarExt = "json" }, "ingest.sidecar_ext"},
		{"same bucket", func(c *Config) { c.QuarantineBucket = c.Bucket }, "ingest.quarantine_bucket"},
		{"inbox camera", func(c *Config) { delete(c.Cameras, LocalCamera) }, "ingest.inbox.default_camera"},
		{"retry", func(c *Config) { c.RetryMax = time.Millisecond }, "ingest.retry_max"},
		{"pixels", func(c *Config) { c.Limits.MaxPixels = 0 }, "ingest.limits.max_pixels"},
		{"list page", func(c *Config) { c.ListPageSize = 5000 }, "ingest.list_page_size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Cameras = testCameras()
			tc.mod(&c)
			err := c.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			_, err = New(Deps{}, c)
			assert.ErrorContains(t, err, tc.want, "New refuses an invalid config")
		})
	}
}

// versitygwEvent is an event exactly as versitygw v1.8 publishes it (key raw).
const versitygwEvent = `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-27T12:55:43Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"PrincipalId":"K"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"","x-amz-id-2":""},"s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global","bucket":{"name":"frames","ownerIdentity":{"PrincipalId":"K"},"arn":"arn:aws:s3:::/frames/cam 1/x é+y%20z.jpg"},"object":{"key":"cam 1/x é+y%20z.jpg","size":5,"eTag":"\"5d41402abc4b2a76b9719d911017c592\"","versionId":null,"sequencer":"1"}}}]}`

// minioEvent is the AWS/MinIO shape: the key URL-encoded, a space as '+'.
const minioEvent = `{"EventName":"s3:ObjectCreated:CompleteMultipartUpload","Key":"frames/cam+1/x+%C3%A9%2By%2520z.jpg","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"frames"},"object":{"key":"cam+1%2Fx+%C3%A9%2By%2520z.jpg","size":5,"eTag":"5d41402abc4b2a76b9719d911017c592"}}},{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"frames"},"object":{"key":"gone.jpg"}}},{"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"frames"},"object":{"key":"plain.jpg","eTag":"\"e\""}}}]}`

func TestParseEventFromVersitygwAndMinIO(t *testing.T) {
	const want = "cam 1/x é+y%20z.jpg"
	refs, err := ParseEvent([]byte(versitygwEvent))
	require.NoError(t, err)
	require.Len(t, refs, 1)
	assert.Equal(t, "frames", refs[0].Bucket)
	assert.Equal(t, "5d41402abc4b2a76b9719d911017c592", refs[0].ETag)
	assert.Contains(t, refs[0].Keys, want, "versitygw's raw key is one of the candidates")
	assert.Equal(t, want, refs[0].Keys[len(refs[0].Keys)-1], "raw form is tried last")

	refs, err = ParseEvent([]byte(minioEvent))
	require.NoError(t, err)
	require.Len(t, refs, 2, "created objects only; the removal is ignored")
	assert.Equal(t, want, refs[0].Keys[0], "MinIO's encoded key decodes to the real key first")
	assert.Equal(t, []string{"plain.jpg"}, refs[1].Keys)
	assert.Equal(t, "e", refs[1].ETag)
}

func TestParseEventIgnoresTestEventAndRejectsGarbage(t *testing.T) {
	refs, err := ParseEvent([]byte(`{"Bucket":"Test-Bucket","Event":"s3:TestEvent","Service":"S3","Time":"2026-11-27T12:55:42Z"}`))
	require.NoError(t, err)
	assert.Empty(t, refs)
	_, err = ParseEvent([]byte(`not json`))
	assert.ErrorIs(t, err, ErrBadEvent)
	_, err = ParseEvent([]byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":""},"object":{"key":"k"}}}]}`))
	assert.ErrorIs(t, err, ErrBadEvent)
}

func TestKeyCandidates(t *testing.T) {
	assert.Equal(t, []string{"a b.jpg", "a+b.jpg"}, KeyCandidates("a+b.jpg"))
	assert.Equal(t, []string{"plain/key.jpg"}, KeyCandidates("plain/key.jpg"))
	assert.Equal(t, []string{"100%.jpg"}, KeyCandidates("100%.jpg"), "an invalid escape is only the raw key")
	assert.Equal(t, []string{"é.jpg", "%C3%A9.jpg"}, KeyCandidates("%C3%A9.jpg"))
}

func TestKeyTemplate(t *testing.T) {
	kt, err := compileTemplate("{camera}/{yyyy}/{mm}/{dd}/{passage}/{view}.{ext}")
	require.NoError(t, err)
	m, ok := kt.match("cam1/2026/11/27/p 42/front.jpg")
	require.True(t, ok)
	assert.Equal(t, map[string]string{"camera": "cam1", "yyyy": "2026", "mm": "11", "dd": "27", "passage": "p 42", "view": "front", "ext": "jpg"}, m)
	_, ok = kt.match("cam1/2026/11/27/front.jpg")
	assert.False(t, ok, "a segment short")
	_, ok = kt.match("cam1/26/11/27/p/front.jpg")
	assert.False(t, ok, "year must be 4 digits")

	f := fromKey([]*keyTemplate{kt, mustTemplate(t, "{camera}/{ts}_{passage}_{view}.{ext}")}, "cam3/20261127T081530.250_p7_rear.png")
	assert.Equal(t, fields{Camera: "cam3", CapturedAt: "20261127T081530.250", Passage: "p7", View: "rear"}, f)
	f = fromKey([]*keyTemplate{mustTemplate(t, "{camera}/{yyyy}-{mm}-{dd}/{hh}{mi}{ss}-{any}.jpg")}, "c/2026-11-27/081530-xyz.jpg")
	assert.Equal(t, "2026-11-27T08:15:30", f.CapturedAt)
	f = fromKey([]*keyTemplate{kt}, "cam1/2026/11/27/p/front.jpg")
	assert.Empty(t, f.CapturedAt, "a date alone is not a capture time")

	for _, bad := range []string{"", "{camera", "camera}", "{camera}/{camera}", "{x}", "}{"} {
		_, err := compileTemplate(bad)
		assert.Error(t, err, bad)
	}
}

func mustTemplate(t *testing.T, s string) *keyTemplate {
	t.Helper()
	kt, err := compileTemplate(s)
	require.NoError(t, err)
	return kt
}

func TestMetadataPrecedenceUserThenSidecarThenKey(t *testing.T) {
	user := fromUserMetadata(map[string]string{"camera": "cam1", "captured_at": "2026-11-27T08:00:00+01:00", "Lane": "2"})
	side, err := ParseSidecar([]byte(`{"camera_id":"cam2","captured_at":"2026-11-27T09:00:00Z","lane":3,"site":"s","passage_id":"p9","view":"rear","unknown":[1]}`))
	require.NoError(t, err)
	key := fields{Camera: "cam3", View: "front", Passage: "pk", Direction: "north", CapturedAt: "2026-11-27T10:00:00"}
	m := mergeFields(user, side, key)
	assert.Equal(t, "cam1", m.Camera)
	assert.Equal(t, "2026-11-27T08:00:00+01:00", m.CapturedAt)
	assert.Equal(t, FromMetadata, m.CapturedFrom)
	assert.Equal(t, "2", m.Lane)
	assert.Equal(t, "s", m.Site)
	assert.Equal(t, "p9", m.Passage)
	assert.Equal(t, "rear", m.View)
	assert.Equal(t, "north", m.Direction)

	m = mergeFields(fields{}, fields{}, key)
	assert.Equal(t, FromKey, m.CapturedFrom)
	m = mergeFields(fields{}, side, key)
	assert.Equal(t, FromSidecar, m.CapturedFrom)

	_, err = ParseSidecar([]byte(`{"lane":{"x":1}}`))
	assert.Error(t, err)
	assert.Equal(t, "x.json", sidecarKey("x.jpg", ".json"))
	assert.Equal(t, "a.b/x.json", sidecarKey("a.b/x", ".json"))
}

func TestParseCaptureTimeKeepsZone(t *testing.T) {
	bxl, err := time.LoadLocation("Europe/Brussels")
	require.NoError(t, err)
	cases := map[string]string{
		"2026-11-27T08:15:30+01:00":     "2026-11-27T08:15:30+01:00",
		"2026-11-27T08:15:30.5Z":        "2026-11-27T08:15:30.5Z",
		"2026-11-27T08:15:30":           "2026-11-27T08:15:30+01:00",
		"2026-07-01 08:15:30":           "2026-07-01T08:15:30+02:00",
		"20261127T081530.250":           "2026-11-27T08:15:30.25+01:00",
		"20261127081530":                "2026-11-27T08:15:30+01:00",
		"1795763730":                    time.Unix(1795763730, 0).In(bxl).Format(time.RFC3339Nano),
		"1795763730123":                 time.UnixMilli(1795763730123).In(bxl).Format(time.RFC3339Nano),
		" 2026-11-27T08:15:30+01:00 \n": "2026-11-27T08:15:30+01:00",
	}
	for in, want := range cases {
		got, err := ParseCaptureTime(in, bxl)
		require.NoError(t, err, in)
		assert.Equal(t, want, got.Format(time.RFC3339Nano), in)
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01T00:00:00", "123"} {
		_, err := ParseCaptureTime(bad, bxl)
		assert.Error(t, err, bad)
	}
}

func TestValidateImage(t *testing.T) {
	lim := DefaultConfig().Limits
	good := testJPEG(t)
	goodPNG := encodePNG(40, 30)
	cases := []struct {
		name   string
		data   []byte
		lim    func(*Limits)
		reason string
		format string
		w, h   int
	}{
		{name: "jpeg", data: good, format: "jpeg", w: 64, h: 48},
		{name: "png", data: goodPNG, format: "png", w: 40, h: 30},
		{name: "jpeg padded after EOI", data: append(append([]byte(nil), good...), 0, 0, 0), format: "jpeg", w: 64, h: 48},
		{name: "empty", data: nil, reason: ReasonEmpty},
		{name: "text", data: []byte("hello, this is not an image at all"), reason: ReasonNotImage},
		{name: "gif", data: []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), reason: ReasonNotImage},
		{name: "jpeg bad SOF", data: jpegPatched(t, 9, 2), reason: ReasonCorrupt},
		{name: "jpeg magic then huge segment", data: append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{0x42}, 200)...), reason: ReasonTruncated},
		{name: "jpeg header cut", data: good[:20], reason: ReasonTruncated},
		{name: "jpeg body cut", data: good[:len(good)/2], reason: ReasonTruncated},
		{name: "png body cut", data: goodPNG[:len(goodPNG)-6], reason: ReasonTruncated},
		{name: "png bad header crc", data: func() []byte { b := append([]byte(nil), goodPNG...); b[20] ^= 0xFF; return b }(), reason: ReasonCorrupt},
		{name: "png huge", data: pngHeaderOnly(100000, 100000), reason: ReasonDimensions},
		{name: "png too many pixels", data: pngHeaderOnly(10000, 10000), reason: ReasonDimensions},
		{name: "jpeg huge", data: jpegWithSize(t, 60000, 60000), reason: ReasonDimensions},
		{name: "jpeg tiny", data: encodeJPEG(8, 8), reason: ReasonDimensions},
		{name: "too many bytes", data: good, lim: func(l *Limits) { l.MaxBytes = 100 }, reason: ReasonTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != nil {
				tc.lim(&l)
			}
			for _, size := range []int64{int64(len(tc.data)), -1} {
				info, err := ValidateImage(bytes.NewReader(tc.data), size, l)
				if tc.reason == "" {
					require.NoError(t, err)
					assert.Equal(t, tc.format, info.Format)
					assert.Equal(t, tc.w, info.Width)
					assert.Equal(t, tc.h, info.Height)
					assert.Equal(t, int64(len(tc.data)), info.Size)
					continue
				}
				rej, ok := AsRejection(err)
				require.True(t, ok, "want a rejection, got %v", err)
				assert.Equal(t, tc.reason, rej.Reason, rej.Detail)
			}
		})
	}
}

type failingReader struct {
	data []byte
	n    int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= len(f.data) {
		return 0, errors.New("connection reset")
	}
	n := copy(p, f.data[f.n:])
	f.n += n
	return n, nil
}

func TestValidateImageReadFailureIsNotARejection(t *testing.T) {
	good := testJPEG(t)
	for _, cut := range []int{4, 30, len(good) - 10} {
		_, err := ValidateImage(&failingReader{data: good[:cut]}, int64(len(good)), DefaultConfig().Limits)
		require.Error(t, err)
		_, isRej := AsRejection(err)
		assert.False(t, isRej, "a broken read at %d must be retried, not quarantined: %v", cut, err)
		assert.ErrorContains(t, err, "connection reset")
	}
	_ = io.EOF
}

func TestPassagesLinkViews(t *testing.T) {
	mem := newMemGroups()
	p := newPassages(2*time.Second, mem)
	ctx := context.Background()
	assign := func(camera, site, passage, view string, at time.Time, frameID string) string {
		t.Helper()
		id, err := p.assign(ctx, camera, site, passage, view, at, frameID)
		require.NoError(t, err)
		return id
	}
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	n := 0
	fid := func() string { n++; return fmt.Sprintf("frames/cam/%d.jpg/etag%d", n, n) }
	front := assign("cam1", "s1", "", pipeline.ViewFront, t0, fid())
	rear := assign("cam1", "s1", "", pipeline.ViewRear, t0.Add(800*time.Millisecond), fid())
	over := assign("cam1", "s1", "", pipeline.ViewOverhead, t0.Add(-500*time.Millisecond), fid())
	assert.Equal(t, front, rear, "views of one pass within the window share a passage")
	assert.Equal(t, front, over, "an earlier view processed late still joins")
	next := assign("cam1", "s1", "", pipeline.ViewFront, t0.Add(time.Second), fid())
	assert.NotEqual(t, front, next, "a second front view is the next vehicle")
	later := assign("cam1", "s1", "", pipeline.ViewRear, t0.Add(10*time.Second), fid())
	assert.NotEqual(t, front, later)
	other := assign("cam2", "s1", "", pipeline.ViewRear, t0, fid())
	assert.NotEqual(t, front, other, "another camera without passage ids is another pass")

	a := assign("cam1", "s1", "P 7", pipeline.ViewFront, t0, fid())
	b := assign("cam2", "s1", "P 7", pipeline.ViewRear, t0.Add(time.Hour), fid())
	c := assign("cam3", "s2", "P 7", pipeline.ViewRear, t0, fid())
	assert.Equal(t, a, b, "an explicit passage id links views across cameras of a site")
	assert.NotEqual(t, a, c, "passage ids are scoped by site")
	assert.False(t, strings.ContainsAny(a, " .*>"), "passage ids are safe as subject tokens: %q", a)

	for i := range 500 {
		assign("cam9", "", "", pipeline.ViewFront, t0.Add(time.Duration(i)*time.Minute), fid())
	}
	assert.LessOrEqual(t, len(mem.byCam["cam9"]), maxGroupsPerCamera)

	// Two passes of one camera with the same capture stamp (a second-resolution clock) and
	// the same view are two passages, never one id: DETECTIONS keeps one Detection per id.
	x := assign("cam5", "", "", pipeline.ViewFront, t0, fid())
	y := assign("cam5", "", "", pipeline.ViewFront, t0, fid())
	assert.NotEqual(t, x, y)
	// A frame placed again (processed twice after a crash) gets its passage again.
	again := "frames/cam/again.jpg/etag"
	first := assign("cam6", "", "", pipeline.ViewFront, t0, again)
	assign("cam6", "", "", pipeline.ViewFront, t0.Add(time.Second), fid())
	assert.Equal(t, first, assign("cam6", "", "", pipeline.ViewFront, t0, again))
}

func TestBackoffIsCappedWithJitter(t *testing.T) {
	b := backoff{initial: 10 * time.Millisecond, max: 80 * time.Millisecond}
	var prevMax time.Duration
	for i := range 50 {
		d := b.next()
		assert.Positive(t, d)
		assert.LessOrEqual(t, d, 80*time.Millisecond, "attempt %d", i)
		prevMax = max(prevMax, d)
	}
	assert.Greater(t, prevMax, 40*time.Millisecond, "grows towards the cap")
}
