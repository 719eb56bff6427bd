"""The labelled driver crops of a roadside-train style data set, and time-grouped folds."""

import csv
import json
import os
import re

import cv2
import numpy as np

PHONE_TARGET = {"yes": 1.0, "likely": 0.7, "no": 0.0}  # `likely` is a weak positive
BELT_TARGET = {"not_worn": 1.0, "worn": 0.0}
# How far outside the labelled crop box the stored crop reaches, so that training can jitter
# the box the way the detector's windshield estimate moves it.
MARGIN = 0.2


class Sample:
    __slots__ = ("stem", "phone", "belt", "box", "crop", "origin", "time", "detected")

    def __init__(self, stem, phone, belt, box):
        self.stem, self.phone, self.belt, self.box = stem, phone, belt, box
        # detected is the driver crop the Go detector cuts (scene model, windshield prior):
        # what the model sees in service. None when the detector found no vehicle.
        self.detected = None
        self.crop = None    # BGR uint8, the box grown by MARGIN (clipped)
        self.origin = None  # (x, y) of the crop in the image
        self.time = frame_time(stem)

    def targets(self):
        """[phone, phone_visible, no_seatbelt, seatbelt_visible] and the mask of known ones."""
        t = np.zeros(4, np.float32)
        m = np.zeros(4, np.float32)
        if self.phone in PHONE_TARGET:
            t[0], m[0] = PHONE_TARGET[self.phone], 1
            t[1] = 1
        if self.phone in PHONE_TARGET or self.phone == "unsure":
            m[1] = 1
        if self.belt in BELT_TARGET:
            t[2], m[2] = BELT_TARGET[self.belt], 1
            t[3] = 1
        if self.belt in BELT_TARGET or self.belt == "unsure":
            m[3] = 1
        return t, m


def frame_time(stem):
    """Seconds of the day from a stem like 1_CAR_15-02-28-123 (None when it has no time)."""
    m = re.search(r"(\d{1,2})-(\d{2})-(\d{2})-(\d{1,3})$", stem)
    if not m:
        return None
    h, mi, s, ms = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def read_labels(path):
    """Rows of labels.tsv: stem, phone, belt, driver crop box (x0,y0,x1,y1); extra columns ignored."""
    out = []
    with open(path, newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 4:
                raise ValueError(f"{path}: row {row!r}: want stem, phone, belt, box")
            box = tuple(float(v) for v in row[3].split(","))
            if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"{path}: {row[0]}: bad crop box {row[3]!r}")
            out.append(Sample(row[0], row[1].strip(), row[2].strip(), box))
    return out


def load_crops(samples, images_dir, progress=None):
    """Reads each image once and keeps only the grown crop around its driver box."""
    for i, s in enumerate(samples):
        path = os.path.join(images_dir, s.stem + ".jpg")
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"cannot read {path}")
        gx0, gy0, gx1, gy1 = img.shape[1], img.shape[0], 0, 0
        for x0, y0, x1, y1 in [b for b in (s.box, s.detected) if b]:
            w, h = x1 - x0, y1 - y0
            gx0 = min(gx0, int(max(0, x0 - MARGIN * w)))
            gy0 = min(gy0, int(max(0, y0 - MARGIN * h)))
            gx1 = max(gx1, int(min(img.shape[1], x1 + MARGIN * w)))
            gy1 = max(gy1, int(min(img.shape[0], y1 + MARGIN * h)))
        s.crop = img[gy0:gy1, gx0:gx1].copy()
        s.origin = (gx0, gy0)
        if progress:
            progress(i + 1, len(samples))
    return samples


def read_detections(path, samples):
    """Sets each sample's detected driver crop from `offencecam analyze --json` output (one
    Detection per line): the largest vehicle's driver box. Returns how many were found."""
    by_stem = {s.stem: s for s in samples}
    found = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
                stem = os.path.splitext(os.path.basename(d["frames"][0]["key"]))[0]
            except (ValueError, KeyError, IndexError) as e:
                raise ValueError(f"{path}:{n}: not a Detection: {e}") from e
            s = by_stem.get(stem)
            vehicles = d.get("vehicles") or []
            if s is None or not vehicles or not vehicles[0].get("driver"):
                continue
            b = vehicles[0]["driver"]
            if b["w"] > 0 and b["h"] > 0:
                s.detected = (b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"])
                found += 1
    return found


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def time_folds(samples, k, gap=10.0):
    """Assigns each sample a fold in 0..k-1. Frames less than `gap` seconds apart (the same
    vehicle, or the one right behind it) share a group and so a fold; groups are dealt to the
    folds so each gets a similar number of positives of each kind."""
    order = sorted(range(len(samples)), key=lambda i: (samples[i].time is None, samples[i].time or 0, samples[i].stem))
    groups, last = [], None
    for i in order:
        t = samples[i].time
        if groups and t is not None and last is not None and t - last < gap:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = t

    def weight(g):
        ph = sum(samples[i].phone in ("yes", "likely") for i in g)
        nb = sum(samples[i].belt == "not_worn" for i in g)
        return (nb, ph, len(g))

    # Largest, rarest-positive groups first, each to the fold that has fewest of that kind.
    groups.sort(key=lambda g: (weight(g), samples[g[0]].stem), reverse=True)
    load = [[0, 0, 0] for _ in range(k)]
    fold = [0] * len(samples)
    for g in groups:
        nb, ph, n = weight(g)
        f = min(range(k), key=lambda j: (load[j][0] if nb else 0, load[j][1] if ph else 0, load[j][2], j))
        for i in g:
            fold[i] = f
        load[f][0] += nb
        load[f][1] += ph
        load[f][2] += n
    return fold
