package main

import (
	"context"
	"errors"
)

// cmdAnalyze is a placeholder until its issue lands.
func cmdAnalyze(ctx context.Context, args []string) error {
	return errors.New("analyze: not built yet")
}
