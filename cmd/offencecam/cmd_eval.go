package main

import (
	"context"
	"errors"
)

// cmdEval is a placeholder until its issue lands.
func cmdEval(ctx context.Context, args []string) error {
	return errors.New("eval: not built yet")
}
