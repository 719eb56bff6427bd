package cases

import (
	"fmt"
	"testing"
	"time"

	"github.com/crossborder/offencecam/pipeline"
)

// BenchmarkNextOverBacklog measures "next case" (index scan, KV read, lease write) with a
// backlog of pending cases, releasing each lease so the backlog stays the same size.
func BenchmarkNextOverBacklog(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprint("pending=", n), func(b *testing.B) {
			e := newEnv(b)
			base := e.clock.Now()
			for i := 0; i < n; i++ {
				if _, err := e.store.CreateFromDetection(e.ctx, detection(fmt.Sprintf("b%05d", i), base.Add(time.Duration(i)*time.Second))); err != nil {
					b.Fatal(err)
				}
			}
			if err := e.store.Index().Sync(e.ctx); err != nil {
				b.Fatal(err)
			}
			r := Actor{Name: "r", Roles: []string{RoleReviewer}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := e.store.Next(e.ctx, r, Filter{})
				if err != nil {
					b.Fatal(err)
				}
				if err := e.store.Release(e.ctx, c.ID, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecide measures a first-stage confirmation: lease, then decide (KV update at the
// revision and the AUDIT publish).
func BenchmarkDecide(b *testing.B) {
	e := newEnv(b)
	base := e.clock.Now()
	for i := 0; i < b.N; i++ {
		if _, err := e.store.CreateFromDetection(e.ctx, detection(fmt.Sprintf("d%07d", i), base)); err != nil {
			b.Fatal(err)
		}
	}
	r := Actor{Name: "r", Roles: []string{RoleReviewer}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("d%07d", i)
		if _, err := e.store.Lease(e.ctx, id, r); err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.Decide(e.ctx, id, r, Input{Outcome: pipeline.OutcomeConfirm}); err != nil {
			b.Fatal(err)
		}
	}
}
