package ort

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crossborder/offencecam/models"
)

// Pool holds N sessions of one model so N goroutines can run it at once; each session is
// used by one goroutine at a time between Acquire and Release.
type Pool struct {
	all  []*Session
	free chan *Session
}

// NewPool creates n sessions of the model with the same options.
func NewPool(n int, m *models.Manifest, modelPath string, opts Options, so ...SessionOption) (*Pool, error) {
	if n < 1 {
		return nil, fmt.Errorf("ort: pool: size must be >= 1, got %d", n)
	}
	p := &Pool{free: make(chan *Session, n)}
	for i := 0; i < n; i++ {
		s, err := NewSession(m, modelPath, opts, so...)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.all = append(p.all, s)
		p.free <- s
	}
	return p, nil
}

// Size is the number of sessions.
func (p *Pool) Size() int { return len(p.all) }

// Acquire waits for a free session; Release must give it back.
func (p *Pool) Acquire(ctx context.Context) (*Session, error) {
	select {
	case s := <-p.free:
		return s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ort: pool: acquire: %w", ctx.Err())
	}
}

// Release returns a session taken with Acquire.
func (p *Pool) Release(s *Session) { p.free <- s }

// RunStats sums RunStats over the pool's sessions.
func (p *Pool) RunStats() (count int64, total time.Duration) {
	for _, s := range p.all {
		c, t := s.RunStats()
		count += c
		total += t
	}
	return count, total
}

// ResetRunStats zeroes every session's counters.
func (p *Pool) ResetRunStats() {
	for _, s := range p.all {
		s.ResetRunStats()
	}
}

// Close closes every session; call it only when no session is acquired.
func (p *Pool) Close() error {
	var errs []error
	for _, s := range p.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
