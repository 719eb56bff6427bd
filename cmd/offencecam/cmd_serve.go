package main

import (
	"context"
	"errors"
)

// cmdServe is a placeholder until its issue lands.
func cmdServe(ctx context.Context, args []string) error {
	return errors.New("serve: not built yet")
}
