// Package web holds the review UI's templates and static assets, embedded in the binary so
// that the UI needs no build step and no files beside the executable.
package web

import "embed"

// FS holds templates/*.html and static/*.
//
//go:embed templates/*.html static/*
var FS embed.FS
