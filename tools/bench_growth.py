#!/usr/bin/env python
"""How inference cost grows with work: time per image against tokens per image and batch size,
for ViT-B/16 and Swin-B at 224 and 384 px, each path of ``paddle-vit bench`` side by side.

    python tools/bench_growth.py --threads 2 --out-dir benchmarks/growth     # the full run (CPU)
    python tools/bench_growth.py --dry-run --out-dir /tmp/growth             # tiny models: seconds
    python tools/bench_growth.py --report benchmarks/growth/growth.json      # table + plot again
                                  # (also from a run stopped half way: growth.json is saved after each cell)

A series is one architecture at two (or more) resolutions. Its points are timed by
``paddle_vit.bench.bench_one`` (round robin over the paths, same weights in every path, peak RSS
of each path in a subprocess of its own) at every batch size. Written to ``--out-dir``:
``growth.json`` (every row), ``growth.md`` (the tables for BENCHMARKS.md) and ``growth.png``
(ms per image against tokens per image, log-log, one line per series, path and batch).
``--series "Swin-B, window 7, 448 px"`` adds window 7 without padding (not run by default).

Tokens per image: ViT, the patch tokens plus the class token, ``(img/16)^2 + 1``; Swin, the
patch tokens of stage 1, ``(img/4)^2``. The exponent of a line is the least-squares slope of
log(ms per image) against log(tokens): 1 is linear, 2 quadratic. Next to it, the exponent of
the matmul multiply-adds (``torch.utils.flop_counter`` on torch_ref, attention included),
which is what the arithmetic alone predicts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddle_vit import bench  # noqa: E402  (imports no framework: threads are set first)

# (model, img_size, overrides): the same weights in every path of a point; a point shared by two
# series (Swin-B at 224) is measured once.
Point = tuple[str, int, dict[str, Any]]
SERIES: dict[str, list[Point]] = {
    "ViT-B/16": [("vit_base_patch16_224", 224, {}), ("vit_base_patch16_384", 384, {})],
    # the pretrained models' windows: 7 at 224, 12 at 384 (more tokens per window at 384)
    "Swin-B, window 7 -> 12": [("swin_base_patch4_window7_224", 224, {}),
                               ("swin_base_patch4_window12_384", 384, {})],
    # one window for both: 384 px pads stages 1-4 (96, 48, 24, 12 tokens a side) to multiples of 7
    "Swin-B, window 7": [("swin_base_patch4_window7_224", 224, {}),
                         ("swin_base_patch4_window7_224", 384, {"img_size": 384})],
    # not by default (4x the tokens of 224 px: the slowest point): every stage a multiple of 7, no padding
    "Swin-B, window 7, 448 px": [("swin_base_patch4_window7_224", 224, {}),
                                 ("swin_base_patch4_window7_224", 448, {"img_size": 448})],
}
DEFAULT_SERIES = ["ViT-B/16", "Swin-B, window 7 -> 12", "Swin-B, window 7"]
BATCH_SIZES = [1, 8, 32]
PATHS = ["paddle_eager", "paddle_infer", "torch_ref"]
# --dry-run: one-block models on 32 and 64 px images, the same three kinds of series
_DRY_VIT = dict(patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=10)
_DRY_SWIN = dict(embed_dim=16, depths=(1, 1), num_heads=(1, 2), num_classes=10)
DRY_SERIES: dict[str, list[Point]] = {
    "tiny ViT": [("vit_small_patch16_224", s, dict(_DRY_VIT, img_size=s)) for s in (32, 64)],
    "tiny Swin, window 4 -> 8": [("swin_tiny_patch4_window7_224", 32, dict(_DRY_SWIN, img_size=32, window_size=4)),
                                 ("swin_tiny_patch4_window7_224", 64, dict(_DRY_SWIN, img_size=64, window_size=8))],
    "tiny Swin, window 4": [("swin_tiny_patch4_window7_224", s, dict(_DRY_SWIN, img_size=s, window_size=4))
                            for s in (32, 64)],
}
DRY_BATCH_SIZES = [1, 2]


def point_key(point: Point) -> str:
    """A point's name in the JSON: ``model@img`` plus its overrides."""
    name, img, overrides = point
    return f"{name}@{img}" + (" " + json.dumps(overrides, sort_keys=True) if overrides else "")


def work_per_image(point: Point) -> dict[str, float]:
    """``{"tokens", "gmacs"}`` of one image: tokens as the module doc says, and the multiply-adds
    of every matmul and convolution of torch_ref's model (attention's included: PyTorch's math
    kernel for ``scaled_dot_product_attention``, whose ops the counter sees)."""
    import torch
    import torch_ref.registry
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    name, img, overrides = point
    model = torch_ref.registry.create_model(name, **overrides).eval()
    grid = model.patch_embed.grid_size
    tokens = grid[0] * grid[1] + getattr(model, "num_prefix_tokens", 0)
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(torch.zeros(1, 3, img, img))
    return {"tokens": tokens, "gmacs": counter.get_total_flops() / 2e9}


def exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than two distinct x)."""
    if len(set(xs)) < 2:
        return None
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def slopes(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per (series, path, batch): its measured exponent and the multiply-adds' exponent."""
    points, rows = data["points"], {(r["point"], r["batch"], r["path"]): r for r in data["results"]}
    out = []
    for series, keys in data["series"].items():
        tokens = [points[k]["tokens"] for k in keys]
        macs = exponent(tokens, [points[k]["gmacs"] for k in keys])
        for path in data["meta"]["paths"]:
            for batch in data["meta"]["batch_sizes"]:
                cells = [rows.get((k, batch, path)) for k in keys]
                ok = all(c and c["status"] == "ok" for c in cells)
                ms = [c["ms_per_image"] for c in cells] if ok else []
                out.append({"series": series, "path": path, "batch": batch,
                            "tokens": tokens, "ms_per_image": ms,
                            "exponent": exponent(tokens, ms) if ok else None, "macs_exponent": macs})
    return out


def run_points(args: argparse.Namespace, series: dict[str, list[Point]],
               save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Time every point at every batch size; the whole results document, also given to ``save``
    after each (point, batch) so that a long run stopped half way keeps what it measured."""
    bench.set_threads(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    unique = {point_key(p): p for pts in series.values() for p in pts}
    meta = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpu": bench.cpu_name(), "cores": os.cpu_count(),
            "threads": args.threads, "versions": bench.versions(), "paths": args.paths,
            "batch_sizes": args.batch_sizes, "repeats": args.repeats, "warmup": args.warmup, "gap_s": args.gap,
            "memory": args.memory, "loadavg_before": os.getloadavg()}
    print(f"threads: {args.threads}; cpu: {meta['cpu']}; load average before: %.2f %.2f %.2f"
          % meta["loadavg_before"], flush=True)
    points: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    data = {"meta": meta, "series": {s: [point_key(p) for p in pts] for s, pts in series.items()},
            "points": points, "results": results}
    for key, (name, img, overrides) in unique.items():
        points[key] = {"model": name, "img_size": img, "overrides": overrides, **work_per_image((name, img, overrides))}
        print(f"\n{key}: {points[key]['tokens']} tokens, {points[key]['gmacs']:.3g} GMACs per image", flush=True)
        for batch in args.batch_sizes:
            rows = bench.bench_one(name, img, batch, args, overrides, "cpu", "fp32")
            print(bench.table(rows).split("\n", 2)[2], flush=True)
            ref = next((r for p in ("torch_ref", "timm") for r in rows if r.path == p and r.median_ms), None)
            for r in rows:
                row = {"point": key, **asdict(r), "tokens": points[key]["tokens"]}
                row["ms_per_image"] = r.median_ms / batch if r.median_ms else None
                row["x_torch_time"] = r.median_ms / ref.median_ms if r.median_ms and ref else None
                row["torch_path"] = ref.path if ref else None
                results.append(row)
            save(data)
    meta["loadavg_after"] = os.getloadavg()
    return data


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(data: dict[str, Any]) -> str:
    """The two tables for BENCHMARKS.md: every cell, then the exponent of every line."""
    points = data["points"]
    lines = ["| model | img | tokens | GMACs/img | B | path | ms/img | img/s | x torch time | peak RSS MB | +RSS MB |",
             "|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|"]
    for r in data["results"]:
        pt = points[r["point"]]
        model = r["model"] + "".join(f", {k}={v}" for k, v in pt["overrides"].items() if k != "img_size")
        head = f"| {model} | {pt['img_size']} | {pt['tokens']} | {pt['gmacs']:.3g} | {r['batch']} | {r['path']} "
        if r["status"] != "ok":
            lines.append(head + f"| {r['status']}: {r['reason']} |||||")
            continue
        lines.append(head + f"| {_fmt(r['ms_per_image'], '.1f')} | {_fmt(r['images_per_s'], '.2f')} "
                     f"| {_fmt(r['x_torch_time'], '.2f')} | {_fmt(r['peak_rss_mb'], '.0f')} "
                     f"| {_fmt(r['rss_growth_mb'], '.0f')} |")
    lines += ["", "| series | path | B | tokens | ms/img | exponent (time) | exponent (multiply-adds) |",
              "|---|---|--:|---|---|--:|--:|"]
    for s in slopes(data):
        ms = " -> ".join(f"{m:.1f}" for m in s["ms_per_image"]) or "-"
        lines.append(f"| {s['series']} | {s['path']} | {s['batch']} | {' -> '.join(map(str, s['tokens']))} | {ms} "
                     f"| {_fmt(s['exponent'], '.2f')} | {_fmt(s['macs_exponent'], '.2f')} |")
    return "\n".join(lines)


def plot(data: dict[str, Any], png: Path) -> None:
    """ms per image against tokens per image, log-log: a panel per batch size, a colour per series,
    a line style per path; grey dotted guides of slope 1 and 2 over each range of tokens."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    lines, batches = slopes(data), data["meta"]["batch_sizes"]
    colours = {s: f"C{i}" for i, s in enumerate(data["series"])}
    styles = {p: st for p, st in zip(data["meta"]["paths"], ["-o", "--s", ":^", "-.v", "-D", "--x"])}
    fig, axes = plt.subplots(1, len(batches), figsize=(5.2 * len(batches), 4.6), squeeze=False, sharey=True)
    for ax, batch in zip(axes[0], batches):
        mine = [ln for ln in lines if ln["batch"] == batch and ln["ms_per_image"]]
        for ln in mine:
            ax.plot(ln["tokens"], ln["ms_per_image"], styles[ln["path"]], color=colours[ln["series"]],
                    label=f"{ln['series']}, {ln['path']} ({_fmt(ln['exponent'], '.2f')})")
        for span in sorted({(min(ln["tokens"]), max(ln["tokens"])) for ln in mine}):
            x0, x1 = span  # the guides start at the fastest first point of the lines over this span
            y0 = min(ln["ms_per_image"][0] for ln in mine if (min(ln["tokens"]), max(ln["tokens"])) == span)
            for k in (1, 2):
                ax.plot([x0, x1], [y0, y0 * (x1 / x0) ** k], ":", color="grey", lw=0.8)
                ax.annotate(f"slope {k}", (x1, y0 * (x1 / x0) ** k), fontsize=7, color="grey")
        ticks = sorted({t for ln in mine for t in ln["tokens"]})
        ax.set(xscale="log", yscale="log", xlabel="tokens per image", title=f"batch {batch}")
        if ticks:
            ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=6, title="series, path (exponent)", title_fontsize=6)
    axes[0][0].set_ylabel("ms per image (median)")
    threads = data["meta"]["threads"]
    fig.suptitle(f"How cost grows: {data['meta']['cpu']}, {threads} thread{'s' if threads != 1 else ''}", fontsize=9)
    fig.tight_layout()
    write_atomic(png, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def write_atomic(path: Path, write) -> None:
    """``write(file)`` into a temporary file next to ``path``, then rename it over ``path``: an
    interrupted run leaves the old file whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def report(data: dict[str, Any], out_dir: Path) -> None:
    """``growth.md`` and ``growth.png`` from a results document (also printed: the tables)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(data)
    write_atomic(out_dir / "growth.md", lambda f: f.write((md + "\n").encode()))
    plot(data, out_dir / "growth.png")
    print("\n" + md + f"\n\nwrote {out_dir / 'growth.md'} and {out_dir / 'growth.png'}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", nargs="+", metavar="NAME",
                    help=f"of {list(SERIES)} (default: {DEFAULT_SERIES}; "
                         f"with --dry-run: of {list(DRY_SERIES)}, all)")
    ap.add_argument("--batch-sizes", nargs="+", type=int,
                    help=f"default {BATCH_SIZES} ({DRY_BATCH_SIZES} with --dry-run)")
    ap.add_argument("--paths", nargs="+", choices=bench.ALL_PATHS, default=PATHS)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="for both frameworks")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (median over them)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--gap", type=float, default=0.25, help="seconds of sleep before each timed call")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                    help="peak RSS per path, one subprocess each (default: on, off with --dry-run)")
    ap.add_argument("--dry-run", action="store_true",
                    help="tiny ViT and Swin at 32 and 64 px, batch 1 and 2, one repeat, no memory unless --memory: "
                         "checks the machinery in seconds")
    ap.add_argument("--out-dir", help="growth.json, growth.md, growth.png go here (default: growth_results; "
                                      "with --report, the results file's folder)")
    ap.add_argument("--report", metavar="JSON", help="write growth.md and growth.png from a results file, then exit")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.repeats, args.warmup, args.gap = 1, 0, 0.0
    if args.batch_sizes is None:
        args.batch_sizes = DRY_BATCH_SIZES if args.dry_run else BATCH_SIZES
    if args.memory is None:
        args.memory = not args.dry_run
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0 or args.gap < 0 or min(args.batch_sizes) < 1:
        ap.error("need --threads >= 1, --repeats >= 1, --warmup >= 0, --gap >= 0 and batch sizes >= 1")
    args.batch_sizes = sorted(set(args.batch_sizes))
    table = DRY_SERIES if args.dry_run else SERIES
    unknown = [s for s in args.series or [] if s not in table]
    if unknown:
        ap.error(f"unknown series {unknown}; choose from {list(table)}")
    args.series = {s: table[s] for s in args.series or (table if args.dry_run else DEFAULT_SERIES)}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report:
        try:
            data = json.loads(Path(args.report).read_text())
            if not isinstance(data, dict) or not {"meta", "series", "points", "results"} <= set(data):
                raise ValueError("not a growth results file (needs meta, series, points, results)")
            markdown(data)  # a malformed row fails here, before anything is written
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"cannot read {args.report}: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        report(data, Path(args.out_dir or Path(args.report).parent))
        return 0
    out_dir = Path(args.out_dir or "growth_results")
    out_dir.mkdir(parents=True, exist_ok=True)

    def save(data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=1)
        write_atomic(out_dir / "growth.json", lambda f: f.write(text.encode()))

    data = run_points(args, args.series, save)
    data["lines"] = slopes(data)
    save(data)
    print(f"\nwrote {out_dir / 'growth.json'}")
    report(json.loads(json.dumps(data)), out_dir)  # what --report draws from the file (tuples as lists)
    return 0


if __name__ == "__main__":
    sys.exit(main())
