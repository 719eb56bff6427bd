package main

import (
	"context"
	"errors"
)

// cmdPlatform is a placeholder until its issue lands.
func cmdPlatform(ctx context.Context, args []string) error {
	return errors.New("platform: not built yet")
}
