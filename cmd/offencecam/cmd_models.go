package main

import (
	"context"
	"errors"
)

// cmdModels is a placeholder until its issue lands.
func cmdModels(ctx context.Context, args []string) error {
	return errors.New("models: not built yet")
}
