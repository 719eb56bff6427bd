#!/usr/bin/python3
"""Trains, cross-validates and exports the occupant classifier (phone, seat belt).

    /usr/bin/python3 training/occupant/train.py [--smoke] [--out DIR] [--ship DIR]

Reads ../shared/data/roadside-train (OFFENCECAM_SHARED) and YOLOX-nano's ONNX (the model cache
or ../shared/models); writes out-of-fold scores, metrics with bootstrap intervals, the ONNX
model, its manifest and a model card. `make train` ships the result into models/.
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import augment  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402
from model import HEADS, Exported, OccupantNet, probabilities  # noqa: E402

NAME = "occupant"
VERSION = "1"
SHARED = os.environ.get("OFFENCECAM_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
BASE_SHA256 = "e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def find_base(explicit):
    cands = [explicit] if explicit else [
        os.path.join(os.environ.get("OFFENCECAM_MODELS_CACHE", "var/models"), "yolox_nano.onnx"),
        os.path.join(SHARED, "models", "yolox_nano.onnx"),
    ]
    for c in cands:
        if c and os.path.exists(c):
            with open(c, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            if got != BASE_SHA256:
                sys.exit(f"train: {c}: sha256 {got}, want {BASE_SHA256} (the YOLOX-nano COCO export)")
            return c
    sys.exit(f"train: YOLOX-nano ONNX not found in {cands}; run `make models` first")


@torch.no_grad()
def service_box(s):
    """The crop the detector will judge: its own (the scene model's vehicle and the windshield
    prior) when it found the vehicle, else the labelled one."""
    return s.detected or s.box


def training_boxes(s):
    """The crops augmented views are cut from: the labelled one, and the detector's when it
    still shows the driver (a prior gone wrong on a bus shows the dashboard, and the labels
    would teach nonsense there)."""
    if s.detected and data.iou(s.detected, s.box) >= 0.3:
        return [s.box, s.detected]
    return [s.box]


def precompute(samples, size, views, base, seed, batch=32):
    """The frozen stem's output for each sample: view 0 is the crop the detector will judge
    (service_box) as it is, views 1..views are augmented (box jitter, lighting, sensor,
    compression), cut alternately from the labelled and the detector's crop. The stem is most
    of the compute and never changes, so every fold and epoch shares these; an epoch draws one
    augmented view per sample. Stored as float16: [N, views+1, C, h, w]."""
    rng = np.random.default_rng(seed)
    stem = OccupantNet(base).stem.eval()
    feats = None
    start = time.time()
    for i in range(0, len(samples), batch):
        part = samples[i:i + batch]
        per_view = []
        for v in range(views + 1):
            imgs = []
            for s in part:
                if v == 0:
                    imgs.append(augment.crop_input(s, size, box=service_box(s)))
                else:
                    boxes = training_boxes(s)
                    box = boxes[v % len(boxes)]
                    imgs.append(augment.photometric(augment.crop_input(s, size, rng, jitter=0.12, box=box), rng))
            per_view.append(stem(torch.from_numpy(augment.to_tensor_array(imgs)))[0].half())
        f = torch.stack(per_view, 1)
        if feats is None:
            feats = torch.empty((len(samples),) + tuple(f.shape[1:]), dtype=torch.float16)
        feats[i:i + len(part)] = f
        done = i + len(part)
        el = time.time() - start
        log(f"  stem features {done}/{len(samples)} ({el:.0f} s, {el / done * (len(samples) - done):.0f} s left)")
    return feats


def batches(idx, feats, targets, masks, rng, batch, train):
    idx = np.array(idx)
    if train:
        rng.shuffle(idx)
    views = feats.shape[1]
    for i in range(0, len(idx), batch):
        part = idx[i:i + batch]
        v = rng.integers(1, views, size=len(part)) if train and views > 1 else np.zeros(len(part), int)
        x = feats[torch.from_numpy(part), torch.from_numpy(v)].float()
        yield x, targets[part], masks[part]


def loss_fn(logits, target, mask, pos_weight):
    l = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos_weight)
    w = torch.tensor([1.0, 0.5, 1.0, 0.5])
    return (l * mask * w).sum() / mask.sum().clamp(min=1)


def fit(samples, idx, feats, args, base, tag):
    train_set = [samples[i] for i in idx]
    seed_all(args.seed)
    rng = np.random.default_rng(args.seed)
    net = OccupantNet(base)
    head_params = list(net.lateral.parameters()) + list(net.fc.parameters())
    opt = torch.optim.AdamW([
        {"params": net.trunk.parameters(), "lr": args.lr * 0.3},
        {"params": head_params, "lr": args.lr},
    ], weight_decay=1e-4)
    steps = args.epochs * ((len(idx) + args.batch - 1) // args.batch)
    t, m = zip(*(s.targets() for s in samples))
    targets, masks = torch.from_numpy(np.stack(t)), torch.from_numpy(np.stack(m))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr * 0.3, args.lr], total_steps=max(1, steps), pct_start=0.15)
    n_nw = sum(s.belt == "not_worn" for s in train_set)
    n_w = sum(s.belt == "worn" for s in train_set)
    # Rare not-worn belts count more, by the square root of the imbalance (full weight makes
    # the head call every dark shirt unbelted).
    pos_weight = torch.tensor([1.0, 1.0, float(np.sqrt(max(1, n_w) / max(1, n_nw))), 1.0])
    start = time.time()
    done = 0
    for ep in range(args.epochs):
        net.train()
        tot, cnt = 0.0, 0
        for x, t, m in batches(idx, feats, targets, masks, rng, args.batch, True):
            opt.zero_grad()
            loss = loss_fn(net.head(x), t, m, pos_weight)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(x)
            cnt += len(x)
            done += 1
        el = time.time() - start
        eta = el / (ep + 1) * (args.epochs - ep - 1)
        log(f"{tag}: epoch {ep + 1}/{args.epochs} loss {tot / max(1, cnt):.4f} ({el:.0f} s, {eta:.0f} s left)")
    return net


@torch.no_grad()
def predict(net, idx, feats, batch=64):
    """Scores of the unaugmented crops (view 0)."""
    net.eval()
    out = [net.head(feats[idx[i:i + batch], 0].float()).numpy() for i in range(0, len(idx), batch)]
    return probabilities(np.concatenate(out)) if out else np.zeros((0, 4), np.float32)


def evaluate(samples, scores, args, gates=None):
    """Phone (yes vs no) and belt-not-worn (not_worn vs worn) on out-of-fold scores, at the
    visibility gate and threshold chosen here (or given in gates: name -> (gate, thr)).
    The operating point is chosen on `yes` alone, as `offencecam eval --occupants` counts: a
    fine needs a phone seen in the hand, and `likely` (the calling pose, no phone made out)
    is a weak positive for training only; it is reported beside."""
    res = {}
    for name, col, pos, neg in (("phone", 0, ("yes",), ("no",)),
                                ("seatbelt", 2, ("not_worn",), ("worn",))):
        attr = "phone" if name == "phone" else "belt"
        keep = [i for i, s in enumerate(samples) if getattr(s, attr) in pos + neg]
        uns = [i for i, s in enumerate(samples) if getattr(s, attr) == "unsure"]
        y = np.array([1 if getattr(samples[i], attr) in pos else 0 for i in keep])
        prob, vis = scores[keep, col], scores[keep, col + 1]
        if gates:
            gate, thr = gates[name]
            chosen = "given"
        else:
            best = metrics.choose_gate(prob, vis, y, scores[uns, col], scores[uns, col + 1], args.min_precision, args.max_unsure)
            if best is None:
                gate, thr, chosen = 0.5, 0.5, "none reaches precision %.2f: 0.5/0.5" % args.min_precision
            else:
                gate, thr, chosen = best[0], best[1], "precision>=%.2f, unsure flagged<=%.2f" % (args.min_precision, args.max_unsure)
        sc = metrics.gated(prob, vis, gate)
        r = metrics.report(sc, y, thr, seed=args.seed)
        r["gate"] = gate
        r["chosen_by"] = chosen
        r["unsure_flagged"] = round(float(np.mean((scores[uns, col + 1] >= gate) & (scores[uns, col] >= thr))), 3) if uns else 0.0
        r["unsure_n"] = len(uns)
        t90 = metrics.choose_threshold(sc, y, 0.9)
        r["threshold_precision_0.9"] = None if t90 is None else round(t90, 4)
        r["ungated_average_precision"] = round(metrics.average_precision(prob, y), 3)
        if name == "phone":
            lk = [i for i, s in enumerate(samples) if s.phone in ("yes", "likely", "no")]
            yl = np.array([0 if samples[i].phone == "no" else 1 for i in lk])
            wl = metrics.report(metrics.gated(scores[lk, 0], scores[lk, 1], gate), yl, thr, seed=args.seed)
            r["with_likely"] = {k: wl[k] for k in ("precision", "recall", "precision_ci95", "recall_ci95", "tp", "fp", "fn", "n")}
        res[name] = r
    return res


def export(net, path, size):
    net.eval()
    H, W = size
    dummy = torch.rand(1, 3, H, W) * 255
    torch.onnx.export(Exported(net), dummy, path, input_names=["image"], output_names=["scores"],
                      opset_version=13, do_constant_folding=True)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_manifest(path, onnx_name, onnx_path, size, res, args):
    H, W = size
    p, b = res["phone"], res["seatbelt"]
    text = f"""# Written by training/occupant/train.py (`make train`); edit the recipe, not this file.
name: {NAME}
version: "{VERSION}"
kind: model
task: classify
description: Occupant classifier on the driver crop; phone held and seat belt not worn, each with its visibility.
licence: Apache-2.0
files:
  - name: {onnx_name}
    sha256: {sha256(onnx_path)}
    size: {os.path.getsize(onnx_path)}
    sources:
      - embedded: {onnx_name}
      - mirror: {onnx_name}
notes: >-
  Trained by this project (training/occupant, `make train`) from YOLOX-nano's COCO backbone
  (Apache-2.0, Megvii) on ../shared/data/roadside-train (CC BY 4.0). Scores are joint
  probabilities: phone = P(phone held and the hands can be judged), no_seatbelt = P(belt not
  worn and the chest can be judged). Cross-validated figures and failure modes:
  training/occupant/MODEL_CARD.md.
input:
  name: image
  type: float32
  shape: [1, 3, {H}, {W}]
  layout: NCHW
  color_order: BGR
  scale: 1
  resize: stretch
outputs:
  - name: scores
    type: float32
    shape: [1, 4]
decoder:
  type: sigmoid
  params:
    # The driver crop: the image-side half of the windshield the driver sits behind, grown
    # as the labels were made (fractions of the windshield box, driver on the image's right).
    crop: {{x: 0.4, y: -0.05, w: 0.65, h: 1.25}}
thresholds:
  # Chosen on out-of-fold scores: the visibility gate and threshold with the most recall at
  # precision {args.min_precision} that flag at most {args.max_unsure} of the images a person could not judge.
  classes: {{phone: {p['threshold']}, phone_visible: {p['gate']}, no_seatbelt: {b['threshold']}, seatbelt_visible: {b['gate']}}}
classes:
  - {{id: 0, name: phone, role: phone}}
  - {{id: 1, name: phone_visible, role: phone_visible}}
  - {{id: 2, name: no_seatbelt, role: no_seatbelt}}
  - {{id: 3, name: seatbelt_visible, role: seatbelt_visible}}
"""
    with open(path, "w") as f:
        f.write(text)


def fmt_ci(ci):
    return "–" if not ci else f"{ci[0]:.2f}–{ci[1]:.2f}"


def write_card(path, res, counts, args, size, disagreements, elapsed):
    H, W = size
    p, b = res["phone"], res["seatbelt"]
    lines = [
        f"# Model card: {NAME} v{VERSION}",
        "",
        "Written by `training/occupant/train.py` (`make train`).",
        "",
        "## What it does",
        f"Input: the driver crop (BGR, stretched to {W}×{H}). Output `scores` [1, 4]: the probabilities",
        "phone (held, given the hands can be judged), phone_visible, no_seatbelt (given the chest can",
        "be judged), seatbelt_visible. A state is judged only where its visibility reaches the gate",
        "below; elsewhere (a dark cabin, dark clothing) it stays unknown and is never an offence.",
        "",
        "## Base weights and data",
        "- Base: YOLOX-nano COCO (Megvii, Apache-2.0), the ONNX export in ../shared/models",
        f"  (sha256 {BASE_SHA256[:16]}…): its stem is frozen, the rest of the backbone is fine-tuned.",
        "- Data: ../shared/data/roadside-train (aiactive \"seat_belt and mobile\", CC BY 4.0; per-driver",
        "  labels made for this project, CC BY 4.0).",
        f"- Labels used: phone yes {counts['yes']}, likely {counts['likely']} (weak positive, target 0.7),",
        f"  no {counts['no']}, unsure {counts['p_unsure']} (visibility head only); belt worn {counts['worn']},",
        f"  not_worn {counts['not_worn']}, unsure {counts['b_unsure']}.",
        "",
        "## Cross-validated figures",
        f"{args.folds}-fold, folds grouped by capture time (frames < 10 s apart share a fold), every figure",
        "out-of-fold, each image scored on the crop the detector cuts in service (its vehicle box and",
        "windshield prior; the labelled crop where it found no vehicle). Intervals: 95 % bootstrap",
        "over images. Thresholds chosen on these scores (the lowest reaching the target precision),",
        "so the figures at them are slightly optimistic.",
        "",
        "| offence | gate | threshold | precision (95 % CI) | recall (95 % CI) | tp/fp/fn | unsure flagged | AP (ungated) |",
        "|---|---:|---:|---|---|---|---:|---:|",
        f"| phone (yes vs no, as `eval --occupants` counts) | {p['gate']} | {p['threshold']} | {p['precision']} ({fmt_ci(p['precision_ci95'])}) | {p['recall']} ({fmt_ci(p['recall_ci95'])}) | {p['tp']}/{p['fp']}/{p['fn']} | {p['unsure_flagged']} of {p['unsure_n']} | {p['ungated_average_precision']} |",
        f"| phone (yes + likely vs no) | {p['gate']} | {p['threshold']} | {p['with_likely']['precision']} ({fmt_ci(p['with_likely']['precision_ci95'])}) | {p['with_likely']['recall']} ({fmt_ci(p['with_likely']['recall_ci95'])}) | {p['with_likely']['tp']}/{p['with_likely']['fp']}/{p['with_likely']['fn']} | | |",
        f"| belt not worn (vs worn) | {b['gate']} | {b['threshold']} | {b['precision']} ({fmt_ci(b['precision_ci95'])}) | {b['recall']} ({fmt_ci(b['recall_ci95'])}) | {b['tp']}/{b['fp']}/{b['fn']} | {b['unsure_flagged']} of {b['unsure_n']} | {b['ungated_average_precision']} |",
        "",
        "\"Unsure flagged\" is the share of images labelled `unsure` (a person could not judge them)",
        "that the model would flag: the gate is chosen to keep it low, since most are dark clothing",
        "or glare over a belt that may well be worn.",
        "",
        f"Threshold for precision ≥ 0.9: phone {p['threshold_precision_0.9']}, belt {b['threshold_precision_0.9']}.",
        "",
        "## Known failure modes",
        "- Trained on daylight colour frames of one country's cameras; infrared night frames are only",
        "  simulated (grey-scale augmentation). Expect lower recall at night until reviewed cases",
        "  from the field are added (`offencecam dataset export`).",
        "- The crop comes from the windshield estimate; a wrong windshield (a bus, a truck seen from",
        "  high up) gives a crop without the driver: the visibility heads then keep the state unknown.",
        "- Few unbelted examples (see the counts): the belt figures have wide intervals.",
        "- Label noise: the out-of-fold scores that disagree most with their labels are listed below.",
        "  Checked by eye (LABEL_NOISE.md): most are ambiguous crops rather than plain mistakes;",
        "  `belt not_worn` is the noisiest label (an estimated 5–15 % wrong or better `unsure`).",
        "",
        "| stem | label | score |",
        "|---|---|---:|",
    ]
    lines += [f"| {s} | {l} | {v:.3f} |" for s, l, v in disagreements]
    lines += ["", f"Training: {args.epochs} epochs, batch {args.batch}, lr {args.lr}, seed {args.seed}, "
              f"input {W}×{H}; {elapsed / 60:.1f} min on {torch.get_num_threads()} CPU threads.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(SHARED, "data", "roadside-train"))
    ap.add_argument("--base", default="", help="YOLOX-nano ONNX (default: model cache, then ../shared/models)")
    ap.add_argument("--out", default="var/training/occupant", help="working directory for this run")
    ap.add_argument("--ship", default="", help="copy the model, manifest and card here (models/)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--views", type=int, default=8, help="augmented views per sample")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--size", default="192x256", help="input HxW")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-precision", type=float, default=0.85)
    ap.add_argument("--max-unsure", type=float, default=0.2, help="most of the unsure images a gate may flag")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--smoke", type=int, default=0, help="N images, 1 epoch, 2 folds: the recipe end to end")
    ap.add_argument("--no-cv", action="store_true", help="skip cross-validation (final model only)")
    ap.add_argument("--detections", default="",
                    help="`offencecam analyze --json` of the images: train and evaluate on the detector's own driver crops too")
    ap.add_argument("--reselect", action="store_true",
                    help="no training: choose gates and thresholds again from OUT's out-of-fold scores, rewrite manifest and card")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    H, W = (int(v) for v in args.size.lower().split("x"))
    size = (H, W)
    args.size = size
    if args.smoke:
        args.epochs, args.folds, args.views = 1, 2, 1
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    base = find_base(args.base)
    samples = data.read_labels(os.path.join(args.data, "labels.tsv"))
    samples = [s for s in samples if not (s.phone == "unsure" and s.belt == "unsure")] + \
              [s for s in samples if s.phone == "unsure" and s.belt == "unsure"]
    if args.smoke:
        samples = sorted(samples, key=lambda s: s.stem)[:args.smoke]
    if args.reselect:
        return reselect(args, samples, size, t0)
    if args.detections:
        found = data.read_detections(args.detections, samples)
        close = sum(1 for s in samples if s.detected and data.iou(s.detected, s.box) >= 0.5)
        log(f"detector crops for {found} of {len(samples)} frames ({close} with IoU >= 0.5 against the labelled crop)")
    log(f"reading {len(samples)} crops from {args.data}")
    data.load_crops(samples, os.path.join(args.data, "images"),
                    progress=lambda i, n: (i % 200 == 0 or i == n) and log(f"  {i}/{n} crops"))
    counts = label_counts(samples)
    log(f"labels: {counts}")

    log(f"stem features: {args.views} augmented views and the plain crop per sample")
    feats = precompute(samples, size, args.views, base, args.seed)
    res, disagreements = None, []
    if not args.no_cv:
        folds = data.time_folds(samples, args.folds)
        oof = np.zeros((len(samples), 4), np.float32)
        for k in range(args.folds):
            tr = [i for i, f in enumerate(folds) if f != k]
            te = [i for i, f in enumerate(folds) if f == k]
            log(f"fold {k + 1}/{args.folds}: train {len(tr)}, test {len(te)}")
            if not tr or not te:
                sys.exit(f"train: fold {k + 1} has no training or no test frames: the frames fall in fewer "
                         f"than {args.folds} time groups (frames < 10 s apart share a group); use fewer --folds")
            net = fit(samples, tr, feats, args, base, f"fold {k + 1}/{args.folds}")
            oof[te] = predict(net, te, feats)
            export(net, os.path.join(args.out, f"{NAME}-fold{k}.onnx"), size)
            part = evaluate([samples[i] for i in te], oof[te], args)
            log(f"fold {k + 1}/{args.folds}: phone AP {part['phone']['ungated_average_precision']}, belt-not-worn AP {part['seatbelt']['ungated_average_precision']}")
        res = evaluate(samples, oof, args)
        with open(os.path.join(args.out, "oof.tsv"), "w") as f:
            f.write("# stem\tfold\tphone\tbelt\t" + "\t".join(HEADS) + "\n")
            for s, k, sc in zip(samples, folds, oof):
                f.write(f"{s.stem}\t{k}\t{s.phone}\t{s.belt}\t" + "\t".join(f"{v:.4f}" for v in sc) + "\n")
        with open(os.path.join(args.out, "folds.tsv"), "w") as f:
            f.write("# stem\tfold\n")
            for s, k in zip(samples, folds):
                f.write(f"{s.stem}\t{k}\n")
        disagreements = worst(samples, oof)
        log("out-of-fold: " + json.dumps({k: {m: v[m] for m in ("gate", "threshold", "precision", "recall", "precision_ci95", "recall_ci95", "unsure_flagged", "ungated_average_precision")} for k, v in res.items()}))

    log(f"final model on all {len(samples)} crops")
    net = fit(samples, list(range(len(samples))), feats, args, base, "final")
    onnx_name = f"{NAME}-v{VERSION}.onnx"
    onnx_path = os.path.join(args.out, onnx_name)
    export(net, onnx_path, size)
    if res is None:
        res = {k: {"gate": 0.5, "threshold": 0.5, "chosen_by": "no cross-validation"} for k in ("phone", "seatbelt")}
    write_outputs(args, samples, size, res, counts, disagreements, onnx_name, t0)


def no_nan(v):
    """JSON has no NaN: an undefined figure (precision with no prediction) is null."""
    if isinstance(v, dict):
        return {k: no_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [no_nan(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v


def label_counts(samples):
    counts = {k: sum(s.phone == k for s in samples) for k in ("yes", "likely", "no")}
    counts["p_unsure"] = sum(s.phone == "unsure" for s in samples)
    counts.update({k: sum(s.belt == k for s in samples) for k in ("worn", "not_worn")})
    counts["b_unsure"] = sum(s.belt == "unsure" for s in samples)
    return counts


def worst(samples, oof, n=12):
    """The out-of-fold scores that disagree most with their labels (label noise or errors)."""
    dis = []
    for s, sc in zip(samples, oof):
        if s.phone in ("yes", "likely", "no"):
            dis.append((abs((1.0 if s.phone != "no" else 0.0) - sc[0]), s.stem, f"phone {s.phone}", float(sc[0])))
        if s.belt in ("worn", "not_worn"):
            dis.append((abs((1.0 if s.belt == "not_worn" else 0.0) - sc[2]), s.stem, f"belt {s.belt}", float(sc[2])))
    return [d[1:] for d in sorted(dis, reverse=True)[:n]]


def reselect(args, samples, size, t0):
    by_stem = {}
    with open(os.path.join(args.out, "oof.tsv")) as f:
        for line in f:
            if line.startswith("#"):
                continue
            row = line.rstrip("\n").split("\t")
            by_stem[row[0]] = [float(v) for v in row[4:8]]
    missing = [s.stem for s in samples if s.stem not in by_stem]
    if missing:
        sys.exit(f"train: --reselect: {len(missing)} labelled stems have no out-of-fold score in {args.out}/oof.tsv (e.g. {missing[0]})")
    oof = np.array([by_stem[s.stem] for s in samples], np.float32)
    res = evaluate(samples, oof, args)
    log("out-of-fold: " + json.dumps({k: {m: v[m] for m in ("gate", "threshold", "precision", "recall", "unsure_flagged")} for k, v in res.items()}))
    with open(os.path.join(args.out, "metrics.json")) as f:
        trained = json.load(f)
    args.epochs, args.folds, args.views = trained["epochs"], trained["folds"], trained.get("views", args.views)
    write_outputs(args, samples, size, res, label_counts(samples), worst(samples, oof), f"{NAME}-v{VERSION}.onnx", t0,
                  elapsed=trained["minutes"] * 60)


def write_outputs(args, samples, size, res, counts, disagreements, onnx_name, t0, elapsed=None):
    onnx_path = os.path.join(args.out, onnx_name)
    if elapsed is None:
        elapsed = time.time() - t0
    summary = {"model": onnx_name, "sha256": sha256(onnx_path), "size": list(size), "epochs": args.epochs,
               "views": args.views, "folds": args.folds, "max_unsure": args.max_unsure, "min_precision": args.min_precision, "seed": args.seed, "n": len(samples), "labels": counts,
               "out_of_fold": res, "minutes": round(elapsed / 60, 1),
               "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(no_nan(summary), f, indent=2)
    manifest = os.path.join(args.out, f"{NAME}.yaml")
    write_manifest(manifest, onnx_name, onnx_path, size, res, args)
    card = os.path.join(args.out, "MODEL_CARD.md")
    if "precision" in res["phone"]:
        write_card(card, res, counts, args, size, disagreements, elapsed)
    if args.ship:
        import shutil
        shutil.copy(onnx_path, os.path.join(args.ship, "weights", onnx_name))
        shutil.copy(manifest, os.path.join(args.ship, f"{NAME}.yaml"))
        here = os.path.dirname(os.path.abspath(__file__))
        shutil.copy(os.path.join(args.out, "metrics.json"), os.path.join(here, "metrics.json"))
        if os.path.exists(card):
            shutil.copy(card, os.path.join(here, "MODEL_CARD.md"))
        log(f"shipped {onnx_name} into {args.ship}")
    log(f"done in {elapsed / 60:.1f} min: {onnx_path}")


if __name__ == "__main__":
    main()
