package ingest

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// metaFileTime is the user-metadata key under which the inbox stores a dropped file's mtime.
const metaFileTime = "file-time"

// fields is frame metadata as text, from one source.
type fields struct {
	Camera     string
	CapturedAt string
	Site       string
	Lane       string
	Direction  string
	View       string
	Passage    string
	// FileTime is a dropped file's modification time, set by the inbox: the best capture
	// time a frame without metadata has (its upload happens a settle period later).
	FileTime string
}

// Capture-time provenance, kept in the Frame as "captured_at_source" (an extra field) so a
// reviewer can tell a camera clock from an upload time.
const (
	FromMetadata = "metadata"
	FromSidecar  = "sidecar"
	FromKey      = "key"
	FromFile     = "file_time"
	FromUpload   = "upload_time"
)

// merged is the metadata of one frame with, for the capture time, where it came from.
type merged struct {
	fields
	CapturedFrom string
}

// mergeFields takes each field from the first source that has it: user metadata, then the
// sidecar, then the key layout.
func mergeFields(user, sidecar, key fields) merged {
	pick := func(vs ...string) string {
		for _, v := range vs {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
		return ""
	}
	m := merged{fields: fields{
		Camera:    pick(user.Camera, sidecar.Camera, key.Camera),
		Site:      pick(user.Site, sidecar.Site, key.Site),
		Lane:      pick(user.Lane, sidecar.Lane, key.Lane),
		Direction: pick(user.Direction, sidecar.Direction, key.Direction),
		View:      pick(user.View, sidecar.View, key.View),
		Passage:   pick(user.Passage, sidecar.Passage, key.Passage),
	}}
	switch {
	case strings.TrimSpace(user.CapturedAt) != "":
		m.CapturedAt, m.CapturedFrom = strings.TrimSpace(user.CapturedAt), FromMetadata
	case strings.TrimSpace(sidecar.CapturedAt) != "":
		m.CapturedAt, m.CapturedFrom = strings.TrimSpace(sidecar.CapturedAt), FromSidecar
	case key.CapturedAt != "":
		m.CapturedAt, m.CapturedFrom = key.CapturedAt, FromKey
	case strings.TrimSpace(user.FileTime) != "":
		m.CapturedAt, m.CapturedFrom = strings.TrimSpace(user.FileTime), FromFile
	}
	return m
}

// fromUserMetadata reads x-amz-meta-* fields. Cameras and SDKs spell them differently
// (captured_at, Captured-At), so '_' and '-' are equivalent and case is ignored.
func fromUserMetadata(md map[string]string) fields {
	var f fields
	for k, v := range md {
		switch strings.ReplaceAll(strings.ToLower(k), "_", "-") {
		case "camera", "camera-id":
			f.Camera = v
		case "captured-at", "capture-time", "captured":
			f.CapturedAt = v
		case "site":
			f.Site = v
		case "lane":
			f.Lane = v
		case "direction":
			f.Direction = v
		case "view":
			f.View = v
		case "passage", "passage-id":
			f.Passage = v
		case metaFileTime:
			f.FileTime = v
		}
	}
	return f
}

// flexString accepts a JSON string or number (a lane is often written as 2).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*s = flexString(n.String())
	return nil
}

// sidecarDoc is the JSON object a camera may put next to an image (x.jpg → x.json).
type sidecarDoc struct {
	Camera     flexString `json:"camera"`
	CameraID   flexString `json:"camera_id"`
	CapturedAt flexString `json:"captured_at"`
	Site       flexString `json:"site"`
	Lane       flexString `json:"lane"`
	Direction  flexString `json:"direction"`
	View       flexString `json:"view"`
	Passage    flexString `json:"passage"`
	PassageID  flexString `json:"passage_id"`
}

// ParseSidecar reads a sidecar JSON object.
func ParseSidecar(data []byte) (fields, error) {
	var d sidecarDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return fields{}, fmt.Errorf("sidecar: %w", err)
	}
	f := fields{
		Camera: string(d.Camera), CapturedAt: string(d.CapturedAt), Site: string(d.Site),
		Lane: string(d.Lane), Direction: string(d.Direction), View: string(d.View),
		Passage: string(d.Passage),
	}
	if f.Camera == "" {
		f.Camera = string(d.CameraID)
	}
	if f.Passage == "" {
		f.Passage = string(d.PassageID)
	}
	return f, nil
}

// sidecarKey is the key of an image's sidecar: the same key with ext instead of the image's
// extension.
func sidecarKey(key, ext string) string {
	return strings.TrimSuffix(key, path.Ext(key)) + ext
}

// fromKey applies the first matching template. A capture time comes from {ts} or from the
// full set {yyyy}{mm}{dd}{hh}{mi}{ss}; a date alone is not a capture time.
func fromKey(templates []*keyTemplate, key string) fields {
	for _, t := range templates {
		m, ok := t.match(key)
		if !ok {
			continue
		}
		f := fields{Camera: m["camera"], Site: m["site"], Lane: m["lane"],
			Direction: m["direction"], View: m["view"], Passage: m["passage"]}
		if ts := m["ts"]; ts != "" {
			f.CapturedAt = ts
		} else if m["yyyy"] != "" && m["mm"] != "" && m["dd"] != "" && m["hh"] != "" && m["mi"] != "" && m["ss"] != "" {
			f.CapturedAt = m["yyyy"] + "-" + m["mm"] + "-" + m["dd"] + "T" + m["hh"] + ":" + m["mi"] + ":" + m["ss"]
		}
		return f
	}
	return fields{}
}

// zoneless layouts are read in the camera's time zone.
var zonelessLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"20060102T150405.999999999",
	"20060102150405.999999999",
}

// ParseCaptureTime reads a capture time: RFC 3339 keeps its offset; a time without a zone is
// in loc; 10 or 13 digits are Unix seconds or milliseconds (shown in loc).
func ParseCaptureTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range zonelessLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		switch len(s) {
		case 10:
			return time.Unix(n, 0).In(loc), nil
		case 13:
			return time.UnixMilli(n).In(loc), nil
		}
	}
	return time.Time{}, fmt.Errorf("capture time %q: want RFC 3339, a zoneless date-time or Unix seconds/milliseconds", s)
}
