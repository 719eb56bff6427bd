package main

import (
	"context"
	"errors"
)

// cmdIngest is a placeholder until its issue lands.
func cmdIngest(ctx context.Context, args []string) error {
	return errors.New("ingest: not built yet")
}
