package objstore_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/internal/objstore/objstoretest"
)

// BenchmarkPutGet2MB: one Put (known size) and one full Get of a 2 MB frame-sized object.
// Local includes its fsyncs; S3 is a real versitygw on loopback.
func BenchmarkPutGet2MB(b *testing.B) {
	body := make([]byte, 2<<20)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(body)
	stores := map[string]func(b *testing.B) objstore.Store{
		"Local": func(b *testing.B) objstore.Store {
			s, err := objstore.NewLocal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"S3": func(b *testing.B) objstore.Store { return objstoretest.NewS3Store(b, objstoretest.VersityOptions{}) },
	}
	for _, name := range []string{"Local", "S3"} {
		b.Run(name, func(b *testing.B) {
			s := stores[name](b)
			ctx := context.Background()
			if err := s.EnsureBucket(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := s.Put(ctx, "bench", "cam-1/frame.jpg", bytes.NewReader(body), int64(len(body)), objstore.PutOptions{ContentType: "image/jpeg"}); err != nil {
					b.Fatal(err)
				}
				rc, _, err := s.Get(ctx, "bench", "cam-1/frame.jpg")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil || n != int64(len(body)) {
					b.Fatal(n, err)
				}
			}
		})
	}
}
