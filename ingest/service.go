package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossborder/offencecam/internal/natsx"
	"github.com/crossborder/offencecam/internal/objstore"
	"github.com/crossborder/offencecam/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what the ingest stage runs on.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream // optional: made from NC when nil
	Store    objstore.Store
	Registry prometheus.Registerer // optional: a private registry when nil
	Log      *slog.Logger          // optional: slog.Default() when nil
	DataDir  string                // base of a relative inbox.dir
	// Now is the clock for received times, settle periods and quarantine stamps; time.Now
	// when nil. Tests set it to another day to prove nothing depends on the day they run.
	Now func() time.Time
}

// Service is a running ingest stage.
type Service struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	store     objstore.Store
	log       *slog.Logger
	dataDir   string
	metrics   *metrics
	templates []*keyTemplate
	zones     map[string]*time.Location
	passages  *passages
	recent    *recentSet
	locks     idLocks
	health    health
	slots     chan struct{} // bounds objects in flight across all sources
	queue     chan ObjectRef
	kv        atomic.Pointer[jetstream.KeyValue]
	waiting   waitingSet
	running   atomic.Bool
	now       func() time.Time
}

// New checks the configuration and builds the stage; Run starts it.
func New(deps Deps, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest: config: %w", err)
	}
	if deps.NC == nil {
		return nil, errors.New("ingest: Deps.NC is required")
	}
	if deps.Store == nil {
		return nil, errors.New("ingest: Deps.Store is required")
	}
	js := deps.JS
	if js == nil {
		var err error
		if js, err = jetstream.New(deps.NC); err != nil {
			return nil, fmt.Errorf("ingest: jetstream: %w", err)
		}
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("ingest: metrics: %w", err)
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		cfg: cfg, nc: deps.NC, js: js, store: deps.Store, log: log.With("stage", "ingest"),
		dataDir: deps.DataDir, metrics: m,
		recent: newRecentSet(200_000), locks: idLocks{busy: map[string]chan struct{}{}},
		health: health{failed: map[string]error{}}, slots: make(chan struct{}, cfg.Workers),
		queue: make(chan ObjectRef, cfg.Workers), zones: map[string]*time.Location{}, now: deps.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.passages = newPassages(cfg.PassageWindow, kvGroups{kv: s.seenKV})
	for _, t := range cfg.KeyTemplates {
		kt, _ := compileTemplate(t) // Validate compiled them already
		s.templates = append(s.templates, kt)
	}
	def, _ := time.LoadLocation(cfg.DefaultTimeZone)
	s.zones[""] = def
	for id, c := range cfg.Cameras {
		loc := def
		if c.TimeZone != "" {
			loc, _ = time.LoadLocation(c.TimeZone)
		}
		s.zones[id] = loc
	}
	return s, nil
}

// Ready is nil while the stage runs and NATS, the store and FRAMES accept its work; otherwise
// it says what is failing (for /readyz).
func (s *Service) Ready() error {
	if !s.running.Load() {
		return errors.New("ingest: not running")
	}
	if err := natsx.Ready(s.nc); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if s.kv.Load() == nil {
		return errors.New("ingest: starting (seen KV not bound yet)")
	}
	return s.health.err()
}

// Run runs the event subscription, the reconciliation listing and the drop folder until ctx
// ends; it returns nil on a clean stop. Objects being processed when ctx ends are left to the
// next start's listing, which is what makes stopping at any moment safe.
func (s *Service) Run(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.worker(ctx) })
	}
	var sub *nats.Subscription
	if s.cfg.EventSubject != "" {
		var err error
		sub, err = s.subscribe(ctx)
		if err != nil {
			stopped := ctx.Err() != nil
			cancel()
			wg.Wait()
			if stopped {
				return nil
			}
			return err
		}
	}
	// Ready only once the server knows the subscription: an event published after Ready
	// reports nil is never missed.
	s.running.Store(true)
	defer s.running.Store(false)
	if s.cfg.ListInterval > 0 {
		wg.Go(func() { s.listLoop(ctx) })
	}
	if s.cfg.Inbox.Enabled {
		wg.Go(func() { s.inboxLoop(ctx) })
	}
	s.log.Info("ingest running", "bucket", s.cfg.Bucket, "event_subject", s.cfg.EventSubject,
		"list_interval", s.cfg.ListInterval, "inbox", s.cfg.Inbox.Enabled, "workers", s.cfg.Workers)
	<-ctx.Done()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	wg.Wait()
	s.log.Info("ingest stopped")
	return nil
}

// start binds the seen KV and makes sure the buckets exist, retrying while NATS or the store
// are not there yet.
func (s *Service) start(ctx context.Context) error {
	if err := s.retry(ctx, "bind_seen_kv", func(ctx context.Context) error {
		kv, err := s.js.KeyValue(ctx, pipeline.KVSeen)
		if err != nil {
			return fmt.Errorf("seen KV: %w", err)
		}
		s.kv.Store(&kv)
		return nil
	}); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if s.cfg.Inbox.Enabled {
		if err := os.MkdirAll(s.inboxDir(), 0o750); err != nil {
			return fmt.Errorf("ingest: inbox.dir: %w", err)
		}
	}
	for _, b := range []string{s.cfg.Bucket, s.cfg.QuarantineBucket} {
		if err := s.retry(ctx, "ensure_bucket", func(ctx context.Context) error {
			return s.store.EnsureBucket(ctx, b)
		}); err != nil {
			return fmt.Errorf("ingest: ensure bucket %s: %w", b, err)
		}
	}
	return nil
}

func (s *Service) seenKV() jetstream.KeyValue { return *s.kv.Load() }

// subscribe receives S3 event notifications. The callback hands refs to the workers and
// blocks while they are all busy, so a burst waits in the client's pending buffer (sized
// large); an event lost anyway (slow consumer, ingest down) is found by the next listing.
func (s *Service) subscribe(ctx context.Context) (*nats.Subscription, error) {
	sub, err := s.nc.QueueSubscribe(s.cfg.EventSubject, s.cfg.EventQueue, func(msg *nats.Msg) {
		refs, err := ParseEvent(msg.Data)
		if err != nil {
			s.metrics.badEvents.Inc()
			s.log.Warn("unreadable S3 event; kept in the DLQ", "subject", msg.Subject, "err", err, "bytes", len(msg.Data))
			s.deadLetter(ctx, msg, err)
		}
		for _, r := range refs {
			if r.Bucket != s.cfg.Bucket {
				continue
			}
			s.announce(ctx, r)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: subscribe %s: %w", s.cfg.EventSubject, err)
	}
	if err := sub.SetPendingLimits(1_000_000, 512<<20); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("ingest: pending limits: %w", err)
	}
	if err := s.retry(ctx, "subscribe", func(context.Context) error { return s.nc.FlushTimeout(5 * time.Second) }); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("ingest: subscribe %s: %w", s.cfg.EventSubject, err)
	}
	return sub, nil
}

// deadLetter keeps a notification ingest cannot read in the DLQ stream, with the reason, so
// an operator can see what a misconfigured server sends. Best effort: the listing still finds
// the object the notification was about.
func (s *Service) deadLetter(ctx context.Context, msg *nats.Msg, reason error) {
	e := pipeline.NewDLQEntry("ingest", reason.Error(), "", msg.Subject, 0, 0, msg.Data, s.now())
	data, err := json.Marshal(e)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = s.js.Publish(pctx, pipeline.DLQSubject("ingest"), data)
	}
	if err != nil {
		s.log.Error("DLQ publish failed", "err", err)
	}
}

// announce queues an announced object. A sidecar is not a frame, but it may be the last
// piece a deferred image was waiting for: that image is queued instead.
func (s *Service) announce(ctx context.Context, r ObjectRef) {
	if ext := s.cfg.SidecarExt; ext != "" && strings.HasSuffix(r.Keys[len(r.Keys)-1], ext) {
		for _, k := range r.Keys {
			if img, ok := s.waiting.take(k); ok {
				img.Source = r.Source
				s.enqueue(ctx, img)
			}
		}
		return
	}
	s.enqueue(ctx, r)
}

// waitingSet remembers images deferred for their sidecar, by sidecar key. It is bounded and
// in memory: an image forgotten here is found by the next listing.
type waitingSet struct {
	mu sync.Mutex
	m  map[string]ObjectRef
}

const maxWaiting = 10_000

func (w *waitingSet) add(sidecar string, r ObjectRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]ObjectRef{}
	}
	if len(w.m) < maxWaiting {
		w.m[sidecar] = r
	}
}

func (w *waitingSet) take(sidecar string) (ObjectRef, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.m[sidecar]
	delete(w.m, sidecar)
	return r, ok
}

func (s *Service) enqueue(ctx context.Context, r ObjectRef) {
	select {
	case s.queue <- r:
	case <-ctx.Done():
	}
}

func (s *Service) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.queue:
			if err := s.Process(ctx, r); err != nil && ctx.Err() == nil {
				s.log.Error("process object", "bucket", r.Bucket, "key", r.Keys[0], "err", err)
			}
		}
	}
}

// Outcome says what Process did with an object.
type Outcome int

const (
	OutcomePublished   Outcome = iota + 1 // a new Frame is in FRAMES
	OutcomeDuplicate                      // this object version was already published or quarantined
	OutcomeQuarantined                    // moved to the quarantine bucket
	OutcomeGone                           // the object no longer exists
	OutcomeDeferred                       // its camera is not known yet; a later listing retries
)

// Process takes one announced object through resolve → dedup → metadata → validation →
// publish (or quarantine). It retries S3 and NATS failures until ctx ends; its error is
// only ever ctx's.
func (s *Service) Process(ctx context.Context, r ObjectRef) error {
	_, err := s.process(ctx, r)
	return err
}

func (s *Service) process(ctx context.Context, r ObjectRef) (Outcome, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	s.metrics.inFlight.Inc()
	defer func() {
		s.metrics.inFlight.Dec()
		<-s.slots
	}()

	info, key, ok, err := s.resolve(ctx, r)
	if err != nil || !ok {
		return OutcomeGone, err
	}
	etag := NormalizeETag(info.ETag)
	id := pipeline.FrameID(r.Bucket, key, etag)
	log := s.log.With("key", key, "etag", etag, "source", r.Source)
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return 0, err
	}
	defer unlock()

	dup, err := s.isSeen(ctx, id)
	if err != nil {
		return 0, err
	}
	if dup {
		s.metrics.duplicates.Inc()
		return OutcomeDuplicate, nil
	}

	f, rej, err := s.describe(ctx, r.Bucket, key, etag, info)
	if err != nil {
		return 0, err
	}
	if rej == nil && f.Camera == "" {
		s.metrics.deferred.Inc()
		if s.cfg.SidecarExt != "" {
			s.waiting.add(sidecarKey(key, s.cfg.SidecarExt), ObjectRef{Bucket: r.Bucket, Keys: []string{key}})
		}
		log.Debug("camera not known yet; waiting for a sidecar", "age", s.now().Sub(info.LastModified))
		return OutcomeDeferred, nil
	}
	var img ImageInfo
	if rej == nil {
		var gone bool
		img, gone, err = s.validate(ctx, r.Bucket, key, etag, info.Size)
		if err != nil {
			if rj, ok := AsRejection(err); ok {
				rej = rj
			} else {
				return 0, err
			}
		} else if gone {
			return OutcomeGone, nil
		}
	}
	if rej != nil {
		if err := s.quarantine(ctx, r.Bucket, key, id, info, rej, log); err != nil {
			return 0, err
		}
		return OutcomeQuarantined, nil
	}

	f.Format, f.Width, f.Height, f.Source = img.Format, img.Width, img.Height, r.Source
	if f.PassageID, err = s.passages.assign(ctx, f.Camera, f.Site, f.PassageID, f.View, f.CapturedAt, f.ID); err != nil {
		return 0, err
	}
	f.ReceivedAt = s.now().UTC()
	// From here the work is nearly done: a stop lets it finish for a moment rather than
	// leave a published frame unmarked (harmless, the stream's window dedups it, but noisy).
	ctx, cancel := graceContext(ctx, shutdownGrace)
	defer cancel()
	dupAck, err := s.publish(ctx, f)
	if err != nil {
		return 0, err
	}
	if err := s.markSeen(ctx, id, seenPublished); err != nil {
		return 0, err
	}
	if dupAck {
		// Published before but not marked seen (a crash in between): the stream's window
		// caught it.
		s.metrics.duplicates.Inc()
		return OutcomeDuplicate, nil
	}
	s.metrics.frames.WithLabelValues(f.Camera, r.Source).Inc()
	s.metrics.lag.Observe(max(0, f.ReceivedAt.Sub(f.CapturedAt).Seconds()))
	log.Debug("frame published", "camera", f.Camera, "passage", f.PassageID, "view", f.View)
	return OutcomePublished, nil
}

// shutdownGrace is how long an object already validated may finish publishing after ctx ends.
const shutdownGrace = 3 * time.Second

// graceContext is ctx, except that it ends grace after ctx does.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(c, func() { t.Stop() })
	})
	return c, func() { stop(); cancel() }
}

// resolve finds the object under the first of the ref's key forms that exists.
func (s *Service) resolve(ctx context.Context, r ObjectRef) (objstore.ObjectInfo, string, bool, error) {
	for _, k := range r.Keys {
		var info objstore.ObjectInfo
		err := s.retry(ctx, "stat", func(ctx context.Context) error {
			var err error
			info, err = s.store.Stat(ctx, r.Bucket, k)
			if errors.Is(err, objstore.ErrNotFound) {
				return permanent(err)
			}
			return err
		})
		switch {
		case err == nil:
			return info, k, true, nil
		case errors.Is(err, objstore.ErrNotFound), errors.Is(err, objstore.ErrInvalid):
			continue
		default:
			return info, "", false, err
		}
	}
	return objstore.ObjectInfo{}, "", false, nil
}

func (s *Service) isSeen(ctx context.Context, id string) (bool, error) {
	if s.recent.has(id) {
		return true, nil
	}
	var seen bool
	err := s.retry(ctx, "seen_get", func(ctx context.Context) error {
		var err error
		seen, err = seenGet(ctx, s.seenKV(), id)
		return err
	})
	if seen {
		s.recent.add(id)
	}
	return seen, err
}

func (s *Service) markSeen(ctx context.Context, id, value string) error {
	err := s.retry(ctx, "seen_put", func(ctx context.Context) error {
		_, err := s.seenKV().Put(ctx, seenKey(id), []byte(value))
		return err
	})
	if err == nil {
		s.recent.add(id)
	}
	return err
}

// describe gathers the frame's metadata and applies the camera registry. A Frame with an
// empty Camera and no rejection means "not known yet" (the object is younger than
// metadata_grace and may still get its sidecar).
func (s *Service) describe(ctx context.Context, bucket, key, etag string, info objstore.ObjectInfo) (pipeline.Frame, *Rejection, error) {
	user := fromUserMetadata(info.Metadata)
	var side fields
	// A camera that names itself and its capture time in the upload's metadata does not use
	// sidecars; not looking for one saves a request per frame.
	if s.cfg.SidecarExt != "" && (user.Camera == "" || user.CapturedAt == "") {
		var rej *Rejection
		var err error
		side, rej, err = s.readSidecar(ctx, bucket, key)
		if err != nil || rej != nil {
			return pipeline.Frame{}, rej, err
		}
	}
	m := mergeFields(user, side, fromKey(s.templates, key))
	f := pipeline.Frame{
		V: pipeline.Version, ID: pipeline.FrameID(bucket, key, etag), Bucket: bucket, Key: key,
		ETag: etag, Size: info.Size, ContentType: info.ContentType,
	}
	if m.Camera == "" {
		if s.now().Sub(info.LastModified) < s.cfg.MetadataGrace {
			return f, nil, nil
		}
		return f, reject(ReasonUnknownCamera, "no camera id in user metadata, sidecar or key after %s", s.cfg.MetadataGrace), nil
	}
	cam, ok := s.cfg.Cameras[m.Camera]
	if !ok {
		return f, reject(ReasonUnknownCamera, "camera %q is not in the registry", m.Camera), nil
	}
	loc := s.zones[m.Camera]
	f.Camera = m.Camera
	if m.CapturedAt != "" {
		t, err := ParseCaptureTime(m.CapturedAt, loc)
		if err != nil {
			return f, reject(ReasonBadMetadata, "%s (from %s)", err, m.CapturedFrom), nil
		}
		f.CapturedAt = t
	} else {
		f.CapturedAt = info.LastModified.In(loc)
		m.CapturedFrom = FromUpload
	}
	f.Extra = pipeline.Extra{"captured_at_source": json.RawMessage(`"` + m.CapturedFrom + `"`)}
	view := strings.ToLower(m.View)
	if view == "" {
		view = cam.DefaultView
		if view == "" {
			view = pipeline.ViewFront
		}
	}
	if !validViews[view] {
		return f, reject(ReasonBadMetadata, "view %q is not front, overhead or rear", m.View), nil
	}
	f.View = view
	f.Site = firstNonEmpty(m.Site, cam.Site)
	f.Lane = m.Lane
	f.Direction = firstNonEmpty(m.Direction, cam.Direction)
	f.PassageID = m.Passage // scoped into a passage id by the caller
	f.DriverSide = firstNonEmpty(cam.DriverSide, "left")
	f.SpeedLimitKMH = cam.SpeedLimitKMH
	loc2 := &pipeline.Location{Road: cam.Road, KmPoint: cam.KmPoint, Direction: f.Direction,
		Municipality: cam.Municipality, Country: cam.Country, Lat: cam.Lat, Lon: cam.Lon}
	if *loc2 != (pipeline.Location{}) {
		f.Location = loc2
	}
	return f, nil, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// maxSidecarBytes bounds a sidecar read: it is a handful of fields.
const maxSidecarBytes = 64 << 10

func (s *Service) readSidecar(ctx context.Context, bucket, key string) (fields, *Rejection, error) {
	sk := sidecarKey(key, s.cfg.SidecarExt)
	if sk == key {
		return fields{}, nil, nil
	}
	var data []byte
	err := s.retry(ctx, "get_sidecar", func(ctx context.Context) error {
		rc, _, err := s.store.Get(ctx, bucket, sk)
		if errors.Is(err, objstore.ErrNotFound) {
			return permanent(err)
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(io.LimitReader(rc, maxSidecarBytes+1))
		return err
	})
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return fields{}, nil, nil
	case err != nil:
		return fields{}, nil, err
	case len(data) > maxSidecarBytes:
		return fields{}, reject(ReasonBadMetadata, "sidecar %s is larger than %d bytes", sk, maxSidecarBytes), nil
	}
	f, err := ParseSidecar(data)
	if err != nil {
		return fields{}, reject(ReasonBadMetadata, "sidecar %s: %v", sk, err), nil
	}
	return f, nil, nil
}

// errSuperseded: the key was overwritten after the Stat; the version this call is about no
// longer exists, and the new one is announced on its own.
var errSuperseded = errors.New("object overwritten since it was announced")

// validate reads the object once through ValidateImage; a read failure half-way is retried
// from the start. gone reports the object (this version of it) no longer exists.
func (s *Service) validate(ctx context.Context, bucket, key, etag string, size int64) (img ImageInfo, gone bool, _ error) {
	var rej *Rejection
	err := s.retry(ctx, "get", func(ctx context.Context) error {
		rc, ginfo, err := s.store.Get(ctx, bucket, key)
		if errors.Is(err, objstore.ErrNotFound) {
			return permanent(err)
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		if ge := NormalizeETag(ginfo.ETag); ge != "" && ge != etag {
			return permanent(errSuperseded)
		}
		img, err = ValidateImage(rc, size, s.cfg.Limits)
		if r, ok := AsRejection(err); ok {
			rej = r
			return nil
		}
		return err
	})
	switch {
	case errors.Is(err, objstore.ErrNotFound), errors.Is(err, errSuperseded):
		return img, true, nil
	case err != nil:
		return img, false, err
	case rej != nil:
		return img, false, rej
	}
	return img, false, nil
}

// quarantine copies a rejected object to the quarantine bucket with the reason in its
// metadata, removes it from the frames bucket and remembers the verdict, so it is counted
// and logged once.
func (s *Service) quarantine(ctx context.Context, bucket, key, id string, info objstore.ObjectInfo, rej *Rejection, log *slog.Logger) error {
	md := make(map[string]string, len(info.Metadata)+5)
	for k, v := range info.Metadata {
		md[k] = v
	}
	md["reason"] = rej.Reason
	md["detail"] = asciiHeader(rej.Detail)
	md["source-bucket"] = bucket
	md["source-etag"] = NormalizeETag(info.ETag)
	md["quarantined-at"] = s.now().UTC().Format(time.RFC3339)
	err := s.retry(ctx, "quarantine_copy", func(ctx context.Context) error {
		_, err := s.store.Copy(ctx, bucket, key, s.cfg.QuarantineBucket, key, &objstore.PutOptions{ContentType: info.ContentType, Metadata: md})
		if errors.Is(err, objstore.ErrNotFound) {
			return permanent(err) // removed meanwhile (another ingest process quarantined it)
		}
		return err
	})
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return err
	}
	if err := s.retry(ctx, "quarantine_delete", func(ctx context.Context) error {
		return s.store.Delete(ctx, bucket, key)
	}); err != nil {
		return err
	}
	if err := s.markSeen(ctx, id, seenQuarantined+rej.Reason); err != nil {
		return err
	}
	s.metrics.rejected.WithLabelValues(rej.Reason).Inc()
	log.Warn("upload quarantined", "reason", rej.Reason, "detail", rej.Detail, "quarantine_bucket", s.cfg.QuarantineBucket)
	return nil
}

// asciiHeader keeps metadata values printable ASCII: S3 metadata travels in HTTP headers.
func asciiHeader(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 512 {
		b = b[:512]
	}
	return string(b)
}

// publish puts the Frame on FRAMES with its id as Nats-Msg-Id and waits for the ack. A full
// stream (DiscardNew) or a NATS outage is retried with backoff until it takes the frame:
// ingest slows down, it never drops. dup reports that the stream already had this id.
func (s *Service) publish(ctx context.Context, f pipeline.Frame) (dup bool, err error) {
	data, err := json.Marshal(f)
	if err != nil {
		return false, fmt.Errorf("ingest: marshal frame: %w", err)
	}
	subject := pipeline.FrameSubject(f.Camera)
	err = s.retry(ctx, "publish", func(ctx context.Context) error {
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, f.ID)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ack, err := s.js.PublishMsg(pctx, msg, jetstream.WithExpectStream(pipeline.StreamFrames))
		if err != nil {
			reason := "error"
			if isStreamFull(err) {
				reason = "full"
				err = fmt.Errorf("%s stream full: %w", pipeline.StreamFrames, err)
			}
			s.metrics.publishRetries.WithLabelValues(reason).Inc()
			return err
		}
		dup = ack.Duplicate
		return nil
	})
	return dup, err
}

// isStreamFull recognises the DiscardNew refusal of a stream at its message or byte limit.
func isStreamFull(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "maximum messages exceeded") || strings.Contains(msg, "maximum bytes exceeded") ||
		strings.Contains(msg, "resource limits exceeded")
}
