package ingest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/crossborder/offencecam/pipeline"
)

// Camera is one entry of the camera registry. A frame whose camera is not registered is
// quarantined: a fine needs a known place, road and speed limit, never a guess.
type Camera struct {
	Site         string  `yaml:"site"`
	Road         string  `yaml:"road"`
	KmPoint      float64 `yaml:"km_point"`
	Direction    string  `yaml:"direction"`
	Municipality string  `yaml:"municipality"`
	Country      string  `yaml:"country"` // ISO 3166-1 alpha-2
	Lat          float64 `yaml:"lat"`
	Lon          float64 `yaml:"lon"`
	// DriverSide is "left" (default, left-hand-drive traffic) or "right".
	DriverSide    string `yaml:"driver_side"`
	SpeedLimitKMH int    `yaml:"speed_limit_kmh"`
	// DefaultView is the view of frames that say none (front, overhead, rear).
	DefaultView string `yaml:"default_view"`
	// TimeZone (IANA name) interprets capture times without a zone (key template fields,
	// sidecar times without offset). Default Europe/Brussels.
	TimeZone string `yaml:"time_zone"`
}

// Limits bound what validation accepts.
type Limits struct {
	MaxBytes  int64 `yaml:"max_bytes"`
	MaxWidth  int   `yaml:"max_width"`
	MaxHeight int   `yaml:"max_height"`
	MaxPixels int64 `yaml:"max_pixels"`
	MinWidth  int   `yaml:"min_width"`
	MinHeight int   `yaml:"min_height"`
}

// Inbox is the local drop folder of the one-box default.
type Inbox struct {
	Enabled bool `yaml:"enabled"`
	// Dir is the folder watched; relative paths are under the data directory. Default "inbox".
	Dir string `yaml:"dir"`
	// PollInterval is how often the folder is scanned.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Settle is how long a file's size and modification time must stay unchanged (seen
	// unchanged by two scans at least Settle apart) before it is taken as completely written.
	Settle time.Duration `yaml:"settle"`
	// DefaultCamera is the camera of files dropped directly into the inbox folder.
	DefaultCamera string `yaml:"default_camera"`
}

// Config is the ingest stage's configuration (YAML section `ingest`).
type Config struct {
	// Bucket is the bucket cameras upload to.
	Bucket string `yaml:"bucket"`
	// QuarantineBucket receives rejected input with the reason in its metadata.
	QuarantineBucket string `yaml:"quarantine_bucket"`
	// EventSubject is the NATS subject S3 event notifications arrive on (MinIO's NATS target
	// subject, versitygw's --event-nats-topic). Empty disables the event source.
	EventSubject string `yaml:"event_subject"`
	// EventQueue is the queue group, so several ingest processes share the events.
	EventQueue string `yaml:"event_queue"`
	// ListInterval is the period of the reconciliation listing; 0 disables it.
	ListInterval time.Duration `yaml:"list_interval"`
	// ListPageSize is the page size of the listing.
	ListPageSize int `yaml:"list_page_size"`
	// KeyTemplates are tried in order against the object key; the first that matches gives
	// the metadata that neither user metadata nor the sidecar gave. Fields: {camera} {site}
	// {lane} {direction} {view} {passage} {yyyy} {mm} {dd} {hh} {mi} {ss} {ts} {ext} {any}.
	KeyTemplates []string `yaml:"key_templates"`
	// SidecarExt is the extension of the sidecar JSON object next to an image (x.jpg →
	// x.json); empty disables sidecars. Objects with this extension are never frames. It is
	// not looked for when the user metadata already gives the camera and the capture time.
	SidecarExt string `yaml:"sidecar_ext"`
	// MetadataGrace is how long an object whose camera or capture time is still unknown is
	// left for a sidecar to arrive before it is quarantined (the listing retries it).
	MetadataGrace time.Duration `yaml:"metadata_grace"`
	// PassageWindow links frames of one camera captured this close together (and without a
	// passage id) into one passage.
	PassageWindow time.Duration `yaml:"passage_window"`
	// Workers is the number of objects processed at once; it bounds in-flight publishes.
	Workers int `yaml:"workers"`
	// RetryInitial and RetryMax bound the exponential backoff (with full jitter) used for
	// S3, NATS and a full FRAMES stream.
	RetryInitial time.Duration `yaml:"retry_initial"`
	RetryMax     time.Duration `yaml:"retry_max"`
	// DefaultTimeZone is used for cameras without time_zone.
	DefaultTimeZone string            `yaml:"default_time_zone"`
	Limits          Limits            `yaml:"limits"`
	Inbox           Inbox             `yaml:"inbox"`
	Cameras         map[string]Camera `yaml:"cameras"`
}

// LocalCamera is the camera of the one-box drop folder.
const LocalCamera = "local"

// DefaultConfig is the one-box default: events on offencecam.s3.events, a listing every
// minute, the drop folder on, and the `local` camera registered.
func DefaultConfig() Config {
	return Config{
		Bucket:           pipeline.BucketFrames,
		QuarantineBucket: pipeline.BucketQuarantine,
		EventSubject:     "offencecam.s3.events",
		EventQueue:       "offencecam-ingest",
		ListInterval:     time.Minute,
		ListPageSize:     1000,
		KeyTemplates: []string{
			"{camera}/{yyyy}/{mm}/{dd}/{passage}/{view}.{ext}",
		},
		SidecarExt:      ".json",
		MetadataGrace:   2 * time.Minute,
		PassageWindow:   2 * time.Second,
		Workers:         8,
		RetryInitial:    100 * time.Millisecond,
		RetryMax:        10 * time.Second,
		DefaultTimeZone: "Europe/Brussels",
		Limits: Limits{
			MaxBytes:  32 << 20,
			MaxWidth:  16384,
			MaxHeight: 16384,
			MaxPixels: 50_000_000,
			MinWidth:  16,
			MinHeight: 16,
		},
		Inbox: Inbox{
			Enabled:       true,
			Dir:           "inbox",
			PollInterval:  500 * time.Millisecond,
			Settle:        time.Second,
			DefaultCamera: LocalCamera,
		},
		Cameras: map[string]Camera{
			LocalCamera: {Site: "local", Country: "BE", DriverSide: "left", DefaultView: pipeline.ViewFront},
		},
	}
}

var validViews = map[string]bool{pipeline.ViewFront: true, pipeline.ViewOverhead: true, pipeline.ViewRear: true}

// Validate names the first bad field with its full YAML path.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ingest.%s: "+format, append([]any{field}, args...)...))
	}
	if c.Bucket == "" {
		bad("bucket", "must not be empty")
	}
	if c.QuarantineBucket == "" {
		bad("quarantine_bucket", "must not be empty")
	} else if c.QuarantineBucket == c.Bucket {
		bad("quarantine_bucket", "must differ from ingest.bucket")
	}
	if c.EventSubject != "" && strings.ContainsAny(c.EventSubject, " \t\r\n") {
		bad("event_subject", "%q is not a NATS subject", c.EventSubject)
	}
	if c.ListInterval < 0 {
		bad("list_interval", "must be >= 0 (0 disables the listing)")
	}
	if c.ListPageSize < 1 || c.ListPageSize > 1000 {
		bad("list_page_size", "must be in 1..1000")
	}
	for i, t := range c.KeyTemplates {
		if _, err := compileTemplate(t); err != nil {
			bad(fmt.Sprintf("key_templates[%d]", i), "%v", err)
		}
	}
	if c.SidecarExt != "" && !strings.HasPrefix(c.SidecarExt, ".") {
		bad("sidecar_ext", "must start with '.' (or be empty to disable sidecars)")
	}
	if c.MetadataGrace < 0 {
		bad("metadata_grace", "must be >= 0")
	}
	if c.PassageWindow < 0 {
		bad("passage_window", "must be >= 0")
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("workers", "must be in 1..1024")
	}
	if c.RetryInitial <= 0 {
		bad("retry_initial", "must be > 0")
	}
	if c.RetryMax < c.RetryInitial {
		bad("retry_max", "must be >= ingest.retry_initial")
	}
	if _, err := time.LoadLocation(c.DefaultTimeZone); err != nil || c.DefaultTimeZone == "" {
		bad("default_time_zone", "%q is not an IANA time zone", c.DefaultTimeZone)
	}
	l := c.Limits
	if l.MaxBytes <= 0 {
		bad("limits.max_bytes", "must be > 0")
	}
	if l.MaxWidth <= 0 {
		bad("limits.max_width", "must be > 0")
	}
	if l.MaxHeight <= 0 {
		bad("limits.max_height", "must be > 0")
	}
	if l.MaxPixels <= 0 {
		bad("limits.max_pixels", "must be > 0")
	}
	if l.MinWidth < 1 || l.MinWidth > l.MaxWidth {
		bad("limits.min_width", "must be in 1..limits.max_width")
	}
	if l.MinHeight < 1 || l.MinHeight > l.MaxHeight {
		bad("limits.min_height", "must be in 1..limits.max_height")
	}
	if c.Inbox.Enabled {
		if c.Inbox.Dir == "" {
			bad("inbox.dir", "must not be empty when the inbox is enabled")
		}
		if c.Inbox.PollInterval <= 0 {
			bad("inbox.poll_interval", "must be > 0")
		}
		if c.Inbox.Settle < 0 {
			bad("inbox.settle", "must be >= 0")
		}
		if c.Inbox.DefaultCamera == "" {
			bad("inbox.default_camera", "must not be empty")
		} else if _, ok := c.Cameras[c.Inbox.DefaultCamera]; !ok {
			bad("inbox.default_camera", "%q is not in ingest.cameras", c.Inbox.DefaultCamera)
		}
	}
	ids := make([]string, 0, len(c.Cameras))
	for id := range c.Cameras {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cam := c.Cameras[id]
		p := "cameras." + id
		if id == "" || strings.ContainsAny(id, "/\\") {
			bad(p, "camera id must be non-empty without '/' or '\\'")
		}
		switch cam.DriverSide {
		case "", "left", "right":
		default:
			bad(p+".driver_side", "must be left or right, not %q", cam.DriverSide)
		}
		if cam.DefaultView != "" && !validViews[cam.DefaultView] {
			bad(p+".default_view", "must be front, overhead or rear, not %q", cam.DefaultView)
		}
		if cam.SpeedLimitKMH < 0 || cam.SpeedLimitKMH > 300 {
			bad(p+".speed_limit_kmh", "must be in 0..300")
		}
		if cam.Lat < -90 || cam.Lat > 90 {
			bad(p+".lat", "must be in -90..90")
		}
		if cam.Lon < -180 || cam.Lon > 180 {
			bad(p+".lon", "must be in -180..180")
		}
		if cam.Country != "" && (len(cam.Country) != 2 || strings.ToUpper(cam.Country) != cam.Country) {
			bad(p+".country", "must be an ISO 3166-1 alpha-2 code in upper case, not %q", cam.Country)
		}
		if cam.TimeZone != "" {
			if _, err := time.LoadLocation(cam.TimeZone); err != nil {
				bad(p+".time_zone", "%q is not an IANA time zone", cam.TimeZone)
			}
		}
	}
	return errors.Join(errs...)
}
