"""Framework-free Swin tables, shared by both trees: the relative position index, the shifted-window
attention mask, timm's rule for the window and shift a stage actually uses, the per-stage window
arguments, and Swin V2's log-spaced relative coordinates (the input of its position-bias MLP).

Both ``paddle_vit.models.swin`` and ``torch_ref.models.swin`` build their (non-persistable) buffers
from these arrays, so the two trees cannot disagree about them; the tests check them against an
independent pair-by-pair construction.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# timm (and torchvision, and the original Swin) add -100, not -inf, between tokens of different
# sub-windows: exp(-100) ~ 4e-44 underflows to 0 in fp32 softmax, and a row can never be all -inf.
MASK_VALUE = -100.0


def pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    """``7 -> (7, 7)``; ``(h, w)`` kept; values must be >= ``0`` (shift) and ints."""
    out = (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)
    if len(out) != 2 or min(out) < 0:
        raise ValueError(f"{name} must be a non-negative int or (height, width), got {v!r}")
    return out  # type: ignore[return-value]


# How a block fits its windows to a map that is not a multiple of the window (see window_and_shift).
WINDOW_RULES = ("timm", "torchvision")


def window_and_shift(resolution: Sequence[int], window: int | Sequence[int], shift: int | Sequence[int],
                     rule: str = "timm") -> tuple[tuple[int, int], tuple[int, int]]:
    """The window and shift a block uses, per axis. Both rules leave an axis unshifted where the
    map is not longer than the window (one window covers it; a shift would only permute it).
    ``timm`` (and the original Swin): such a window also shrinks to the map. ``torchvision``: the
    window is kept and the map is padded up to it (the padding tokens take part in attention)."""
    if rule not in WINDOW_RULES:
        raise ValueError(f"window_rule must be one of {WINDOW_RULES}, got {rule!r}")
    res, win, sh = pair(resolution, "input_resolution"), pair(window, "window_size"), pair(shift, "shift_size")
    if min(res) < 1 or min(win) < 1:
        raise ValueError(f"input_resolution and window_size must be >= 1, got {res} and {win}")
    if any(s >= w for s, w in zip(sh, win) if s):
        raise ValueError(f"shift_size {sh} must be smaller than window_size {win}")
    new_win = tuple(r if r <= w and rule == "timm" else w for r, w in zip(res, win))
    new_shift = tuple(0 if r <= w else s for r, w, s in zip(res, win, sh))
    return new_win, new_shift  # type: ignore[return-value]


def rules_differ(resolution: Sequence[int], window: int | Sequence[int], shift: int | Sequence[int]) -> bool:
    """Whether a block computes differently under the two rules: on some axis the map is shorter than
    the window (timm shrinks the window, torchvision pads up to it), or it is padded and shifted
    (timm rolls the map and then pads, torchvision pads and then rolls the padded map)."""
    res, win = pair(resolution, "input_resolution"), pair(window, "window_size")
    _, sh = window_and_shift(res, win, shift)
    return any(r < w or (r % w and s) for r, w, s in zip(res, win, sh))


def relative_position_index(window: Sequence[int]) -> np.ndarray:
    """``[N, N]`` int64 with ``N = Wh * Ww``: for tokens i, j at (yi, xi), (yj, xj) of one window,
    ``(yi - yj + Wh - 1) * (2 Ww - 1) + (xi - xj + Ww - 1)``: a row of the ``(2Wh-1)(2Ww-1)`` table."""
    wh, ww = pair(window, "window_size")
    ys, xs = np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)                        # row-major token order
    dy = ys[:, None] - ys[None, :] + (wh - 1)                       # [N, N] in [0, 2Wh-2]
    dx = xs[:, None] - xs[None, :] + (ww - 1)
    return (dy * (2 * ww - 1) + dx).astype(np.int64)


def shift_mask(resolution: Sequence[int], window: Sequence[int], shift: Sequence[int]) -> np.ndarray | None:
    """Additive mask ``[num_windows, N, N]`` (0 or ``MASK_VALUE``) for attention over the windows
    of a feature map that was rolled by ``-shift`` and then padded to a multiple of the window
    (timm's order); ``None`` when nothing is shifted.

    After the roll, the last ``shift`` rows (columns) hold tokens from the top (left) border: each
    axis splits into the regions ``[0, Lp - W)``, ``[Lp - W, Lp - s)``, ``[Lp - s, Lp)``; a token
    may attend only to tokens of its own region pair.
    """
    wh, ww = pair(window, "window_size")
    sh, sw = pair(shift, "shift_size")
    if sh == 0 and sw == 0:
        return None
    hp = math.ceil(resolution[0] / wh) * wh
    wp = math.ceil(resolution[1] / ww) * ww
    labels = np.zeros((hp, wp), dtype=np.float32)
    count = 0
    for h0, h1 in ((0, -wh), (-wh, -sh), (-sh, None)):
        for w0, w1 in ((0, -ww), (-ww, -sw), (-sw, None)):
            labels[h0:h1, w0:w1] = count  # with a zero shift (-0, None) is the whole axis: as timm
            count += 1
    windows = labels.reshape(hp // wh, wh, wp // ww, ww).transpose(0, 2, 1, 3).reshape(-1, wh * ww)
    different = windows[:, None, :] != windows[:, :, None]          # [nW, N, N]
    return np.where(different, MASK_VALUE, 0.0).astype(np.float32)


def window_order(resolution: Sequence[int], window: Sequence[int], shift: Sequence[int]) -> np.ndarray | None:
    """``[H * W]`` int64: the raster index of each token in (rolled-)window order, i.e. gathering
    a ``[B, H * W, C]`` map with it equals rolling by ``-shift`` then partitioning into windows
    (``[B, nW * N, C]``: windows row-major, tokens row-major inside each). ``None`` when the map is
    not a multiple of the window (that path pads, and a gather cannot add the zeros).
    """
    h, w = resolution
    wh, ww = pair(window, "window_size")
    sh, sw = pair(shift, "shift_size")
    if h % wh or w % ww:
        return None
    raster = np.roll(np.arange(h * w, dtype=np.int64).reshape(h, w), (-sh, -sw), axis=(0, 1))
    return raster.reshape(h // wh, wh, w // ww, ww).transpose(0, 2, 1, 3).reshape(-1)


def merge_order(resolution: Sequence[int]) -> np.ndarray | None:
    """``[H * W]`` int64 for PatchMerging: gathering a ``[B, H * W, C]`` map with it and reshaping
    to ``[B, H/2, W/2, 4C]`` concatenates each 2x2 neighbourhood in timm's order (0,0), (1,0),
    (0,1), (1,1) (row, column offset). ``None`` for an odd side (that path pads)."""
    h, w = resolution
    if h % 2 or w % 2:
        return None
    raster = np.arange(h * w, dtype=np.int64).reshape(h // 2, 2, w // 2, 2)   # [h2, dy, w2, dx]
    return raster.transpose(0, 2, 3, 1).reshape(-1)                           # [h2, w2, dx, dy]


def inverse_order(order: np.ndarray) -> np.ndarray:
    """The permutation that undoes ``order`` (gathering with it restores raster order)."""
    return np.argsort(order).astype(np.int64)


def stage_windows(window_size: int | Sequence[int] | Sequence[Sequence[int]], num_stages: int
                  ) -> tuple[tuple[int, int], ...]:
    """One ``(h, w)`` window per stage, timm's reading of ``window_size``: an int or ``(h, w)`` for
    every stage, or one int / ``(h, w)`` per stage. A sequence of two ints is always one ``(h, w)``
    (as in timm), so a two-stage model with per-stage windows spells them ``((7, 7), (14, 14))``."""
    what = (f"window_size must be an int >= 1, (height, width), or one of those per stage "
            f"({num_stages} stages), got {window_size!r}")
    if isinstance(window_size, (int, np.integer)):
        per_stage = [window_size] * num_stages
    elif (isinstance(window_size, (list, tuple)) and len(window_size) == 2
          and all(isinstance(v, (int, np.integer)) for v in window_size)):
        per_stage = [tuple(window_size)] * num_stages
    elif isinstance(window_size, (list, tuple)) and len(window_size) == num_stages:
        per_stage = list(window_size)
    else:
        raise ValueError(what)
    out = []
    for w in per_stage:
        try:
            win = pair(w, "window_size")
        except (TypeError, ValueError):
            raise ValueError(what) from None
        if min(win) < 1:
            raise ValueError(what)
        out.append(win)
    return tuple(out)


def stage_pretrained_windows(pretrained_window_sizes: Sequence[int | Sequence[int]], num_stages: int
                             ) -> tuple[tuple[int, int], ...]:
    """Swin V2's ``pretrained_window_sizes``: one int or ``(h, w)`` per stage, ``0`` meaning "this
    stage's own window" (the coordinates are then normalised by the window itself)."""
    what = (f"pretrained_window_sizes must have one int >= 0 or (height, width) per stage "
            f"({num_stages} stages; 0 = the stage's own window), got {pretrained_window_sizes!r}")
    if not isinstance(pretrained_window_sizes, (list, tuple)) or len(pretrained_window_sizes) != num_stages:
        raise ValueError(what)
    try:
        return tuple(pair(w, "pretrained_window_size") for w in pretrained_window_sizes)
    except (TypeError, ValueError):
        raise ValueError(what) from None


def log_relative_coords(window: Sequence[int], pretrained_window: Sequence[int] = (0, 0)) -> np.ndarray:
    """Swin V2's continuous relative coordinates ``[1, 2Wh-1, 2Ww-1, 2]`` float32 (timm's
    ``relative_coords_table``): entry ``[0, i, j]`` is the offset ``(dy, dx) = (i - Wh + 1, j - Ww + 1)``
    divided per axis by ``P - 1`` (``P``: the pretrained window on that axis if given, else the
    window; at least 1), times 8, then ``sign(t) * log2(1 + |t|) / log2(8)``: ``[-1, 1]`` for the
    window itself, log-spaced so that a larger window extrapolates gently."""
    wh, ww = pair(window, "window_size")
    ph, pw = pair(pretrained_window, "pretrained_window_size")
    norm_h, norm_w = (ph, pw) if ph > 0 else (wh, ww)  # timm tests the first axis only
    dy = np.arange(-(wh - 1), wh, dtype=np.float64) / max(norm_h - 1, 1)
    dx = np.arange(-(ww - 1), ww, dtype=np.float64) / max(norm_w - 1, 1)
    table = np.stack(np.meshgrid(dy, dx, indexing="ij"), axis=-1) * 8.0         # [2Wh-1, 2Ww-1, 2]
    table = np.sign(table) * np.log2(np.abs(table) + 1.0) / np.log2(8.0)
    return table[None].astype(np.float32)


def stage_resolutions(grid: Sequence[int], num_stages: int) -> list[tuple[int, int]]:
    """Token grid of each stage's blocks: stage 0 runs on the patch grid, each later one on the
    previous grid halved with rounding up (PatchMerging pads an odd side)."""
    res = [tuple(grid)]
    for _ in range(1, num_stages):
        res.append(tuple((r + 1) // 2 for r in res[-1]))
    return res  # type: ignore[return-value]


def drop_path_rates(drop_path_rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Linear 0 -> ``drop_path_rate`` over all blocks, split per stage (timm's ``stagewise``)."""
    total = sum(depths)
    flat = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    out, start = [], 0
    for d in depths:
        out.append(flat[start:start + d])
        start += d
    return out


def check_config(global_pool: str, depths: Sequence[int], num_heads: Sequence[int], num_classes: int,
                 window_rule: str = "timm") -> None:
    """A ``SwinTransformer`` configuration both trees accept, or a ValueError naming what is wrong."""
    if window_rule not in WINDOW_RULES:
        raise ValueError(f"window_rule must be one of {WINDOW_RULES}, got {window_rule!r}")
    if global_pool != "avg":
        raise ValueError(f"global_pool must be 'avg' (timm's Swin default), got {global_pool!r}")
    if len(depths) < 1 or len(depths) != len(num_heads) or min(depths) < 1:
        raise ValueError(f"depths and num_heads need one entry >= 1 per stage, got {tuple(depths)} "
                         f"and {tuple(num_heads)}")
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
