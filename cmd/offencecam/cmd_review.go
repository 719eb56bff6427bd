package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review"
	"github.com/crossborder/offencecam/review/accounts"
	"github.com/crossborder/offencecam/review/audit"
)

// cmdReview runs the review role alone (case store, web UI and API, consumers of DETECTIONS
// and fine results) against an external NATS, or manages accounts with `review user …`.
func cmdReview(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "user" {
		return cmdReviewUser(ctx, args[1:])
	}
	fs := flag.NewFlagSet("review", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: offencecam review [flags]\n       offencecam review user add|passwd|disable|enable|list …\n\nflags:")
		fs.PrintDefaults()
	}
	common := addCommonFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (did you mean `review user %s`?)", fs.Arg(0), fs.Arg(0))}
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	return runRoles(ctx, cfg, "review", natsExternal, func(ctx context.Context, rt *runtime, g *group) (http.Handler, error) {
		return startReviewRole(ctx, rt, g, os.Stdout)
	})
}

// startReviewRole starts the review stage in g on rt and returns its web handler (mount it at
// "/" after /metrics, /healthz and /readyz); `serve` calls it too. On the first start it
// creates the admin account and prints its one-time password to firstAdmin.
func startReviewRole(ctx context.Context, rt *runtime, g *group, firstAdmin io.Writer) (http.Handler, error) {
	rcfg := rt.cfg.Review
	if rt.cfg.NATS.Replicas > rcfg.Replicas {
		rcfg.Replicas = rt.cfg.NATS.Replicas // accounts and sessions as durable as the wire
	}
	svc, err := review.New(ctx, review.Deps{NC: rt.nc, JS: rt.js, Store: rt.store, Registry: rt.reg, Log: rt.log}, rcfg)
	if err != nil {
		return nil, err
	}
	if err := svc.EnsureFirstAdmin(ctx, firstAdmin); err != nil {
		return nil, err
	}
	rt.health.Add("review", svc.Ready)
	g.Go("review", rt.log, func() error { return svc.Run(ctx) })
	return svc.Handler(), nil
}

const reviewUserUsage = `usage:
  offencecam review user add NAME -roles reviewer[,supervisor,auditor,admin] [-lang fr|nl|en] [-password-stdin]
  offencecam review user passwd NAME [-password-stdin]
  offencecam review user disable NAME
  offencecam review user enable NAME
  offencecam review user list

Without -password-stdin a random one-time password is printed once and must be changed at
first login. With the embedded NATS of ` + "`serve`" + ` (no nats.url), these join the running
serve of the same --data directory, or open its store themselves while serve is stopped.`

// cmdReviewUser manages review accounts in the accounts KV bucket.
func cmdReviewUser(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, reviewUserUsage)
		if len(args) == 0 {
			return usageError{errors.New("missing subcommand")}
		}
		return flag.ErrHelp
	}
	sub := args[0]
	fs := flag.NewFlagSet("review user "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), reviewUserUsage+"\n\nflags:"); fs.PrintDefaults() }
	common := addCommonFlags(fs)
	roles := fs.String("roles", "", "comma-separated roles: reviewer, supervisor, auditor, admin (add)")
	lang := fs.String("lang", "", "UI language: fr, nl or en (add; default review.default_language)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input instead of generating a one-time one")
	// Flags may come before or after the NAME.
	var pos []string
	rest := args[1:]
	for {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	needName := sub != "list"
	if needName && len(pos) != 1 || !needName && len(pos) != 0 {
		return usageError{fmt.Errorf("review user %s: wrong arguments\n%s", sub, reviewUserUsage)}
	}
	switch sub {
	case "add", "passwd", "disable", "enable", "list":
	default:
		return usageError{fmt.Errorf("review user: unknown subcommand %q\n%s", sub, reviewUserUsage)}
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	rt, err := openRuntime(ctx, cfg, "review-admin", natsJoin)
	if err != nil {
		return err
	}
	defer rt.Close()
	st, err := accounts.Open(ctx, rt.js, max(cfg.Review.Replicas, cfg.NATS.Replicas), accounts.Options{
		LockoutThreshold: cfg.Review.LockoutThreshold, LockoutDuration: cfg.Review.LockoutDuration})
	if err != nil {
		return err
	}
	actor := "cli"
	if u, err := user.Current(); err == nil {
		actor = "cli:" + u.Username
	}
	pub := &audit.Publisher{JS: rt.js}
	record := func(action, name string, details map[string]string) {
		ev := pipeline.AuditEvent{Actor: actor, Action: action, Entity: audit.EntityUser, EntityID: name, Details: details}
		if err := pub.Publish(ctx, ev, ""); err != nil {
			rt.log.Error("audit publish failed", "action", action, "user", name, "err", err)
		}
	}
	password := func() (pw string, oneTime bool, err error) {
		if *fromStdin {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return "", false, fmt.Errorf("read password: %w", err)
			}
			return strings.TrimRight(line, "\r\n"), false, nil
		}
		pw, err = accounts.RandomPassword()
		return pw, true, err
	}
	switch sub {
	case "add":
		l := *lang
		if l == "" {
			l = cfg.Review.DefaultLanguage
		}
		var rs []string
		for _, r := range strings.Split(*roles, ",") {
			if r = strings.TrimSpace(r); r != "" {
				rs = append(rs, r)
			}
		}
		pw, oneTime, err := password()
		if err != nil {
			return err
		}
		if err := st.Add(ctx, pos[0], pw, rs, l, oneTime); err != nil {
			if errors.Is(err, accounts.ErrInvalid) {
				return usageError{err}
			}
			return err
		}
		record("user_created", pos[0], map[string]string{"roles": strings.Join(rs, ",")})
		fmt.Printf("created %s (%s)\n", pos[0], strings.Join(rs, ", "))
		if oneTime {
			fmt.Printf("one-time password: %s\n(shown only now; it must be changed at first login)\n", pw)
		}
	case "passwd":
		pw, oneTime, err := password()
		if err != nil {
			return err
		}
		if err := st.SetPassword(ctx, pos[0], pw, oneTime); err != nil {
			return err
		}
		record("password_reset", pos[0], nil)
		fmt.Printf("password of %s replaced\n", pos[0])
		if oneTime {
			fmt.Printf("one-time password: %s\n(shown only now; it must be changed at first login)\n", pw)
		}
	case "disable", "enable":
		if err := st.SetDisabled(ctx, pos[0], sub == "disable"); err != nil {
			return err
		}
		record("user_"+sub+"d", pos[0], nil)
		fmt.Printf("%s %sd\n", pos[0], sub)
	case "list":
		list, err := st.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLES\tLANG\tSTATUS\tLAST LOGIN")
		for _, a := range list {
			status := "active"
			switch {
			case a.Disabled:
				status = "disabled"
			case time.Now().Before(a.LockedUntil):
				status = "locked"
			case a.MustChangePassword:
				status = "must-change-password"
			}
			last := "-"
			if !a.LastLoginAt.IsZero() {
				last = a.LastLoginAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, strings.Join(a.Roles, ","), a.Lang, status, last)
		}
		return tw.Flush()
	}
	return nil
}
