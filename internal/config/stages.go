package config

// Stages holds the sections of the stage packages (ingest, detector, review, platform).
type Stages struct{}

func defaultStages() Stages { return Stages{} }

func (s Stages) validate() error { return nil }

// resolveStagePaths makes stage paths that default to the data directory concrete.
func (c *Config) resolveStagePaths() {}
