"""``paddle-vit-convert``: torch checkpoints to Paddle (and back), checked before anything is written.

    paddle-vit-convert SRC DST --model NAME [--source auto|timm|torchvision|torch_ref]
                       [--num-classes N] [--img-size S] [--override KEY=VALUE ...]
                       [--to paddle|torch] [--no-verify] [--force] [--quiet]
    paddle-vit-convert --list-models [PATTERN]

Exit status: 0 written; 1 bad input (nothing written); 2 bad command line; 3 verification failed
(nothing written).
"""
from __future__ import annotations

import argparse
import ast
import gc
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_MISMATCH = 0, 1, 2, 3


class VerificationFailed(Exception):
    """The converted model's logits differ from the source model's beyond the tolerance policy."""


def parse_override(text: str) -> tuple[str, Any]:
    """``'depth=2'`` -> ``('depth', 2)``; values are Python literals (``(2, 2)``, ``0.5``) or strings."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a constructor argument, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paddle-vit-convert",
        description="Convert a torch checkpoint (timm, torchvision or torch_ref layout) to a Paddle one for "
                    "paddle_vit, or back with --to torch. The result is checked against the source model on "
                    "a random batch before it is written.",
        epilog="Exit status: 0 written; 1 bad input; 2 bad command line; 3 verification failed. "
               "On any failure no DST is written.")
    p.add_argument("src", nargs="?", metavar="SRC", help=".pth/.pt/.bin/.ckpt (torch) or .safetensors; "
                   ".pdparams or Paddle .safetensors with --to torch")
    p.add_argument("dst", nargs="?", metavar="DST", help=".pdparams or .safetensors; .pth or .safetensors with --to torch")
    p.add_argument("--model", help="variant name, e.g. vit_base_patch16_224 (see --list-models)")
    p.add_argument("--source", default="auto", help="layout of the torch side: auto (detected from the keys), "
                   "timm, torchvision or torch_ref (default: auto; with --to torch: torch_ref)")
    p.add_argument("--to", choices=("paddle", "torch"), default="paddle", help="direction (default: paddle)")
    p.add_argument("--num-classes", type=int, help="classifier width, if not the variant's 1000")
    p.add_argument("--img-size", type=int, help="input size; a learned position embedding is resampled to it")
    p.add_argument("--override", action="append", type=parse_override, default=[], metavar="KEY=VALUE",
                   help="any other constructor argument of the variant, e.g. --override depth=2 (repeatable)")
    p.add_argument("--no-verify", action="store_true", help="write without running both models")
    p.add_argument("--force", action="store_true", help="replace an existing DST")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table, errors only")
    p.add_argument("--list-models", nargs="?", const="*", metavar="PATTERN",
                   help="list the variants it can build (shell pattern, e.g. 'vit_*') and exit")
    return p


def list_models_table(pattern: str) -> str:
    import paddle_vit.models  # noqa: F401  (registers the families)
    from paddle_vit.convert.layouts import TORCHVISION_NAMES
    from paddle_vit.convert.sources import source_names
    from paddle_vit.registry import FAMILIES
    from paddle_vit.variants import get_variant, list_models
    rows = [("model", "family", "sources", "torchvision")]
    for name in list_models(pattern):
        family = get_variant(name)[0]
        if family in FAMILIES:
            rows.append((name, family, ",".join(source_names(family)), TORCHVISION_NAMES.get(name, "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _progress(quiet: bool, desc: str):
    def wrap(items: list) -> Iterable:
        if quiet or not sys.stderr.isatty():
            return items
        from tqdm import tqdm
        return tqdm(items, desc=desc, unit="tensor", file=sys.stderr, leave=False)
    return wrap


def _build_paddle(name: str, kwargs: dict[str, Any], lazy: bool = False) -> Any:
    """Our model; ``lazy``: parameters with shapes but no memory (enough to plan a conversion)."""
    import contextlib

    import paddle
    from paddle_vit.registry import create_model
    try:
        with paddle.LazyGuard() if lazy else contextlib.nullcontext():
            return create_model(name, **kwargs)
    except TypeError as exc:  # an --override the constructor does not take
        raise ValueError(f"cannot build {name!r} with {kwargs}: {exc}") from None


def _loaded_paddle(name: str, kwargs: dict[str, Any], state: Any) -> Any:
    """Our model with ``state`` loaded (strictly). Built lazily, so no time goes into random
    initial weights that ``state`` replaces; every parameter must have been set from ``state``."""
    from paddle_vit.convert.core import load_state_dict_strict
    model = _build_paddle(name, kwargs, lazy=True)
    load_state_dict_strict(model, state)
    unset = [n for n, p in model.named_parameters() if not p._is_initialized()]
    if unset:  # cannot happen for a strict load; kept so that a Paddle change cannot go unnoticed
        raise RuntimeError(f"parameters not loaded: {unset}")
    model.eval()
    return model


def _release_memory() -> None:
    """Hand freed memory back to the OS between phases, so that the verification's peak does not
    stack on the conversion's: glibc keeps freed blocks below its (adaptive, up to 32 MiB) mmap
    threshold in the heap. A no-op where malloc_trim does not exist."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


def to_paddle(args: argparse.Namespace, kwargs: dict[str, Any]) -> None:
    """SRC (torch layout) -> DST (Paddle), verified against the source model unless --no-verify.
    At most about two copies of the checkpoint are held at any time: the memory-mapped source and
    the converted tensors while writing; the written file and one model while verifying."""
    from paddle_vit.convert.core import ConversionError, convert_state_dict, detect_source, tensor_shapes
    from paddle_vit.convert.io import atomic_output, read_checkpoint, write_checkpoint
    from paddle_vit.variants import get_variant

    from paddle_vit.convert.pretrained import check_config, checkpoint_config

    family = get_variant(args.model)[0]
    state, layout = read_checkpoint(args.src)
    if layout == "paddle":
        raise ConversionError(f"{args.src} is already a Paddle checkpoint", ["to go back to torch, pass --to torch"])
    source = detect_source(tensor_shapes(state), family) if args.source == "auto" else args.source
    # constructor arguments the source library builds this network with (torchvision's BN eps): ours
    # is built with them, and the written file records them for create_model
    config = checkpoint_config(source, family, args.model)
    check_config(config, kwargs, f"{args.src} ({source} checkpoint)")
    kwargs.update(config)
    spec_model = _build_paddle(args.model, kwargs, lazy=True)  # shapes and layer types, no weights
    out = convert_state_dict(state, spec_model, source, progress=_progress(args.quiet, "converting"))
    count = len(out)
    with atomic_output(args.dst, args.force, inputs=[args.src]) as tmp:
        write_checkpoint(out, tmp, "paddle", fmt=args.dst, config=config)
        del out, state  # the file holds it now; the verification reads it back from there
        if not args.no_verify:
            _release_memory()
            _check(verify_paddle_file(args, kwargs, family, source, tmp), args.quiet)
    built = f", built with {config} (recorded in the file)" if config else ""
    _say(args.quiet, f"wrote {args.dst}: {count} tensors, Paddle layout of {args.model} (from {source}){built}")


def verify_paddle_file(args: argparse.Namespace, kwargs: dict[str, Any], family: str, source: str,
                       written: Path) -> Any:
    """Logits of our model loaded from the ``written`` file vs the source model loaded from SRC.
    One model at a time, so the peak is one model plus one copy of the weights."""
    from paddle_vit.convert import sources, verify
    from paddle_vit.convert.core import plan_for, target_spec
    from paddle_vit.convert.io import read_checkpoint
    from paddle_vit.variants import model_kwargs

    x = verify.verification_input(model_kwargs(args.model, **kwargs)[1])
    model = _loaded_paddle(args.model, kwargs, read_checkpoint(written, fmt=args.dst)[0])
    got = verify.paddle_logits(model, x)
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    state = read_checkpoint(args.src)[0]  # memory-mapped again: pages are read as the torch model loads
    routes = plan_for(state, model, source)
    shapes = {k: v[0] for k, v in target_spec(model).items()}
    windows = verify.table_windows(model, routes)
    norms = verify.norm_config(model)
    del model
    _release_memory()
    torch_model = verify.load_without_copy(lambda: sources.build_source_model(args.model, family, source, kwargs),
                                           verify.source_state_for(state, routes, shapes, grid, windows), source)
    del state
    result = verify.compare_logits(verify.torch_logits(torch_model, x), got, source, x)
    return result if result.passed else verify.with_config_notes(result, torch_model, norms, routes)


def to_torch(args: argparse.Namespace, kwargs: dict[str, Any]) -> None:
    """SRC (Paddle) -> DST (torch_ref/timm layout), verified unless --no-verify."""
    from paddle_vit.convert.core import ConversionError, export_state_dict
    from paddle_vit.convert.io import atomic_output, read_checkpoint, write_checkpoint
    from paddle_vit.convert import sources, verify
    from paddle_vit.variants import get_variant, model_kwargs

    source = "torch_ref" if args.source == "auto" else args.source
    if source not in ("torch_ref", "timm"):
        raise ValueError(f"--to torch writes the torch_ref/timm layout, not {source!r}")
    family = get_variant(args.model)[0]
    model = _build_paddle(args.model, kwargs, lazy=True)
    state, layout = read_checkpoint(args.src)
    if layout != "paddle":
        raise ConversionError(f"{args.src} is a torch checkpoint", ["--to torch reads a .pdparams file or a Paddle "
                                                                   "safetensors file (metadata format=paddle)"])
    config = dict(getattr(state, "config", {}))  # arguments the weights need, recorded by the converter
    if config:
        from paddle_vit.convert.pretrained import check_config
        check_config(config, kwargs, str(args.src))
        kwargs.update(config)
        _say(args.quiet, f"note: these weights need {config}; build the {source} model with them")
    torch_model = sources.build_source_model(args.model, family, source, kwargs)
    out = export_state_dict(state, model, torch_model.state_dict(), source,
                            progress=_progress(args.quiet, "exporting"))
    with atomic_output(args.dst, args.force, inputs=[args.src]) as tmp:
        write_checkpoint(out, tmp, "torch", fmt=args.dst)
        if not args.no_verify:
            import torch
            x = verify.verification_input(model_kwargs(args.model, **kwargs)[1])
            model = _loaded_paddle(args.model, kwargs, state)
            got = verify.paddle_logits(model, x)
            written, _ = read_checkpoint(tmp, fmt=args.dst)
            torch_model.load_state_dict({k: torch.as_tensor(v) for k, v in written.items()}, strict=True)
            _check(verify.compare_logits(verify.torch_logits(torch_model, x), got, source, x), args.quiet)
    _say(args.quiet, f"wrote {args.dst}: {len(out)} tensors, {source} layout of {args.model}")


def _check(result: Any, quiet: bool) -> None:
    if not quiet or not result.passed:
        print(result.table(), flush=True)
    if not result.reference_finite:
        raise VerificationFailed("the source model's logits hold NaN or Inf, so they cannot tell a right "
                                 "conversion from a wrong one; pass --no-verify to convert without the check")
    if not result.passed and not result.conclusive:
        raise VerificationFailed("the source model's logits are all zero (a zero-initialised head?), so they cannot "
                                 "tell a right conversion from a wrong one; pass --no-verify to convert without the check")
    if not result.passed:
        why = f" ({result.notes[0]})" if result.notes else ""
        raise VerificationFailed(f"the converted model does not reproduce the source model's logits{why}")


def run(args: argparse.Namespace) -> None:
    kwargs: dict[str, Any] = dict(args.override)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.img_size is not None:
        kwargs["img_size"] = args.img_size
    from paddle_vit.variants import model_kwargs
    from paddle_vit.convert.io import check_destination, check_output
    model_kwargs(args.model, **kwargs)  # an unknown name fails here, with the close matches
    check_destination(args.dst, args.to)
    check_output(args.dst, args.force, inputs=[args.src])
    (to_paddle if args.to == "paddle" else to_torch)(args, kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_models is not None:
        print(list_models_table(args.list_models))
        return EXIT_OK
    if not (args.src and args.dst and args.model):
        parser.print_usage(sys.stderr)
        print("paddle-vit-convert: error: SRC, DST and --model are required (or --list-models)", file=sys.stderr)
        return EXIT_USAGE
    from paddle_vit.convert.core import ConversionError
    start = time.perf_counter()
    try:
        run(args)
    except VerificationFailed as exc:
        print(f"error: {exc}; nothing written to {args.dst}", file=sys.stderr)
        return EXIT_MISMATCH
    except (ConversionError, ValueError, OSError) as exc:
        print(f"error: {exc}\nnothing was written", file=sys.stderr)
        return EXIT_ERROR
    _say(args.quiet, f"done in {time.perf_counter() - start:.1f} s")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
