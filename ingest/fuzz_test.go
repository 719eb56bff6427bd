package ingest

import (
	"bytes"
	"testing"
	"time"
)

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(versitygwEvent))
	f.Add([]byte(minioEvent))
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz+"}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := ParseEvent(data)
		for _, r := range refs {
			if r.Bucket == "" || len(r.Keys) == 0 || r.Keys[0] == "" {
				t.Fatalf("ref without bucket or key: %+v (err %v)", r, err)
			}
		}
	})
}

func FuzzValidateImage(f *testing.F) {
	f.Add(encodeJPEG(16, 16))
	f.Add(encodePNG(16, 16))
	f.Add(pngHeaderOnly(1<<31-1, 3))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11})
	lim := DefaultConfig().Limits
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ValidateImage(bytes.NewReader(data), int64(len(data)), lim)
		if err == nil {
			if info.Width < lim.MinWidth || info.Height < lim.MinHeight || info.Width > lim.MaxWidth ||
				int64(info.Width)*int64(info.Height) > lim.MaxPixels || (info.Format != "jpeg" && info.Format != "png") {
				t.Fatalf("accepted out-of-limit image %+v", info)
			}
			return
		}
		if _, ok := AsRejection(err); !ok {
			t.Fatalf("in-memory input gave a non-rejection error: %v", err)
		}
	})
}

func FuzzSidecarAndTemplate(f *testing.F) {
	f.Add([]byte(`{"camera":"cam1","lane":2,"captured_at":"2026-11-27T08:00:00Z"}`), "cam1/2026/11/27/p/front.jpg", "20261127T081530")
	f.Add([]byte(`[]`), "a/b/c", "1795763730123")
	kts := []*keyTemplate{}
	for _, s := range testConfig("x").KeyTemplates {
		kt, _ := compileTemplate(s)
		kts = append(kts, kt)
	}
	f.Fuzz(func(t *testing.T, sidecar []byte, key, ts string) {
		_, _ = ParseSidecar(sidecar)
		_ = fromKey(kts, key)
		_, _ = ParseCaptureTime(ts, time.UTC)
		_, _ = compileTemplate(key)
	})
}
