// Command offencecam is the one binary of offencecam: every role is a subcommand, `serve`
// runs them all on one box. This package holds no business logic; it parses configuration
// and wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run every role on one box (embedded NATS and local object store by default)", cmdServe},
		{"ingest", "turn uploaded camera frames into FRAMES messages", cmdIngest},
		{"detect", "consume FRAMES, run the models, publish DETECTIONS", cmdDetect},
		{"review", "run the review web UI and case store; `review user …` manages accounts", cmdReview},
		{"platform", "send confirmed cases to the fines platform", cmdPlatform},
		{"models", "fetch, list or verify models: models fetch|list|verify", cmdModels},
		{"analyze", "analyse image files and print one JSON Detection per image", cmdAnalyze},
		{"eval", "measure detector and plate-reader accuracy on a labelled folder", cmdEval},
		{"bench", "measure whole-pipeline speed on images", cmdBench},
		{"dataset", "export reviewed cases as a training set: dataset export --out DIR", cmdDataset},
		{"healthcheck", "GET a health URL and exit 0 on 200 (container HEALTHCHECK)", cmdHealthcheck},
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: offencecam COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\n`offencecam COMMAND -h` lists a command's flags.")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		return
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			var ue usageError
			fmt.Fprintf(os.Stderr, "offencecam %s: %v\n", name, err)
			if errors.As(err, &ue) {
				os.Exit(2)
			}
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "offencecam: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}

// usageError marks errors caused by how the command was called (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }
