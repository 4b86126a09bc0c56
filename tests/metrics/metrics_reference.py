"""Brute-force reference implementations of the metrics, written from the definitions.

Loops over pixels are intended: these transcribe ``docs/protocol.md`` §3–§5 (and the loops of the
reference benchmark's ``evaluation.cpp``) as literally as possible, for small maps only.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from scipy import ndimage


def _max_label(a: np.ndarray) -> int:
    return int(a.max())


def intersection(labels: np.ndarray, gt: np.ndarray):
    """Intersection matrix over the full label ranges 0..max (absent labels included)."""
    ns, ng = _max_label(labels) + 1, _max_label(gt) + 1
    n = [[0] * ns for _ in range(ng)]
    s_sizes = [0] * ns
    g_sizes = [0] * ng
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            s, g = int(labels[y, x]), int(gt[y, x])
            n[g][s] += 1
            s_sizes[s] += 1
            g_sizes[g] += 1
    return n, s_sizes, g_sizes


def ref_asa(labels, gt) -> float:
    n, s_sizes, _ = intersection(labels, gt)
    total = 0
    for j in range(len(s_sizes)):
        total += max(n[i][j] for i in range(len(n)))
    return total / labels.size


def ref_ue(labels, gt) -> float:
    n, s_sizes, _ = intersection(labels, gt)
    total = 0
    for j in range(len(s_sizes)):
        total += min(s_sizes[j] - n[i][j] for i in range(len(n)))
    return total / labels.size


def ref_ue_np(labels, gt) -> float:
    n, s_sizes, _ = intersection(labels, gt)
    total = 0
    for i in range(len(n)):
        for j in range(len(s_sizes)):
            if n[i][j] > 0:
                total += min(n[i][j], s_sizes[j] - n[i][j])
    return total / labels.size


def ref_ue_levin(labels, gt) -> float:
    n, s_sizes, g_sizes = intersection(labels, gt)
    total = 0.0
    for i in range(len(n)):
        err = sum(s_sizes[j] for j in range(len(s_sizes)) if n[i][j] > 0) - g_sizes[i]
        if g_sizes[i] > 0:
            total += err / g_sizes[i]
    return total / len(g_sizes)


def ref_oe(labels, gt) -> float:
    n, s_sizes, g_sizes = intersection(labels, gt)
    total = 0
    for i in range(len(n)):
        total += min(g_sizes[i] - n[i][j] for j in range(len(s_sizes)))
    return total / labels.size


def is_boundary(lab, y, x) -> bool:
    h, w = lab.shape
    v = lab[y, x]
    return (
        (y > 0 and lab[y - 1, x] != v)
        or (y < h - 1 and lab[y + 1, x] != v)
        or (x > 0 and lab[y, x - 1] != v)
        or (x < w - 1 and lab[y, x + 1] != v)
    )


def _window_has_boundary(lab, y, x, r) -> bool:
    h, w = lab.shape
    for k in range(max(0, y - r), min(h - 1, y + r) + 1):
        for m in range(max(0, x - r), min(w - 1, x + r) + 1):
            if is_boundary(lab, k, m):
                return True
    return False


def ref_br(labels, gt, r) -> float:
    tp = fn = 0
    h, w = gt.shape
    for y in range(h):
        for x in range(w):
            if is_boundary(gt, y, x):
                if _window_has_boundary(labels, y, x, r):
                    tp += 1
                else:
                    fn += 1
    return tp / (tp + fn) if tp + fn > 0 else 0.0


def ref_bp(labels, gt, r) -> float:
    tp = fp = 0
    h, w = gt.shape
    for y in range(h):
        for x in range(w):
            if is_boundary(gt, y, x):
                if _window_has_boundary(labels, y, x, r):
                    tp += 1
            elif is_boundary(labels, y, x) and not _window_has_boundary(gt, y, x, r):
                fp += 1
    return tp / (tp + fp) if tp + fp > 0 else 0.0


def ref_co(labels) -> float:
    h, w = labels.shape
    m = _max_label(labels) + 1
    perim = [0] * m
    area = [0] * m
    for y in range(h):
        for x in range(w):
            v = labels[y, x]
            c = 0
            c += 1 if y == 0 or labels[y - 1, x] != v else 0
            c += 1 if y == h - 1 or labels[y + 1, x] != v else 0
            c += 1 if x == 0 or labels[y, x - 1] != v else 0
            c += 1 if x == w - 1 or labels[y, x + 1] != v else 0
            perim[v] += c
            area[v] += 1
    total = 0.0
    for k in range(m):
        if perim[k] > 0:
            total += area[k] * (4 * math.pi * area[k]) / (perim[k] * perim[k])
    return total / (h * w)


def ref_ev(labels, image) -> float:
    h, w = labels.shape
    img = image.astype(np.float64)
    m = _max_label(labels) + 1
    sums = np.zeros((m, img.shape[2]))
    counts = np.zeros(m)
    for y in range(h):
        for x in range(w):
            sums[labels[y, x]] += img[y, x]
            counts[labels[y, x]] += 1
    mu = img.reshape(-1, img.shape[2]).mean(axis=0)
    top = bottom = 0.0
    for y in range(h):
        for x in range(w):
            mj = sums[labels[y, x]] / counts[labels[y, x]]
            top += float(np.sum((mj - mu) ** 2))
            bottom += float(np.sum((img[y, x] - mu) ** 2))
    return top / bottom if bottom != 0 else math.nan


def ref_fragmentation(labels) -> tuple[int, int]:
    """XC and Stray per label with scipy.ndimage.label and the full 3×3 structure."""
    xc = stray = 0
    for lab in np.unique(labels):
        comp, k = ndimage.label(labels == lab, structure=np.ones((3, 3), dtype=int))
        xc += k - 1
        if k > 1:
            sizes = np.bincount(comp.ravel())[1:]
            big = sizes.max()
            largest = 0 if np.count_nonzero(sizes == big) >= 2 else big
            stray += int(sizes.sum()) - int(largest)
    return xc, stray


def ref_enforce_connectivity(labels: np.ndarray, min_size: int, max_size: int) -> np.ndarray:
    """Pure-Python transcription of ``docs/protocol.md`` §3 (upstream ``connectivity.pyx``)."""
    h, w = labels.shape
    out = np.full((h, w), -1, dtype=np.int64)
    counter = 0
    for y in range(h):
        for x in range(w):
            if out[y, x] >= 0:
                continue
            adjacent = 0
            lab = labels[y, x]
            out[y, x] = counter
            comp = [(y, x)]
            visited = 0
            stop = False
            while visited < len(comp) < max_size and not stop:
                cy, cx = comp[visited]
                for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):  # x+1, x-1, y+1, y-1
                    ny, nx = cy + dy, cx + dx
                    if not (0 <= ny < h and 0 <= nx < w):
                        continue
                    if labels[ny, nx] == lab and out[ny, nx] == -1:
                        out[ny, nx] = counter
                        comp.append((ny, nx))
                        if len(comp) >= max_size:
                            stop = True
                            break
                    elif out[ny, nx] >= 0 and out[ny, nx] != counter:
                        adjacent = int(out[ny, nx])
                visited += 1
            if len(comp) < min_size:
                for cy, cx in comp:
                    out[cy, cx] = adjacent
            else:
                counter += 1
    return out


def bfs_components_4(labels: np.ndarray) -> int:
    """Number of 4-connected components of equal value (plain BFS)."""
    h, w = labels.shape
    seen = np.zeros((h, w), bool)
    count = 0
    for y in range(h):
        for x in range(w):
            if seen[y, x]:
                continue
            count += 1
            seen[y, x] = True
            queue = deque([(y, x)])
            while queue:
                cy, cx = queue.popleft()
                for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    ny, nx = cy + dy, cx + dx
                    if (
                        0 <= ny < h
                        and 0 <= nx < w
                        and not seen[ny, nx]
                        and labels[ny, nx] == labels[cy, cx]
                    ):
                        seen[ny, nx] = True
                        queue.append((ny, nx))
    return count
