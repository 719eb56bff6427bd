// Package ingest turns camera uploads into pipeline.Frame messages on the FRAMES work queue.
//
// Three sources feed one path. S3 event notifications (AWS JSON, as MinIO's and versitygw's
// NATS targets send them) arrive on ingest.event_subject; a reconciliation listing walks the
// bucket every ingest.list_interval and finds what the events missed (ingest or NATS down, a
// server without notifications); the drop folder <data>/inbox/<camera>/ (or <data>/inbox/ for
// camera `local`) stores files in the frames bucket once they are completely written. Each
// announced object goes through
//
//	resolve (Stat: the event key URL-decoded, then raw) → per-id lock → seen? (this process's
//	cache, then the `seen` KV) → metadata → validation → publish (Nats-Msg-Id = frame id,
//	waiting for the ack) → mark seen
//
// or, when rejected, through quarantine (copy to the quarantine bucket with `reason` and
// `detail` metadata, delete from frames, mark seen, count, log once). The frame id is
// bucket/key/ETag with the ETag of the Stat, so the same object version is one Frame however
// often and however it is announced: within FRAMES' duplicate window the stream itself drops a
// second publish, beyond it the seen KV does.
//
// # Metadata
//
// Each field is taken from the first source that has it:
//
//  1. user metadata (x-amz-meta-*): camera (or camera-id), captured-at (or captured_at,
//     capture-time), site, lane, direction, view, passage (or passage-id);
//  2. the sidecar: a JSON object next to the image with ingest.sidecar_ext instead of the
//     image's extension (x.jpg → x.json) with camera (camera_id), captured_at, site, lane,
//     direction, view, passage (passage_id). Upload it before the image; an image whose
//     camera is known from nowhere waits up to ingest.metadata_grace for it;
//  3. the key layout, by the first matching ingest.key_templates entry, e.g.
//     {camera}/{yyyy}/{mm}/{dd}/{passage}/{view}.{ext} or {camera}/{ts}_{passage}_{view}.{ext}.
//
// Capture times keep their offset; times without one are in the camera's time_zone. Without
// any capture time the upload time is used and the Frame says so ("captured_at_source":
// "upload_time"; otherwise metadata, sidecar or key). The camera registry (ingest.cameras)
// adds site, location, driver side, speed limit and default view; a camera that is not in it
// is quarantined (unknown_camera), never guessed.
//
// # Passages
//
// Views with a passage id share PassageID <site>-<passage> (the camera's site, or the camera
// when it has none). Without one, frames of one camera within ingest.passage_window of each
// other, each with a view the pass does not have yet, share a passage.
// The open groups of each camera are kept in the `seen` KV, so that every ingest instance,
// and an instance after a restart, gives the views of one pass one passage.
//
// # Backpressure and failures
//
// At most ingest.workers objects are in flight. A full FRAMES (DiscardNew) or a NATS or S3
// outage is retried with capped exponential backoff and full jitter, forever: ingest slows
// down, it never drops. What is failing shows in Ready (for /readyz) and in
// offencecam_ingest_retries_total{op} / offencecam_ingest_publish_retries_total{reason}.
//
// # Metrics
//
//	offencecam_ingest_frames_total{camera,source}
//	offencecam_ingest_rejected_total{reason}
//	offencecam_ingest_duplicates_total
//	offencecam_ingest_deferred_total
//	offencecam_ingest_lag_seconds (histogram, capture → publish)
//	offencecam_ingest_in_flight
//	offencecam_ingest_publish_retries_total{reason}
//	offencecam_ingest_retries_total{op}
//	offencecam_ingest_last_reconciliation_timestamp_seconds
//	offencecam_ingest_bad_events_total (unreadable notifications, kept in the DLQ)
package ingest
