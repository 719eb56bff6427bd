package config

import (
	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/worker"
	"github.com/crossborder/offencecam/ingest"
	"github.com/crossborder/offencecam/platform"
	"github.com/crossborder/offencecam/review"
)

// Stages holds each stage package's own section. The packages own their defaults and their
// validation; this package only composes them into the one file.
type Stages struct {
	Ingest   ingest.Config   `yaml:"ingest"`
	Detect   worker.Config   `yaml:"detect"`
	Detector detector.Config `yaml:"detector"`
	Review   review.Config   `yaml:"review"`
	Platform platform.Config `yaml:"platform"`
}

func defaultStages() Stages {
	return Stages{
		Ingest:   ingest.DefaultConfig(),
		Detect:   worker.DefaultConfig(),
		Detector: detector.DefaultConfig(),
		Review:   review.DefaultConfig(),
		Platform: platform.DefaultConfig(),
	}
}

func (s Stages) validate() error {
	for _, v := range []interface{ Validate() error }{s.Ingest, s.Detect, s.Detector, s.Review, s.Platform} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// resolveStagePaths makes stage paths that default to the data directory concrete.
func (c *Config) resolveStagePaths() {}
