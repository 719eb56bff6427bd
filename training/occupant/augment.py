"""Crop sampling and photometric augmentation for the occupant classifier.

No horizontal flips: the belt runs from the door-side shoulder, so a mirrored driver is a
passenger (the detector mirrors passenger crops for the same reason).
"""

import cv2
import numpy as np


def crop_input(sample, size, rng=None, jitter=0.0, box=None):
    """A box of the sample (its labelled box unless given; moved and scaled by up to `jitter`
    of its size when rng is given), cut from the stored crop and stretched to size=(H, W).
    BGR uint8."""
    x0, y0, x1, y1 = box or sample.box
    ox, oy = sample.origin
    w, h = x1 - x0, y1 - y0
    if rng is not None and jitter > 0:
        s = 1 + rng.uniform(-jitter, jitter)
        cx = (x0 + x1) / 2 + rng.uniform(-jitter, jitter) * w
        cy = (y0 + y1) / 2 + rng.uniform(-jitter, jitter) * h
        ar = 1 + rng.uniform(-jitter / 2, jitter / 2)
        w, h = w * s * ar, h * s / ar
        x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    H, W = size
    # An affine map from the box to the output: parts outside the stored crop replicate its
    # border, as the detector's crop of a box that leaves the frame does.
    sx, sy = W / (x1 - x0), H / (y1 - y0)
    m = np.array([[sx, 0, -(x0 - ox) * sx], [0, sy, -(y0 - oy) * sy]], np.float32)
    return cv2.warpAffine(sample.crop, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def photometric(img, rng):
    """Lighting, colour, sensor and compression changes a roadside camera shows."""
    out = img.astype(np.float32)
    if rng.random() < 0.3:  # infrared / monochrome cameras
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        out = np.repeat(g[:, :, None], 3, axis=2)
    else:
        out *= rng.uniform(0.85, 1.15, size=3).astype(np.float32)  # white balance
    contrast = rng.uniform(0.6, 1.4)
    bright = rng.uniform(-40, 40)
    out = (out - 128) * contrast + 128 + bright
    if rng.random() < 0.5:
        gamma = rng.uniform(0.7, 1.5)
        out = 255 * (np.clip(out, 0, 255) / 255) ** gamma
    if rng.random() < 0.3:
        out += rng.normal(0, rng.uniform(2, 10), out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.3:
        q = int(rng.uniform(25, 85))
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return out


def to_tensor_array(imgs):
    """BGR uint8 HWC images to float32 NCHW, 0..255 (what the YOLOX weights expect)."""
    return np.ascontiguousarray(np.stack(imgs).transpose(0, 3, 1, 2), dtype=np.float32)
