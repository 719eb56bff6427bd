package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/crossborder/offencecam/internal/backoff"

	"github.com/crossborder/offencecam/detector"
	"github.com/crossborder/offencecam/detector/imgproc"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PermanentError marks an analysis error that no retry can fix (the analyser's verdict on
// the bytes, not on its own state). Errors of detector/imgproc for bad image bytes are
// permanent without it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// permanentReason is a short label for a permanent error, "" for a transient one.
func permanentReason(err error) string {
	if r := imgproc.Reason(err); r != "" {
		return "bad_image"
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return "permanent"
	}
	return ""
}

// original is a frame's bytes as read for this analysis.
type original struct {
	h      *held
	data   []byte
	sha256 string
	info   objstore.ObjectInfo
}

// process takes one passage to its end: published, deleted, dead-lettered or handed back.
func (w *Worker) process(ctx context.Context, p *passage, stop <-chan struct{}) {
	select {
	case w.readAhead <- struct{}{}:
	case <-stop:
		w.handBack(p.items)
		return
	}
	origs, prefix, ok := w.prepare(ctx, p)
	if !ok {
		<-w.readAhead
		return
	}
	var a detector.Analyzer
	select {
	case a = <-w.pool:
		<-w.readAhead
	case <-stop:
		<-w.readAhead
		w.handBack(heldOf(origs))
		return
	}
	res, good, ok := w.decide(ctx, a, origs)
	w.pool <- a
	if !ok {
		return
	}
	for _, o := range good {
		if res.Detection.Flagged {
			// The hash of the bytes analysed is what the evidence record proves; clean
			// frames are deleted and need none.
			sum := sha256.Sum256(o.data)
			o.sha256 = hex.EncodeToString(sum[:])
		}
		o.data = nil // only the hash and the object info are needed from here on
	}
	if w.observeStages {
		for stage, ms := range res.Detection.TimingsMS {
			w.m.stage.WithLabelValues(stage).Observe(ms / 1000)
		}
	}
	if !res.Detection.Flagged {
		w.finishClean(ctx, p, good)
		return
	}
	w.finishFlagged(ctx, p, prefix, good, res)
}

// prepare reads the passage's frames. ok is false when nothing is left to analyse: the
// passage was handed back, dead-lettered, or found already published.
func (w *Worker) prepare(ctx context.Context, p *passage) (origs []*original, prefix string, ok bool) {
	sortItems(p.items)
	prefix = evidencePrefix(p)
	log := w.log.With("passage", p.id)

	var missing []*held
	for _, h := range p.items {
		o, err := w.readFrame(ctx, h)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			missing = append(missing, h)
			continue
		case errors.Is(err, errChanged):
			w.deadLetter(ctx, h, "changed", err.Error(), false)
			continue
		case err != nil:
			// S3 unreachable, throttled, a read cut short: the whole passage comes back later.
			w.retry(ctx, p.items, "s3_read", err)
			return nil, "", false
		}
		origs = append(origs, o)
	}
	if len(missing) > 0 {
		published, err := w.alreadyPublished(ctx, prefix, missing)
		if err != nil {
			w.retry(ctx, p.items, "s3_read", err)
			return nil, "", false
		}
		if published {
			// A crash hit between deleting the originals and acking: finish that.
			log.Info("passage already published before a restart; finishing its cleanup")
			for _, o := range origs {
				if err := w.deps.Store.Delete(ctx, o.h.frame.Bucket, o.h.frame.Key); err != nil {
					w.retry(ctx, p.items, "s3_delete", err)
					return nil, "", false
				}
			}
			w.ackAll(p.items, resultFlagged)
			return nil, "", false
		}
		for _, h := range missing {
			// Legitimately only after a crash between deleting a clean frame and acking it;
			// anything more often means this worker reads another store than ingest writes.
			log.Error("frame object is gone from the store; nothing to analyse (does this worker use the same object store as ingest?)",
				"frame", h.frame.ID, "bucket", h.frame.Bucket, "key", h.frame.Key)
			w.ackAll([]*held{h}, resultMissing)
		}
	}
	return origs, prefix, len(origs) > 0
}

var errChanged = errors.New("frame object changed after ingest")

func normETag(s string) string { return strings.ToLower(strings.Trim(s, `"`)) }

// readFrame reads a frame's bytes and hashes them, refusing an object that is no longer the
// version ingest validated (its new version is a frame of its own).
func (w *Worker) readFrame(ctx context.Context, h *held) (*original, error) {
	f := h.frame
	rc, info, err := w.deps.Store.Get(ctx, f.Bucket, f.Key)
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", f.Bucket, f.Key, err)
	}
	defer rc.Close()
	if f.ETag != "" && info.ETag != "" && normETag(f.ETag) != normETag(info.ETag) {
		return nil, fmt.Errorf("%w: %s/%s had ETag %s at ingest, now %s", errChanged, f.Bucket, f.Key, f.ETag, info.ETag)
	}
	var buf bytes.Buffer
	if info.Size > 0 {
		buf.Grow(int(info.Size))
	}
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", f.Bucket, f.Key, err)
	}
	return &original{h: h, data: buf.Bytes(), info: info}, nil
}

// alreadyPublished reports whether a missing frame's original is in evidence with this
// frame's id: originals are deleted from `frames` only after the Detection is published.
func (w *Worker) alreadyPublished(ctx context.Context, prefix string, missing []*held) (bool, error) {
	for _, h := range missing {
		info, err := w.deps.Store.Stat(ctx, w.cfg.EvidenceBucket, originalKey(prefix, h.frame))
		if errors.Is(err, objstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if info.Metadata["frame-id"] == h.frame.ID {
			return true, nil
		}
	}
	return false, nil
}

// analyze runs the analyser, turning a panic into an error that names it.
func (w *Worker) analyze(ctx context.Context, a detector.Analyzer, views []detector.View) (res detector.Result, err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("analysis panicked", "panic", r, "stack", string(debug.Stack()))
			err, panicked = fmt.Errorf("analysis panicked: %v", r), true
		}
	}()
	start := time.Now()
	res, err = a.Analyze(ctx, views)
	w.m.analysis.Observe(time.Since(start).Seconds())
	return res, err, false
}

func viewsOf(origs []*original) []detector.View {
	vs := make([]detector.View, len(origs))
	for i, o := range origs {
		vs[i] = detector.View{Frame: o.h.frame, Data: o.data}
	}
	return vs
}

func heldOf(origs []*original) []*held {
	hs := make([]*held, len(origs))
	for i, o := range origs {
		hs[i] = o.h
	}
	return hs
}

// decide analyses the views on a; ok is false when the passage was dead-lettered or handed
// back. A permanent error of a multi-view passage is narrowed down to the bad views, and the
// others are analysed again without them (good is what the result covers).
func (w *Worker) decide(ctx context.Context, a detector.Analyzer, origs []*original) (res detector.Result, good []*original, ok bool) {
	res, err, panicked := w.analyze(ctx, a, viewsOf(origs))
	switch {
	case panicked:
		for _, o := range origs {
			w.deadLetter(ctx, o.h, "panic", err.Error(), true)
		}
		w.m.passages.WithLabelValues(resultFailed).Inc()
		return res, nil, false
	case err != nil && ctx.Err() != nil:
		w.handBack(heldOf(origs)) // stopping: not the frame's fault
		return res, nil, false
	case err != nil && permanentReason(err) != "":
		if len(origs) == 1 {
			w.deadLetter(ctx, origs[0].h, permanentReason(err), err.Error(), true)
			w.m.passages.WithLabelValues(resultFailed).Inc()
			return res, nil, false
		}
		// One bad view must not sink the others: find it by analysing each alone.
		for _, o := range origs {
			_, verr, vpanic := w.analyze(ctx, a, viewsOf([]*original{o}))
			switch {
			case vpanic:
				w.deadLetter(ctx, o.h, "panic", verr.Error(), true)
			case verr != nil && permanentReason(verr) != "":
				w.deadLetter(ctx, o.h, permanentReason(verr), verr.Error(), true)
			default:
				good = append(good, o)
			}
		}
		if len(good) == len(origs) {
			// Only the combination fails: the passage as a whole is what cannot be analysed.
			for _, o := range origs {
				w.deadLetter(ctx, o.h, permanentReason(err), err.Error(), true)
			}
			w.m.passages.WithLabelValues(resultFailed).Inc()
			return res, nil, false
		}
		if len(good) == 0 {
			w.m.passages.WithLabelValues(resultFailed).Inc()
			return res, nil, false
		}
		return w.decide(ctx, a, good)
	case err != nil:
		w.retry(ctx, heldOf(origs), "analysis", err)
		return res, nil, false
	}
	return res, origs, true
}

// finishClean deletes (or schedules the deletion of) the frames, then acks them.
func (w *Worker) finishClean(ctx context.Context, p *passage, origs []*original) {
	for _, o := range origs {
		f := o.h.frame
		var err error
		if w.retention != nil {
			err = w.keep(ctx, f, o.info.ETag)
		} else {
			err = w.deps.Store.Delete(ctx, f.Bucket, f.Key)
		}
		if err != nil {
			w.retry(ctx, heldOf(origs), "s3_delete", err)
			return
		}
	}
	w.ackAll(heldOf(origs), resultClean)
	w.m.passages.WithLabelValues(resultClean).Inc()
}

// finishFlagged stores the evidence, publishes the Detection, deletes the originals from
// `frames` and acks, in that order (see the package comment).
func (w *Worker) finishFlagged(ctx context.Context, p *passage, prefix string, origs []*original, res detector.Result) {
	hs := heldOf(origs)
	det := w.completeDetection(p, origs, res.Detection)
	ev := make([]pipeline.Evidence, 0, len(origs)+len(res.Artifacts))
	var written int64

	for _, o := range origs {
		f := o.h.frame
		key := originalKey(prefix, f)
		md := map[string]string{"passage-id": p.id, "sha256": o.sha256, "kind": pipeline.EvidenceOriginal,
			"frame-id": f.ID, "camera": f.Camera, "view": f.View}
		info, err := w.deps.Store.Copy(ctx, f.Bucket, f.Key, w.cfg.EvidenceBucket, key,
			&objstore.PutOptions{ContentType: o.info.ContentType, Metadata: md})
		if err != nil {
			w.retry(ctx, hs, "s3_write", err)
			return
		}
		if info.ETag != "" && o.info.ETag != "" && normETag(info.ETag) != normETag(o.info.ETag) {
			// Replaced between our read and the copy: the hash we hold is not of what was
			// copied. The redelivery sees the new ETag and dead-letters the frame.
			w.retry(ctx, hs, "changed_during_copy", fmt.Errorf("%s/%s changed while it was copied", f.Bucket, f.Key))
			return
		}
		written += info.Size
		ev = append(ev, pipeline.Evidence{Kind: pipeline.EvidenceOriginal, Bucket: w.cfg.EvidenceBucket, Key: key,
			SHA256: o.sha256, Size: info.Size, ContentType: info.ContentType, View: f.View})
	}

	used := map[string]bool{}
	for _, art := range res.Artifacts {
		sum := sha256.Sum256(art.Data)
		got := hex.EncodeToString(sum[:])
		if art.SHA256 != "" && !strings.EqualFold(art.SHA256, got) {
			// The analyser's hash is what a court would check: a mismatch is a defect in the
			// analyser, the same on every retry.
			reason := fmt.Sprintf("artifact %s/%s: analyser says sha256 %s, data hashes to %s", art.Kind, art.View, art.SHA256, got)
			for _, h := range hs {
				w.deadLetter(ctx, h, "bad_artifact", reason, true)
			}
			w.m.passages.WithLabelValues(resultFailed).Inc()
			return
		}
		// Content-addressed: an object a published Detection names is never overwritten,
		// not by a re-analysis after a crash nor by another passage under the same id.
		stem := safeName(art.Kind)
		if art.View != "" {
			stem += "-" + safeName(art.View)
		}
		key := prefix + "/" + stem + "-" + got[:16] + extForContentType(art.ContentType)
		if used[key] {
			continue // the same bytes twice: one object, one entry
		}
		used[key] = true
		md := map[string]string{"passage-id": p.id, "sha256": got, "kind": art.Kind, "view": art.View}
		info, err := w.deps.Store.Put(ctx, w.cfg.EvidenceBucket, key, bytes.NewReader(art.Data), int64(len(art.Data)),
			objstore.PutOptions{ContentType: art.ContentType, Metadata: md})
		if err != nil {
			w.retry(ctx, hs, "s3_write", err)
			return
		}
		written += info.Size
		ev = append(ev, pipeline.Evidence{Kind: art.Kind, Bucket: w.cfg.EvidenceBucket, Key: key, SHA256: got,
			Size: int64(len(art.Data)), ContentType: art.ContentType, View: art.View})
	}
	det.Evidence = ev

	data, err := json.Marshal(det)
	if err != nil {
		for _, h := range hs {
			w.deadLetter(ctx, h, "bad_detection", fmt.Sprintf("marshal Detection: %v", err), true)
		}
		return
	}
	msg := &nats.Msg{Subject: pipeline.DetectionSubject(det.Camera), Data: data, Header: nats.Header{}}
	ack, err := w.deps.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(p.id), jetstream.WithExpectStream(pipeline.StreamDetections))
	if err != nil {
		w.retry(ctx, hs, "publish", err)
		return
	}
	w.m.evidenceBytes.Add(float64(written))
	w.m.evidenceObjs.Add(float64(len(ev)))
	if ack.Duplicate {
		first := true
		for _, h := range hs {
			first = first && h.meta.NumDelivered == 1
		}
		if first {
			// Not our own redelivery: views that came after their passage was published
			// (later than passage_wait). Their Detection goes out under its own message id,
			// named by its frames so that a redelivery of these views is deduplicated, and
			// review adds the frames its case does not have yet.
			late := jetstream.WithMsgID(p.id + "+" + lateViewID(hs))
			if _, err := w.deps.JS.PublishMsg(ctx, msg, late, jetstream.WithExpectStream(pipeline.StreamDetections)); err != nil {
				w.retry(ctx, hs, "publish", err)
				return
			}
			w.m.lateViews.Inc()
			w.log.Info("late view of an already published passage sent for its case", "passage", p.id, "views", len(hs))
		}
	}
	if w.hooks.afterPublish != nil {
		w.hooks.afterPublish(p.id)
	}
	for _, o := range origs {
		if err := w.deps.Store.Delete(ctx, o.h.frame.Bucket, o.h.frame.Key); err != nil {
			w.retry(ctx, hs, "s3_delete", err)
			return
		}
	}
	if w.hooks.beforeAck != nil && !w.hooks.beforeAck(p.id) {
		for _, h := range hs {
			w.release(h)
		}
		return
	}
	w.ackAll(hs, resultFlagged)
	w.m.passages.WithLabelValues(resultFlagged).Inc()
	w.log.Info("passage flagged", "passage", p.id, "camera", det.Camera, "offences", len(det.Offences),
		"evidence", len(ev), "duplicate", ack.Duplicate)
}

// completeDetection fills what the analyser may leave to the worker.
func (w *Worker) completeDetection(p *passage, origs []*original, d pipeline.Detection) pipeline.Detection {
	first := origs[0].h.frame
	if d.V == 0 {
		d.V = pipeline.Version
	}
	d.PassageID = p.id
	if d.Camera == "" {
		d.Camera = first.Camera
	}
	if d.Site == "" {
		d.Site = first.Site
	}
	if d.Location == nil {
		d.Location = first.Location
	}
	if d.CapturedAt.IsZero() {
		for _, o := range origs {
			if t := o.h.frame.CapturedAt; !t.IsZero() && (d.CapturedAt.IsZero() || t.Before(d.CapturedAt)) {
				d.CapturedAt = t
			}
		}
	}
	if d.DetectedAt.IsZero() {
		d.DetectedAt = time.Now().UTC()
	}
	if len(d.Frames) == 0 {
		for _, o := range origs {
			f := o.h.frame
			d.Frames = append(d.Frames, pipeline.FrameRef{Bucket: f.Bucket, Key: f.Key, ETag: f.ETag, View: f.View,
				Width: f.Width, Height: f.Height})
		}
	}
	if d.Vehicles == nil {
		d.Vehicles = []pipeline.Vehicle{}
	}
	if d.Offences == nil {
		d.Offences = []pipeline.Offence{}
	}
	return d
}

// ackAll acks after the work is durable. A lost ack means a redelivery, which the idempotent
// steps absorb, so the ack is confirmed but its failure only logged.
func (w *Worker) ackAll(hs []*held, result string) {
	for _, h := range hs {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.msg.DoubleAck(actx); err != nil {
			w.log.Warn("ack failed; the frame will be redelivered", "frame", h.frame.ID, "err", err)
		}
		cancel()
		w.m.frames.WithLabelValues(result).Inc()
		w.release(h)
	}
}

// retry hands messages back with a delay that doubles per delivery (with jitter).
func (w *Worker) retry(ctx context.Context, hs []*held, cause string, err error) {
	stopping := ctx.Err() != nil
	if !stopping {
		w.log.Warn("transient failure; the passage will be retried", "cause", cause, "err", err)
	}
	for _, h := range hs {
		var nerr error
		if stopping {
			nerr = h.msg.Nak()
		} else {
			w.m.retries.WithLabelValues(cause).Inc()
			nerr = h.msg.NakWithDelay(w.backoff(h.meta.NumDelivered))
		}
		if nerr != nil {
			w.log.Warn("nak failed; the frame will be redelivered after ack_wait", "frame", h.frame.ID, "err", nerr)
		}
		w.release(h)
	}
}

func (w *Worker) backoff(delivered uint64) time.Duration {
	// Jitter spreads the retries of a batch that failed together (an S3 outage).
	return backoff.Delay(int(min(delivered, 64)), w.cfg.RetryInitial, w.cfg.RetryMax)
}

// lateViewID names a group of late views by their frame ids.
func lateViewID(hs []*held) string {
	ids := make([]string, 0, len(hs))
	for _, h := range hs {
		ids = append(ids, h.frame.ID)
	}
	sort.Strings(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:8])
}

// evidencePrefix is <yyyy>/<mm>/<dd>/<passage> by capture date (UTC), deterministic across
// redeliveries so that a repeated copy lands on the same keys.
func evidencePrefix(p *passage) string {
	var at time.Time
	for _, h := range p.items {
		t := h.frame.CapturedAt
		if t.IsZero() {
			t = h.frame.ReceivedAt
		}
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if at.IsZero() {
		at = time.Unix(0, 0)
	}
	return at.UTC().Format("2006/01/02") + "/" + pipeline.Token(p.id)
}

// originalKey is where a frame's original is kept: named by the frame's identity
// (bucket/key/ETag), so a repeated copy lands on the same key and two frames never share one.
func originalKey(prefix string, f pipeline.Frame) string {
	v := f.View
	if v == "" {
		v = "view"
	}
	sum := sha256.Sum256([]byte(f.ID))
	return prefix + "/original-" + safeName(v) + "-" + hex.EncodeToString(sum[:8]) + extOf(f)
}

func safeName(s string) string { return pipeline.Token(s) }

func extOf(f pipeline.Frame) string {
	switch f.Format {
	case "jpeg":
		return ".jpg"
	case "png":
		return ".png"
	}
	if e := strings.ToLower(path.Ext(f.Key)); e != "" && len(e) <= 5 {
		return safeExt(e)
	}
	return extForContentType(f.ContentType)
}

func safeExt(e string) string {
	return "." + pipeline.Token(strings.TrimPrefix(e, "."))
}

func extForContentType(ct string) string {
	switch strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0])) {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/webp":
		return ".webp"
	case "application/json":
		return ".json"
	}
	return ".bin"
}
