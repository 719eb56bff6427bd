// Package dataset turns reviewed cases into a training set for the occupant classifier, in
// the layout of ../shared/data/roadside-train (training/occupant reads either): the original
// frame of each decided case whose evidence is still retained, the driver's crop box of the
// offending vehicle, and phone and belt labels taken from the reviewers' decisions.
//
// Only evidence still in the evidence bucket is exported: a case whose evidence the retention
// sweep purged (or that is gone for any other reason) is counted and skipped, never
// reconstructed. Every export is one entry in the AUDIT stream.
package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of the originals
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/crossborder/offencecam/review/audit"
	"github.com/crossborder/offencecam/review/cases"
)

// Labels of labels.tsv (roadside-train's README: `likely` is never produced from reviews).
const (
	PhoneYes     = "yes"
	PhoneNo      = "no"
	BeltWorn     = "worn"
	BeltNotWorn  = "not_worn"
	LabelUnsure  = "unsure"
	reasonPhone  = "not_phone"    // review reason code: what was flagged is not a phone
	reasonBelted = "belt_visible" // review reason code: a belt is worn after all
)

// Reasons a case is skipped (Summary.Skipped keys).
const (
	SkipUndecided        = "undecided"         // still under review (pending, first_confirmed, disputed)
	SkipBeforeSince      = "before_since"      // decided before --since
	SkipPurged           = "purged"            // evidence_purged_at set by the retention sweep
	SkipEvidenceMissing  = "evidence_missing"  // the original is no longer in the evidence bucket
	SkipEvidenceMismatch = "evidence_mismatch" // the stored bytes do not hash to the recorded sha256
	SkipNoOriginal       = "no_original"       // the case names no original of the offending vehicle's view
	SkipNoDriver         = "no_driver_crop"    // the offending vehicle has no driver box inside the frame
	SkipNotJPEG          = "not_jpeg"          // the layout is images/<stem>.jpg
	SkipNoLabel          = "no_label"          // the decisions say nothing about phone or belt
)

// AUDIT entity and action of an export.
const (
	EntityDataset = "dataset"
	ActionExport  = "dataset_exported"
)

// Config is one export.
type Config struct {
	// Out is the directory to create; it must not exist or be empty. The set is written
	// beside it first and renamed into place once complete and audited.
	Out string
	// Since keeps the cases decided at or after it (zero: every case).
	Since time.Time
	// By is who exports, for AUDIT (e.g. "cli:alice").
	By string
	// Progress receives one line per exported case and the summary (nil: none).
	Progress io.Writer
	Now      func() time.Time
}

// Deps are the stores an export reads and the stream it audits to.
type Deps struct {
	JS    jetstream.JetStream
	Store objstore.Store
	Cases *cases.Store
}

// Summary says what an export did.
type Summary struct {
	ID       string
	Out      string
	Exported int
	Skipped  map[string]int
	// Labels counts the exported labels, "phone=yes", "belt=worn", …
	Labels map[string]int
	// ManifestSHA256 is the hash of MANIFEST.tsv, recorded in AUDIT: it names every case and
	// evidence object the export contains.
	ManifestSHA256 string
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exported %d cases to %s", s.Exported, s.Out)
	if len(s.Labels) > 0 {
		fmt.Fprintf(&b, " (%s)", joinCounts(s.Labels))
	}
	skipped := 0
	for _, n := range s.Skipped {
		skipped += n
	}
	fmt.Fprintf(&b, "; skipped %d", skipped)
	if skipped > 0 {
		fmt.Fprintf(&b, " (%s)", joinCounts(s.Skipped))
	}
	return b.String()
}

func joinCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// ParseSince reads --since: an RFC 3339 time, or a duration before now (720h).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("since %q: want an RFC 3339 time (2026-01-31T00:00:00Z) or a positive duration (720h)", s)
	}
	return now.Add(-d), nil
}

// Labels are the phone and belt labels the decisions on c give its driver.
//
// A confirmed case (confirmed, sent, fine_created, platform_rejected) gives phone yes for a
// confirmed phone offence and belt not_worn for a confirmed seatbelt offence. A rejected case
// gives phone no for reason not_phone and belt worn for belt_visible. Anything else (another
// reason, a kind that was not flagged or not confirmed) is unsure: the reviewers said nothing
// about it. ok is false for a case still under review.
func Labels(c *cases.Case) (phone, belt string, ok bool) {
	phone, belt = LabelUnsure, LabelUnsure
	switch {
	case c.State.ConfirmedOrLater():
		if slices.Contains(c.Offences, pipeline.OffencePhone) {
			phone = PhoneYes
		}
		if slices.Contains(c.Offences, pipeline.OffenceSeatbelt) {
			belt = BeltNotWorn
		}
	case c.State == cases.Rejected:
		switch c.Reason {
		case reasonPhone:
			phone = PhoneNo
		case reasonBelted:
			belt = BeltWorn
		}
	default:
		return phone, belt, false
	}
	return phone, belt, true
}

// decidedAt is when the last decision on c was made (the case's last update without one).
func decidedAt(c *cases.Case) time.Time {
	var t time.Time
	for _, d := range c.Decisions {
		if d.DecidedAt.After(t) {
			t = d.DecidedAt
		}
	}
	if t.IsZero() {
		t = c.UpdatedAt
	}
	return t
}

// row is one exported case.
type row struct {
	stem, phone, belt, note string
	box                     [4]int
	caseID, evidence, sum   string
}

// Export writes the training set of every decided case with retained evidence.
func Export(ctx context.Context, d Deps, cfg Config) (Summary, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.By == "" {
		return Summary{}, errors.New("dataset: who exports (By) is required for AUDIT")
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return Summary{}, fmt.Errorf("dataset: out: %w", err)
	}
	if err := checkOut(out); err != nil {
		return Summary{}, err
	}
	// A complete set appears at out or nothing does: it is built beside it and renamed.
	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return Summary{}, fmt.Errorf("dataset: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-")
	if err != nil {
		return Summary{}, fmt.Errorf("dataset: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	for _, sub := range []string{"images", "windshield"} {
		if err := os.Mkdir(filepath.Join(tmp, sub), 0o750); err != nil {
			return Summary{}, fmt.Errorf("dataset: %w", err)
		}
	}

	if err := d.Cases.Index().Sync(ctx); err != nil {
		return Summary{}, fmt.Errorf("dataset: list cases: %w", err)
	}
	all := d.Cases.Index().Snapshot()
	sum := Summary{Out: out, Skipped: map[string]int{}, Labels: map[string]int{}}
	var rows []row
	stems := map[string]bool{}
	for i := range all {
		c := &all[i]
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		r, reason, err := exportCase(ctx, d.Store, c, cfg.Since, tmp, stems)
		if err != nil {
			return Summary{}, fmt.Errorf("dataset: case %s: %w", c.ID, err)
		}
		if reason != "" {
			sum.Skipped[reason]++
			if reason != SkipUndecided && reason != SkipBeforeSince {
				fmt.Fprintf(progress, "skipped case %s: %s\n", c.ID, reason)
			}
			continue
		}
		rows = append(rows, r)
		sum.Labels["phone="+r.phone]++
		sum.Labels["belt="+r.belt]++
		fmt.Fprintf(progress, "[%d/%d] %s: phone %s, belt %s\n", i+1, len(all), r.stem, r.phone, r.belt)
	}
	sum.Exported = len(rows)

	now := cfg.Now().UTC()
	manifest, err := writeTables(tmp, rows, cfg, now, sum)
	if err != nil {
		return Summary{}, err
	}
	ms := sha256.Sum256(manifest)
	sum.ManifestSHA256 = hex.EncodeToString(ms[:])
	sum.ID = now.Format("20060102T150405Z") + "-" + sum.ManifestSHA256[:8]

	// Audited before it appears: an export nobody can account for must not exist. (A rename
	// failing after this leaves an entry for an export that did not land, which says so.)
	details := map[string]string{
		"count": strconv.Itoa(sum.Exported), "out": out, "manifest_sha256": sum.ManifestSHA256,
		"skipped": joinCounts(sum.Skipped), "labels": joinCounts(sum.Labels),
	}
	if !cfg.Since.IsZero() {
		details["since"] = cfg.Since.UTC().Format(time.RFC3339)
	}
	ev := pipeline.AuditEvent{At: now, Actor: cfg.By, Action: ActionExport, Entity: EntityDataset, EntityID: sum.ID, Details: details}
	pub := &audit.Publisher{JS: d.JS, Now: cfg.Now}
	if err := pub.Publish(ctx, ev, "dataset/"+sum.ID); err != nil {
		return Summary{}, fmt.Errorf("dataset: AUDIT: %w (nothing exported)", err)
	}
	// An empty out directory (checkOut allowed it) is replaced.
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, fmt.Errorf("dataset: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return Summary{}, fmt.Errorf("dataset: %w", err)
	}
	done = true
	fmt.Fprintln(progress, sum.String())
	return sum, nil
}

// checkOut refuses an out directory with something in it: an export never mixes with (or
// overwrites) another.
func checkOut(out string) error {
	ents, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("dataset: out %s: %w", out, err)
	case len(ents) > 0:
		return fmt.Errorf("dataset: out %s is not empty", out)
	}
	return nil
}

// exportCase writes the image and windshield file of c into dir and returns its row, or the
// reason it is skipped. err is for what should stop the export (a store that cannot be read).
func exportCase(ctx context.Context, store objstore.Store, c *cases.Case, since time.Time, dir string, stems map[string]bool) (row, string, error) {
	phone, belt, decided := Labels(c)
	switch {
	case !decided:
		return row{}, SkipUndecided, nil
	case !since.IsZero() && decidedAt(c).Before(since):
		return row{}, SkipBeforeSince, nil
	case !c.EvidencePurgedAt.IsZero():
		return row{}, SkipPurged, nil
	case phone == LabelUnsure && belt == LabelUnsure:
		// A row without a label only adds noise (training reads `unsure` as "could not be
		// judged", which a rejection for another reason does not say).
		return row{}, SkipNoLabel, nil
	}
	det := c.Detection
	vi := offendingVehicle(c)
	if vi < 0 || det.Vehicles[vi].Driver == nil {
		return row{}, SkipNoDriver, nil
	}
	veh := det.Vehicles[vi]
	ev, ok := original(det, veh.View)
	if !ok {
		return row{}, SkipNoOriginal, nil
	}
	data, err := readObject(ctx, store, ev.Bucket, ev.Key)
	if errors.Is(err, objstore.ErrNotFound) {
		return row{}, SkipEvidenceMissing, nil
	}
	if err != nil {
		return row{}, "", err
	}
	h := sha256.Sum256(data)
	got := hex.EncodeToString(h[:])
	if ev.SHA256 != "" && !strings.EqualFold(ev.SHA256, got) {
		return row{}, SkipEvidenceMismatch, nil
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || format != "jpeg" {
		return row{}, SkipNotJPEG, nil
	}
	box, ok := clipBox(*veh.Driver, cfg.Width, cfg.Height)
	if !ok {
		return row{}, SkipNoDriver, nil
	}
	stem := uniqueStem(c, stems)
	if err := os.WriteFile(filepath.Join(dir, "images", stem+".jpg"), data, 0o640); err != nil {
		return row{}, "", err
	}
	var ws string
	if w := veh.Windshield; w != nil && w.W > 0 && w.H > 0 {
		// YOLO: class cx cy w h, normalised to the frame.
		W, H := float64(cfg.Width), float64(cfg.Height)
		ws = fmt.Sprintf("0 %.6f %.6f %.6f %.6f\n", (w.X+w.W/2)/W, (w.Y+w.H/2)/H, w.W/W, w.H/H)
	}
	if err := os.WriteFile(filepath.Join(dir, "windshield", stem+".txt"), []byte(ws), 0o640); err != nil {
		return row{}, "", err
	}
	return row{stem: stem, phone: phone, belt: belt, box: box, note: note(c),
		caseID: c.ID, evidence: ev.Bucket + "/" + ev.Key, sum: got}, "", nil
}

// offendingVehicle is the vehicle the case's offences are about: that of the first offence
// the reviewers confirmed, else of the first flagged one; -1 without one.
func offendingVehicle(c *cases.Case) int {
	det := c.Detection
	best := -1
	for _, o := range det.Offences {
		if o.Vehicle < 0 || o.Vehicle >= len(det.Vehicles) {
			continue
		}
		if slices.Contains(c.Offences, o.Kind) {
			return o.Vehicle
		}
		if best < 0 {
			best = o.Vehicle
		}
	}
	return best
}

// original is the original frame of a view: the one named for it, else the only original
// (a frame without a view is analysed as the default view).
func original(det pipeline.Detection, view string) (pipeline.Evidence, bool) {
	var origs []pipeline.Evidence
	for _, e := range det.Evidence {
		if e.Kind != pipeline.EvidenceOriginal {
			continue
		}
		if e.View == view {
			return e, true
		}
		origs = append(origs, e)
	}
	if len(origs) == 1 {
		return origs[0], true
	}
	return pipeline.Evidence{}, false
}

func readObject(ctx context.Context, store objstore.Store, bucket, key string) ([]byte, error) {
	rc, _, err := store.Get(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// clipBox is b as x0,y0,x1,y1 whole pixels inside a w×h frame; false when nothing is left.
func clipBox(b pipeline.Box, w, h int) ([4]int, bool) {
	x0 := max(0, int(math.Round(b.X)))
	y0 := max(0, int(math.Round(b.Y)))
	x1 := min(w, int(math.Round(b.X+b.W)))
	y1 := min(h, int(math.Round(b.Y+b.H)))
	return [4]int{x0, y0, x1, y1}, x1 > x0 && y1 > y0
}

// uniqueStem names a case's files: its id (already a safe token: letters, digits, - _ =),
// shortened with a hash when long, then its capture time of day as HH-MM-SS-mmm (UTC) as in
// the roadside-train stems, from which training groups frames close in time into one fold.
func uniqueStem(c *cases.Case, used map[string]bool) string {
	base := pipeline.Token(c.ID)
	if len(base) > 96 {
		h := sha256.Sum256([]byte(c.ID))
		base = base[:80] + "-" + hex.EncodeToString(h[:6])
	}
	suffix := ""
	if t := c.Detection.CapturedAt; !t.IsZero() {
		t = t.UTC()
		suffix = fmt.Sprintf("_%02d-%02d-%02d-%03d", t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e6)
	}
	stem := base + suffix
	for n := 2; used[stem]; n++ {
		stem = fmt.Sprintf("%s-%d%s", base, n, suffix)
	}
	used[stem] = true
	return stem
}

// note is the case id and its decisions (stage, outcome, reason, offences) on one line;
// reviewers' names and free-text notes stay in the case.
func note(c *cases.Case) string {
	parts := []string{"case " + c.ID, string(c.State)}
	for _, d := range c.Decisions {
		p := d.Stage + ":" + d.Outcome
		var what []string
		if d.Reason != "" {
			what = append(what, d.Reason)
		}
		what = append(what, d.Offences...)
		if len(what) > 0 {
			p += "(" + strings.Join(what, ",") + ")"
		}
		parts = append(parts, p)
	}
	return clean(strings.Join(parts, "; "))
}

// clean keeps a TSV field on one line and in one column.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// writeTables writes labels.tsv, MANIFEST.tsv and README.md, and returns MANIFEST.tsv's bytes.
func writeTables(dir string, rows []row, cfg Config, now time.Time, sum Summary) ([]byte, error) {
	var labels, manifest bytes.Buffer
	labels.WriteString("# stem\tphone\tbelt\tdriver_crop_x0,y0,x1,y1\tnote\n")
	manifest.WriteString("# stem\tcase_id\tevidence\tsha256\n")
	for _, r := range rows {
		fmt.Fprintf(&labels, "%s\t%s\t%s\t%d,%d,%d,%d\t%s\n", r.stem, r.phone, r.belt, r.box[0], r.box[1], r.box[2], r.box[3], r.note)
		fmt.Fprintf(&manifest, "%s\t%s\t%s\t%s\n", r.stem, clean(r.caseID), clean(r.evidence), r.sum)
	}
	since := "every decided case"
	if !cfg.Since.IsZero() {
		since = "cases decided since " + cfg.Since.UTC().Format(time.RFC3339)
	}
	readme := fmt.Sprintf(`# offencecam dataset export

Exported %s by %s: %s whose evidence was still retained (%d cases).
Skipped: %s.

Layout as ../shared/data/roadside-train (training/occupant/train.py --data DIR):
- images/<stem>.jpg: the original frame, bytes as stored in the evidence bucket
  (MANIFEST.tsv: case, evidence object, sha256).
- windshield/<stem>.txt: YOLO box (class 0) of the offending vehicle's windshield.
- labels.tsv: stem, phone, belt, the driver crop of the offending vehicle (pixels), note (case
  id and decisions). Labels come from the reviews: a confirmed phone offence is phone yes, a
  confirmed seatbelt offence belt not_worn; a rejection for not_phone is phone no, for
  belt_visible belt worn; anything the reviewers did not decide is unsure.

These are frames of real people and plates, kept as evidence: handle them as the evidence is
handled, and delete the export once the training run no longer needs it.
`, now.Format(time.RFC3339), cfg.By, since, sum.Exported, orNone(joinCounts(sum.Skipped)))
	for name, b := range map[string][]byte{"labels.tsv": labels.Bytes(), "MANIFEST.tsv": manifest.Bytes(), "README.md": []byte(readme)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
	}
	return manifest.Bytes(), nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
