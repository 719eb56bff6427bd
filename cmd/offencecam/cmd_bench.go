package main

import (
	"context"
	"errors"
)

// cmdBench is a placeholder until its issue lands.
func cmdBench(ctx context.Context, args []string) error {
	return errors.New("bench: not built yet")
}
