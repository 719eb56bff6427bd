package main

import (
	"context"
	"errors"
)

// cmdDetect is a placeholder until its issue lands.
func cmdDetect(ctx context.Context, args []string) error {
	return errors.New("detect: not built yet")
}
