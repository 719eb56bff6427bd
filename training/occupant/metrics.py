"""Precision, recall, thresholds and bootstrap confidence intervals on out-of-fold scores."""

import numpy as np


def pr_at(scores, labels, thr):
    pred = scores >= thr
    tp = int(np.sum(pred & (labels == 1)))
    fp = int(np.sum(pred & (labels == 0)))
    fn = int(np.sum(~pred & (labels == 1)))
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    return p, r, tp, fp, fn


def average_precision(scores, labels):
    order = np.argsort(-scores, kind="stable")
    y = labels[order]
    tp = np.cumsum(y == 1)
    prec = tp / np.arange(1, len(y) + 1)
    npos = max(1, int(np.sum(y == 1)))
    return float(np.sum(prec[y == 1]) / npos)


def choose_threshold(scores, labels, min_precision):
    """The lowest threshold whose precision is at least min_precision (the most recall at that
    precision); None when no threshold reaches it."""
    best = None
    for t in np.unique(scores)[::-1]:
        p, r, *_ = pr_at(scores, labels, t)
        if p >= min_precision and (best is None or r > best[1]):
            best = (float(t), r)
    return None if best is None else best[0]


def gated(prob, visible, gate):
    """The offence score a gate leaves: the probability where the visibility reaches the gate,
    0 (never an offence) where it does not."""
    return np.where(visible >= gate, prob, 0.0)


def choose_gate(prob, visible, labels, unsure_prob, unsure_visible, min_precision, max_unsure):
    """The visibility gate and threshold with the most recall at min_precision on the labelled
    images, among those that flag at most max_unsure of the images whose state a person could
    not judge (dark clothing, glare): a model that calls every dark shirt unbelted scores well
    on the labelled images and fines the wrong people. Returns (gate, threshold, recall,
    unsure_rate) or None."""
    best = None
    for gate in np.round(np.arange(0.0, 0.85, 0.05), 2):
        s = gated(prob, visible, gate)
        thr = choose_threshold(s, labels, min_precision)
        if thr is None or thr <= 0:
            continue
        rate = float(np.mean((unsure_visible >= gate) & (unsure_prob >= thr))) if len(unsure_prob) else 0.0
        if rate > max_unsure:
            continue
        _, r, *_ = pr_at(s, labels, thr)
        if best is None or r > best[2]:
            best = (float(gate), thr, r, rate)
    return best


def bootstrap(scores, labels, thr, n=1000, seed=0):
    """95 % intervals of precision and recall at thr, resampling images with replacement."""
    rng = np.random.default_rng(seed)
    ps, rs = [], []
    idx = np.arange(len(scores))
    for _ in range(n):
        s = rng.choice(idx, size=len(idx), replace=True)
        p, r, *_ = pr_at(scores[s], labels[s], thr)
        if not np.isnan(p):
            ps.append(p)
        if not np.isnan(r):
            rs.append(r)
    ci = lambda v: [round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)] if v else None
    return ci(ps), ci(rs)


def report(scores, labels, thr, seed=0):
    p, r, tp, fp, fn = pr_at(scores, labels, thr)
    pci, rci = bootstrap(scores, labels, thr, seed=seed)
    return {"threshold": round(float(thr), 4), "precision": round(p, 3), "recall": round(r, 3),
            "precision_ci95": pci, "recall_ci95": rci, "tp": tp, "fp": fp, "fn": fn,
            "n": int(len(labels)), "positives": int(np.sum(labels == 1)),
            "average_precision": round(average_precision(scores, labels), 3)}
