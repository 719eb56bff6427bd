package main

import (
	"context"
	"errors"
)

// cmdReview is a placeholder until its issue lands.
func cmdReview(ctx context.Context, args []string) error {
	return errors.New("review: not built yet")
}
