package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stageName is this stage's name on the DLQ.
const stageName = pipeline.ConsumerDetect

// AdvisorySubject is where the server reports a FRAMES message that exhausted MaxDeliver.
const AdvisorySubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + pipeline.StreamFrames + "." + pipeline.ConsumerDetect

// advisoryQueue makes one worker of many handle each advisory.
const advisoryQueue = "offencecam-detect-dlq"

// dlqMsgID makes DLQ publishes of one FRAMES message idempotent (a retried dead-lettering,
// or the advisory and the reconciler racing).
func dlqMsgID(streamSeq uint64) string {
	return "detect-" + strconv.FormatUint(streamSeq, 10)
}

// quarantineKey is where a dead-lettered frame's object is kept.
func quarantineKey(f pipeline.Frame) string { return "detect/" + f.Key }

// deadLetter sends one held message to the DLQ with its reason, keeps its object in the
// quarantine bucket (unless the object is no longer this frame's) and terminates it. A
// failure on the way hands the message back for a retry.
func (w *Worker) deadLetter(ctx context.Context, h *held, label, reason string, quarantine bool) {
	if ctx.Err() != nil {
		ctx = context.Background() // dead-lettering at shutdown is still worth finishing
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w.log.Warn("frame sent to the DLQ", "frame", h.frame.ID, "passage", h.frame.PassageID, "reason", reason)
	var hdr nats.Header = h.msg.Headers()
	err := w.dlq(ctx, h.msg.Subject(), h.meta.Sequence.Stream, h.meta.NumDelivered, h.msg.Data(), hdr, h.frame, reason, quarantine && h.frame.Key != "")
	if err != nil {
		w.retry(ctx, []*held{h}, "dlq", err)
		return
	}
	if err := h.msg.TermWithReason(label); err != nil {
		w.log.Warn("term failed; the frame may be redelivered and dead-lettered again", "frame", h.frame.ID, "err", err)
	}
	w.m.frames.WithLabelValues(resultFailed).Inc()
	w.m.dlq.WithLabelValues(label).Inc()
	w.release(h)
}

// dlq quarantines (optionally) and publishes the DLQ entry, then deletes the frame object.
func (w *Worker) dlq(ctx context.Context, subject string, seq, deliveries uint64, data []byte, hdr nats.Header,
	f pipeline.Frame, reason string, quarantine bool) error {
	entry := pipeline.NewDLQEntry(stageName, reason, pipeline.StreamFrames, subject, seq, deliveries, data, time.Now())
	if len(hdr) > 0 {
		entry.Headers = map[string]string{}
		for k := range hdr {
			entry.Headers[k] = hdr.Get(k)
		}
	}
	quarantined := false
	if quarantine {
		qkey := quarantineKey(f)
		md := map[string]string{"reason": truncate(reason, 512), "stage": stageName, "frame-id": f.ID, "passage-id": f.PassageID}
		_, err := w.deps.Store.Copy(ctx, f.Bucket, f.Key, w.cfg.QuarantineBucket, qkey, &objstore.PutOptions{Metadata: md})
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			// Already moved by an earlier attempt (or gone): the entry still names the frame.
		case err != nil:
			return fmt.Errorf("quarantine %s/%s: %w", f.Bucket, f.Key, err)
		default:
			quarantined = true
			ref, _ := json.Marshal(map[string]string{"bucket": w.cfg.QuarantineBucket, "key": qkey})
			entry.Extra = pipeline.Extra{"quarantine": ref}
		}
	}
	b, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("marshal DLQ entry: %w", err)
	}
	if _, err := w.deps.JS.Publish(ctx, pipeline.DLQSubject(stageName), b, jetstream.WithMsgID(dlqMsgID(seq)),
		jetstream.WithExpectStream(pipeline.StreamDLQ)); err != nil {
		return fmt.Errorf("publish DLQ entry: %w", err)
	}
	if quarantined {
		if err := w.deps.Store.Delete(ctx, f.Bucket, f.Key); err != nil {
			return fmt.Errorf("delete quarantined %s/%s: %w", f.Bucket, f.Key, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// maxDeliveriesAdvisory is the part of io.nats.jetstream.advisory.v1.max_deliver we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

func (w *Worker) subscribeAdvisories() (*nats.Subscription, error) {
	nc := w.deps.JS.Conn()
	sub, err := nc.QueueSubscribe(AdvisorySubject, advisoryQueue, func(m *nats.Msg) {
		var a maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &a); err != nil || a.StreamSeq == 0 {
			w.log.Error("unreadable max-deliveries advisory", "data", string(m.Data), "err", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		reason := fmt.Sprintf("exceeded max_deliver (%d deliveries)", a.Deliveries)
		if err := w.deadLetterStored(ctx, a.StreamSeq, a.Deliveries, reason); err != nil {
			// The reconciler picks it up later.
			w.log.Error("dead-lettering a max-delivered frame failed", "stream_seq", a.StreamSeq, "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("detect: subscribe %s: %w", AdvisorySubject, err)
	}
	// Make sure the server has the interest before the first fetch, or an early advisory
	// finds no one (the server skips advisories without interest).
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("detect: flush advisory subscription: %w", err)
	}
	return sub, nil
}

// deadLetterStored dead-letters a FRAMES message the consumer gave up on: the work queue
// keeps such a message forever unless it is deleted.
func (w *Worker) deadLetterStored(ctx context.Context, seq, deliveries uint64, reason string) error {
	raw, err := w.frames.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // handled already
	}
	if err != nil {
		return fmt.Errorf("get FRAMES message %d: %w", seq, err)
	}
	f, ferr := pipeline.Decode[pipeline.Frame](raw.Data)
	quarantine := ferr == nil && f.Key != ""
	if quarantine {
		// Only this version of the object is the frame's; a newer upload is another frame.
		info, err := w.deps.Store.Stat(ctx, f.Bucket, f.Key)
		if err == nil && f.ETag != "" && normETag(info.ETag) != normETag(f.ETag) {
			quarantine = false
		}
	}
	if err := w.dlq(ctx, raw.Subject, seq, deliveries, raw.Data, raw.Header, f, reason, quarantine); err != nil {
		return err
	}
	if err := w.frames.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete FRAMES message %d: %w", seq, err)
	}
	w.log.Warn("frame sent to the DLQ", "frame", f.ID, "passage", f.PassageID, "stream_seq", seq, "reason", reason)
	w.m.frames.WithLabelValues(resultFailed).Inc()
	w.m.dlq.WithLabelValues("max_deliver").Inc()
	return nil
}

// reconcileLoop finds FRAMES messages below the consumer's ack floor: in a work queue an
// acked message is removed, so one still there was given up on (MaxDeliver) and its advisory
// was missed (no worker subscribed, or a crash while handling it). A candidate is handled
// only when two passes in a row see it, so a message whose ack is being applied is not
// mistaken for one.
func (w *Worker) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.ReconcileInterval)
	defer t.Stop()
	prev := map[uint64]bool{}
	for {
		prev = w.reconcile(ctx, prev)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcileLimit bounds one pass, so a backlog is worked off over several passes.
const reconcileLimit = 1000

func (w *Worker) reconcile(ctx context.Context, prev map[uint64]bool) map[uint64]bool {
	cur := map[uint64]bool{}
	ci, err := w.cons.Info(ctx)
	if err != nil {
		return prev
	}
	floor := ci.AckFloor.Stream
	si, err := w.frames.Info(ctx)
	if err != nil {
		return prev
	}
	for seq, n := si.State.FirstSeq, 0; seq > 0 && seq <= floor && n < reconcileLimit; n++ {
		raw, err := w.frames.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(pipeline.SubjectFramesAll))
		if err != nil || raw.Sequence > floor {
			break
		}
		cur[raw.Sequence] = true
		if prev[raw.Sequence] {
			if err := w.deadLetterStored(ctx, raw.Sequence, uint64(w.cfg.MaxDeliver),
				fmt.Sprintf("exceeded max_deliver (%d deliveries; found by reconciliation)", w.cfg.MaxDeliver)); err != nil {
				w.log.Error("reconcile: dead-lettering failed", "stream_seq", raw.Sequence, "err", err)
			}
		}
		seq = raw.Sequence + 1
	}
	return cur
}
