"""Presenting a ``LayerwiseReport``: a terminal table, a Markdown or HTML report, a PNG plot.

matplotlib is optional (``pip install paddle_vit[plot]``); without it the reports are written
without the plot and say why.
"""
from __future__ import annotations

import html
import os
from pathlib import Path

from paddle_vit.parity.layerwise import LayerDiff, LayerwiseReport

COLUMNS = ("#", "layer", "reference", "shape", "max abs", "max rel", "scaled", "cosine", "verdict")
FIRST = ">>"  # marks the first diverging row


def _cells(row: LayerDiff, report: LayerwiseReport) -> list[str]:
    s = row.stats
    verdict = "ok" if row.passed else ("FIRST FAIL" if row is report.first_failure else "fail")
    return [str(row.index), row.name, "" if row.ref_name == row.name else row.ref_name,
            "x".join(map(str, s.shape)) or "scalar", f"{s.max_abs:.2e}", f"{s.max_rel:.2e}",
            f"{s.scaled:.2e}", f"{s.cosine:.6f}", verdict]


def _sections(report: LayerwiseReport) -> list[tuple[str, list[LayerDiff]]]:
    out = [("forward (execution order)", report.forward)]
    if report.backward:
        out.append(("backward: gradient of each layer's output (backward order)", report.backward))
    if report.params:
        out.append(("backward: parameter gradients", report.params))
    return out


def _header(report: LayerwiseReport) -> list[str]:
    lines = [f"{report.title or 'layer-by-layer parity'}: paddle vs torch reference, {report.dtype} on "
             f"{report.device}; verdict: max|paddle - torch| / max|torch| <= {report.tol.bound:.0e} "
             f"({report.tol.name}: {report.tol.why})",
             report.summary()]
    lines += [f"note: {n}" for n in report.notes]
    for side, names in report.unpaired.items():
        if names:
            shown = ", ".join(n or "(model)" for n in names[:12]) + (f" ... (+{len(names) - 12})" if len(names) > 12 else "")
            lines.append(f"not compared ({side} modules without a twin): {shown}")
    return lines


def format_table(report: LayerwiseReport) -> str:
    """A plain-text table for the terminal; the first failing row is marked with ``>>``."""
    lines = _header(report)
    for title, rows in _sections(report):
        table = [list(COLUMNS)] + [_cells(r, report) for r in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
        lines += ["", title]
        for k, cells in enumerate(table):
            mark = FIRST if k and rows[k - 1] is report.first_failure else "  "
            lines.append(mark + " " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def to_markdown(report: LayerwiseReport, plot: str | None = None) -> str:
    """The report as Markdown; ``plot``: a PNG path relative to the report, or None."""
    lines = ["# " + (report.title or "Layer-by-layer parity"), ""]
    lines += [line + "  " for line in _header(report)[1:]] + [""]
    lines.append(f"Verdict per row: `{report.tol.name}` (bound {report.tol.bound:.0e}): {report.tol.why}.")
    lines.append("")
    lines.append(f"![error per layer]({plot})" if plot else "_No plot: matplotlib is not installed "
                 "(pip install paddle_vit[plot])._")
    for title, rows in _sections(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for row in rows:
            cells = [c.replace("|", "\\|") for c in _cells(row, report)]
            if row is report.first_failure:
                cells = [f"**{c}**" if c else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_html(report: LayerwiseReport, plot: str | None = None) -> str:
    """The report as a self-contained HTML page (the plot is linked, not embedded)."""
    esc = html.escape
    head = "".join(f"<p>{esc(line)}</p>" for line in _header(report)[1:])
    figure = (f'<img src="{esc(plot)}" alt="error per layer" style="max-width:100%">' if plot else
              "<p><em>No plot: matplotlib is not installed (pip install paddle_vit[plot]).</em></p>")
    body = []
    for title, rows in _sections(report):
        body.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS) + "</tr>")
        for row in rows:
            cls = ' class="first"' if row is report.first_failure else (' class="fail"' if not row.passed else "")
            body.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(row, report)) + "</tr>")
        body.append("</table>")
    style = ("body{font-family:sans-serif}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:nth-child(2),td:nth-child(3)"
             "{text-align:left}tr.fail{background:#fee}tr.first{background:#f99;font-weight:bold}")
    title = esc(report.title or "Layer-by-layer parity")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style>"
            f"</head><body><h1>{title}</h1>{head}<p>Verdict per row: {esc(report.tol.name)} "
            f"(bound {report.tol.bound:.0e}): {esc(report.tol.why)}.</p>{figure}{''.join(body)}</body></html>\n")


def plot_errors(report: LayerwiseReport, path: str | os.PathLike) -> Path:
    """PNG of the scaled error (max abs / reference scale) versus layer depth, log scale,
    with the tolerance bound and the first failing layer marked. Needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the plot needs matplotlib: pip install paddle_vit[plot] (or pip install matplotlib)") from None
    floor = 1e-12  # an exact match (error 0) is drawn at the floor of the log axis
    fig, ax = plt.subplots(figsize=(max(8.0, min(24.0, len(report.forward) * 0.08)), 4.5))
    for title, rows in _sections(report)[:2]:  # forward and output gradients share the depth axis
        ax.plot([r.index for r in rows], [max(r.stats.scaled, floor) for r in rows], marker=".", lw=1,
                label=title.split(":")[0].split(" (")[0])
    ax.axhline(report.tol.bound, color="red", ls="--", lw=1, label=f"bound {report.tol.bound:.0e} ({report.tol.name})")
    bad = report.first_failure
    if bad is not None and (bad in report.forward or bad in report.backward):
        ax.plot([bad.index], [max(bad.stats.scaled, floor)], "rx", ms=12, mew=2)
        ax.annotate(f"first failure: {bad.name}", (bad.index, max(bad.stats.scaled, floor)),
                    textcoords="offset points", xytext=(8, 8), color="red")
    ax.set_yscale("log")
    ax.set_xlabel("layer (execution order; backward order for gradients)")
    ax.set_ylabel("max |paddle - torch| / max |torch|")
    ax.set_title(report.title or "layer-by-layer parity")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: LayerwiseReport, path: str | os.PathLike) -> tuple[Path, Path | None]:
    """Write ``path`` (``.html``/``.htm`` or ``.md``) and its plot beside it (same name, ``.png``).
    Returns ``(report path, plot path or None when matplotlib is missing)``."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm", ".md"):
        raise ValueError(f"report must end in .html or .md, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    png: Path | None = path.with_suffix(".png")
    try:
        plot_errors(report, png)
    except ImportError:
        png = None
    rel = png.name if png is not None else None
    text = to_markdown(report, rel) if path.suffix.lower() == ".md" else to_html(report, rel)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path, png
