package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/crossborder/offencecam/models"
)

// checkModels reports whether every default model file is in the cache with its manifest's
// size. It is the cheap readiness check; `models verify` re-hashes.
func checkModels(cacheDir string) error {
	cat, err := models.Builtin()
	if err != nil {
		return err
	}
	for _, name := range cat.Names() {
		m := cat[name]
		if m.Optional {
			continue
		}
		for _, f := range m.Files {
			st, err := os.Stat(filepath.Join(cacheDir, f.Name))
			if err != nil {
				return fmt.Errorf("model %s: %s not in cache %s (run `offencecam models fetch`)", name, f.Name, cacheDir)
			}
			if f.Size > 0 && st.Size() != f.Size {
				return fmt.Errorf("model %s: %s has %d bytes, manifest says %d (run `offencecam models fetch`)", name, f.Name, st.Size(), f.Size)
			}
		}
	}
	return nil
}
