"""The ``.pdparams`` reader against hostile and odd files (issue 15, item 1).

Hostile files are pickles assembled opcode by opcode (``hostile_files.Pickle``); legal ones are
written by ``paddle.save`` itself (protocols 2, 3, 4), by ``pickle`` (protocols 2-5: the odd but
legal arrays numpy pickles) and by our writer, and must read exactly as ``paddle.load`` /
``pickle.load`` read them. A file that crashed the old reader (SIGSEGV) runs in a fresh process;
memory bounds are measured there too (peak RSS, not time).
"""
from __future__ import annotations

import pickle
import struct
from typing import Callable

import numpy as np
import paddle
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from convert_helpers import TINY, cli_args, folder_listing, run_cli
from hostile_files import Pickle, measure_reads, run_python
from paddle_vit.convert import ConversionError, load_pretrained
from paddle_vit.convert import io as cio
from paddle_vit.registry import create_model

NAME, KWARGS = TINY["vit"]


def _tiny_model():
    return create_model(NAME, **KWARGS)


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    """The tiny ViT's tensors with non-trivial values (no unit scales, no zero biases)."""
    rng = np.random.default_rng(0)
    return {k: (rng.standard_normal(v.shape) * 0.1 + 0.05).astype(np.float32)
            for k, v in _tiny_model().state_dict().items()}


def _entries(p: Pickle, weights: dict, skip: tuple = ()) -> Pickle:
    """``key: array`` items of ``weights`` as numpy pickles them (protocol 4), for a dict on the stack."""
    for key, value in weights.items():
        if key not in skip:
            p.str(key).reconstruct(value.shape, "f4", value.tobytes()).setitem()
    return p


def _struct_state(p: Pickle, field_code: str, flags: int) -> Pickle:
    """The state of a one-field structured dtype ``[('a', field_code)]`` as numpy pickles it."""
    p.mark().int(3).str("|").none().value(("a",))
    p.dict().str("a").mark().dtype(field_code).int(0).tuple().setitem()
    return p.int(8).int(1).int(flags).tuple()


def _mutated_dtype_array(p: Pickle, shape: tuple) -> Pickle:
    """An array of a structured int64 dtype; then the dtype is BUILT again with an object field,
    so that the array's bytes (0x41...) become object pointers: numpy dereferences them."""
    p.global_("numpy", "dtype").str("V8").bool(False).bool(True).tuple(3).reduce().put(900)
    _struct_state(p, "i8", 16).build().raw(b"0")
    p.global_("numpy._core.multiarray", "_reconstruct").global_("numpy", "ndarray").int(0).tuple(1).bytes(b"b")
    p.tuple(3).reduce().mark().int(1).value(shape).get(900).bool(False)
    p.bytes(b"\x41" * 8 * int(np.prod(shape))).tuple().build()
    return _struct_state(p.get(900), "O8", 27).build().raw(b"0")


def _with(weights: dict, key: str, write: Callable[[Pickle], Pickle]) -> bytes:
    """The tiny ViT's state_dict with ``key``'s value written by ``write``."""
    p = _entries(Pickle(4).dict(), weights, skip=(key,))
    return write(p.str(key)).setitem().stop().data()


def _hostile(weights: dict) -> dict[str, tuple[bytes, str]]:
    """id -> (file bytes, a fragment of the refusal); each breaks a rule of the reader."""
    pos = weights["pos_embed"]
    nbytes = pos.size * 4
    cases = {
        # numpy.ndarray(shape, '<f4', buffer=16 bytes, offset=-nbytes): reads the process's heap
        "ndarray-negative-offset": (lambda p: p.global_("numpy", "ndarray").mark().value(pos.shape).str("<f4")
                                    .bytes(b"\0" * 16).int(-nbytes).tuple().reduce(),
                                    "numpy.ndarray is called directly"),
        # _reconstruct(ndarray, shape, 'f') with no BUILD: an uninitialised array of the right shape
        "reconstruct-uninitialised": (lambda p: p.global_("numpy._core.multiarray", "_reconstruct")
                                      .global_("numpy", "ndarray").value(pos.shape).bytes(b"f").tuple(3).reduce(),
                                      "is not an array as numpy pickles one"),
        "reconstruct-never-built": (lambda p: p.reconstruct(pos.shape, "f4", None), "never given their data"),
        "object-dtype": (lambda p: p.reconstruct(pos.shape, "O8", b"\0" * nbytes * 2), "is an object dtype"),
        "structured-dtype": (lambda p: p.global_("numpy", "dtype").str("V8").bool(False).bool(True).tuple(3)
                             .reduce().raw(_struct_state(Pickle(None), "i8", 16).data()).build(),
                             "structured or void dtype"),
        "complex-dtype": (lambda p: p.reconstruct((4,), "c8", b"\0" * 32), "is a complex dtype"),
        "dtype-with-fields-state": (lambda p: p.global_("numpy", "dtype").str("f4").bool(False).bool(True)
                                    .tuple(3).reduce().value((3, "<", None, ("a",), {"a": 1}, 4, 1, 16)).build(),
                                    "not that of a plain numeric dtype"),
        "dtype-built-twice": (lambda p: p.dtype("f4").value((3, "<", None, None, None, -1, -1, 0)).build(),
                              "given its state a second time"),
        "size-mismatch": (lambda p: p.reconstruct(pos.shape, "f4", b"\0" * (nbytes - 8)),
                          f"needs {nbytes} bytes; the file gives {nbytes - 8}"),
        "negative-shape": (lambda p: p.reconstruct((-1, 4), "f4", b""), "non-negative integers"),
        "frombuffer-mismatch": (lambda p: p.frombuffer(b"\0" * 12, "f4", (1, 5, 32)), "the file gives 12"),
        "global-os-system": (lambda p: p.global_("os", "system").str("touch CODE_RAN").tuple(1).reduce(),
                             "the file references os.system"),
        "global-builtins-eval": (lambda p: p.global_("builtins", "eval").str("1").tuple(1).reduce(),
                                 "the file references builtins.eval"),
        "newobj": (lambda p: p.global_("collections", "OrderedDict").tuple(0).raw(b"\x81"), "opcode NEWOBJ"),
        "inst": (lambda p: p.mark().raw(b"ios\nsystem\n"), "opcode INST"),
        "ext1": (lambda p: p.raw(b"\x82\x01"), "opcode EXT1"),
        "persid": (lambda p: p.str("x").raw(b"Q"), "loads a persistent object"),
        "set": (lambda p: p.raw(b"\x8f"), "opcode EMPTY_SET"),
        "out-of-band-buffer": (lambda p: p.raw(b"\x97"), "opcode NEXT_BUFFER"),
        "self-containing-list": (lambda p: p.list().put(7).get(7).append(), "holds a list, not a numeric array"),
    }
    files = {k: (_with(weights, "pos_embed", write), expect) for k, (write, expect) in cases.items()}
    files["int-keys"] = (Pickle(4).dict().int(1).int(2).setitem().stop().data(), "a dict key is a int")
    files["declared-2**40-bytes"] = (Pickle(4).bytes8(b"\0" * 16, declared=2**40).stop().data(), "bytes declared")
    files["no-stop"] = (_with(weights, "pos_embed", lambda p: p.reconstruct(pos.shape, "f4", pos.tobytes()))[:-1],
                        "ends before its STOP")
    files["unknown-opcode"] = (b"\x80\x04\xff.", "unknown opcode")
    files["protocol-6"] = (b"\x80\x06N.", "pickle protocol 6")
    return files


HOSTILE_IDS = ["ndarray-negative-offset", "reconstruct-uninitialised", "reconstruct-never-built", "object-dtype",
               "structured-dtype", "complex-dtype", "dtype-with-fields-state", "dtype-built-twice", "size-mismatch",
               "negative-shape", "frombuffer-mismatch", "global-os-system", "global-builtins-eval", "newobj", "inst",
               "ext1", "persid", "set", "out-of-band-buffer", "self-containing-list", "int-keys",
               "declared-2**40-bytes", "no-stop", "unknown-opcode", "protocol-6"]


@pytest.mark.parametrize("case", HOSTILE_IDS)
def test_hostile_pdparams_is_refused(tmp_path, weights, case):
    """Each file is refused by the reader, by ``create_model`` and by the CLI, with one message
    naming the file and the reason; no traceback, nothing written, nothing loaded."""
    data, expected = _hostile(weights)[case]
    path = tmp_path / "hostile.pdparams"
    path.write_bytes(data)
    with pytest.raises(ConversionError, match="hostile.pdparams") as err:
        cio.read_checkpoint(path)
    assert expected in str(err.value), str(err.value)
    model = _tiny_model()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(ConversionError):
        load_pretrained(model, path)
    assert all(np.array_equal(before[k], v.numpy()) for k, v in model.state_dict().items())
    listing = folder_listing(tmp_path)
    code, out = run_cli("--to", "torch", path, tmp_path / "out.pth", *cli_args("vit"))
    assert code == 1 and expected in out and "Traceback" not in out, out
    assert folder_listing(tmp_path) == listing


# --- the file that crashed the old reader: run where a crash cannot take pytest down -----------------
_CREATE = """
import sys
from paddle_vit.convert import ConversionError
from paddle_vit.registry import create_model
try:
    create_model(sys.argv[2], pretrained=sys.argv[1], **eval(sys.argv[3]))
    print("LOADED")
except ConversionError as exc:
    print("REFUSED", exc)
"""


@pytest.mark.parametrize("nested", [False, True], ids=["as-pos_embed", "under-model_ema"])
def test_dtype_mutated_after_use_cannot_crash(tmp_path, weights, nested):
    """A structured dtype given an object field after an array uses it made numpy dereference file
    bytes as pointers (SIGSEGV), also when the array sat under ``model_ema`` beside valid weights."""
    shape = weights["pos_embed"].shape
    p = _entries(Pickle(4).dict(), weights, skip=() if nested else ("pos_embed",))
    if nested:
        _entries(p.str("model_ema").dict(), weights, skip=("pos_embed",))
    _mutated_dtype_array(p.str("pos_embed"), shape).setitem()
    if nested:
        p.setitem()
    path = p.stop().write(tmp_path / "mutated.pdparams")
    proc = run_python(_CREATE, path, NAME, repr(KWARGS))
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0 and "REFUSED" in out and "structured or void dtype" in out, \
        (proc.returncode, out[-3000:])
    cli = run_python("import sys; from paddle_vit.convert.cli import main; sys.exit(main(sys.argv[1:]))",
                     "--to", "torch", path, tmp_path / "out.pth", *cli_args("vit"))
    err = cli.stderr.decode()
    assert cli.returncode == 1 and "structured or void dtype" in err and "Traceback" not in err, (cli.returncode, err)
    assert not (tmp_path / "out.pth").exists()


# --- memory: a refusal costs at most a small multiple of the file's size -------------------------
def _memory_cases() -> dict[str, bytes]:
    big_list = b"\x80\x04" + b"]" * (4 << 20) + b"."          # 4 MiB of EMPTY_LIST: 4M lists
    dups = b"\x80\x04N" + b"2" * (4 << 20) + b"."             # 4 MiB of DUP: a 4M-slot stack
    marks = b"\x80\x04" + b"(" * (4 << 20) + b"N."            # 4 MiB of MARK
    huge_shape = Pickle(4).dict().str("w").reconstruct((2**40,), "f4", b"\0" * 8).setitem().stop().data()
    object_array = (Pickle(4).dict().str("w").global_("numpy._core.multiarray", "_reconstruct")
                    .global_("numpy", "ndarray").mark().int(300_000_000).tuple().global_("numpy", "dtype")
                    .str("O8").bool(False).bool(True).tuple(3).reduce().tuple(3).reduce().setitem().stop().data())
    return {
        "memo-index-2**27": b"\x80\x04Nr" + struct.pack("<I", 2**27) + b".",   # 9 bytes
        "memo-index-2**29": b"\x80\x04Nr" + struct.pack("<I", 2**29) + b".",
        "object-dtype-300M": object_array,
        "declared-shape-2**40": huge_shape,
        "long4-2**31-bytes": b"\x80\x04\x8b" + struct.pack("<i", 2**31 - 1) + b".",
        "4M-empty-lists": big_list,
        "4M-dup": dups,
        "4M-marks": marks,
    }


@pytest.fixture(scope="module")
def memory_figures(tmp_path_factory) -> dict[str, dict]:
    """Every memory case read once, each in its own forked process (one interpreter start for all)."""
    folder = tmp_path_factory.mktemp("blowup")
    cases = _memory_cases()
    paths = []
    for i, data in enumerate(cases.values()):
        paths.append(folder / f"blowup{i}.pdparams")
        paths[-1].write_bytes(data)
    return dict(zip(cases, measure_reads(paths)))


@pytest.mark.parametrize("case", list(_memory_cases()))
def test_refusal_memory_is_bounded_by_file_size(memory_figures, case):
    """Peak RSS of the refusal (``ru_maxrss`` of a process forked after the imports) stays within
    64 MiB + 32 x the file's size above its RSS before reading; the old reader took 2.3 GiB for a
    9-byte memo index of 2**27, 8.3 GiB for 2**29 and 2.5 GiB for a 96-byte object array."""
    data = _memory_cases()[case]
    got = memory_figures[case]
    bound = (64 << 20) + 32 * len(data)
    assert got["outcome"] == "refused" and "blowup" in got["message"], got
    assert got["peak_before"] <= got["rss"] + (16 << 20), got  # the fork's peak starts at its RSS
    grew = got["peak"] - got["rss"]
    assert grew <= bound, (
        f"{case}: a {len(data)}-byte file raised the peak RSS by {grew / 2**20:.0f} MiB "
        f"(bound {bound / 2**20:.0f} MiB): {got}")


# --- legal files read exactly as paddle.load / pickle.load read them ------------------------------
def _assert_same(ours: dict, ref: dict) -> None:
    """Same keys in the same order; each array the same type, shape and values. The byte order may
    differ: numpy's own unpickler swaps big-endian data to native, ours reads it in place."""
    assert list(ours) == list(ref)
    for key, value in ref.items():
        value = np.asarray(value)
        native = ours[key].dtype.newbyteorder("=")
        assert native == value.dtype.newbyteorder("=") and ours[key].shape == value.shape, key
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_paddle_save_output_reads_as_paddle_load_reads_it(tmp_path, weights, protocol):
    """``paddle.save(state_dict, protocol=2|3|4)``: protocol 2 writes bytes through ``_codecs.encode``,
    which the old reader refused as code."""
    model = _tiny_model()
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in weights.items()})
    path = tmp_path / "m.pdparams"
    paddle.save(model.state_dict(), str(path), protocol=protocol)
    ours = cio.read_pdparams(path)
    ref = paddle.load(str(path), return_numpy=True)
    _assert_same(ours, ref)
    _assert_same(ours, weights)
    loaded = create_model(NAME, pretrained=path, **KWARGS)
    _assert_same({k: v.numpy() for k, v in loaded.state_dict().items()}, weights)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_nested_paddle_save_with_numpy_scalars(tmp_path, weights, protocol):
    """A training checkpoint: ``{"model": state_dict, "epoch": 3, "best": np.float32(0.5), ...}``.
    ``paddle.save`` writes its tensors as ``tuple((name, array))`` and the scalar through numpy's
    ``scalar``: both were refused as code by the old reader."""
    model = _tiny_model()
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in weights.items()})
    path = tmp_path / "ckpt.pdparams"
    paddle.save({"model": model.state_dict(), "epoch": 3, "best": np.float32(0.5), "lr": np.float64(1e-3),
                 "history": [np.int64(1), 2.5, "x"]}, str(path), protocol=protocol)
    ours = cio.read_pdparams(path)
    _assert_same(ours, {k: np.asarray(v) for k, v in paddle.load(str(path), return_numpy=True)["model"].items()})
    _assert_same(ours, weights)
    code, out = run_cli("--to", "torch", path, tmp_path / "out.pth", *cli_args("vit"))
    assert code == 0, out


def _odd_arrays() -> dict[str, object]:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 6))
    shared = rng.standard_normal(5).astype(np.float32)
    return {
        "f32": base.astype(np.float32), "f16": base.astype(np.float16), "f64": base,
        "f32-big-endian": base.astype(">f4"), "i64": np.arange(12).reshape(3, 4), "i8": np.arange(-4, 4, dtype=np.int8),
        "u8": np.arange(6, dtype=np.uint8), "bool": base > 0, "fortran": np.asfortranarray(base.astype(np.float32)),
        "strided": base.astype(np.float32)[:, ::2], "transposed": base.astype(np.float32).T, "0-d": np.array(2.5),
        "empty": np.zeros((0, 4), np.float32), "scalar-f64": np.float64(1.25), "scalar-i32": np.int32(-7),
        "scalar-bool": np.bool_(True), "shared-a": shared, "shared-b": shared,
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_legal_numpy_pickle_reads_as_pickle_reads_it(tmp_path, protocol):
    """Every layout numpy pickles an array in (C, Fortran, strided, 0-d, empty, big-endian, scalars,
    one array stored twice through the memo), per protocol: the same dtype, shape and values."""
    state = _odd_arrays()
    path = tmp_path / "odd.pdparams"
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=protocol)
    ours = cio.read_pdparams(path)
    with open(path, "rb") as f:
        ref = pickle.load(f)  # our own file: trusted
    _assert_same(ours, {k: np.asarray(v) for k, v in ref.items()})
    assert ours["shared-a"] is ours["shared-b"]
    assert all(not v.flags.writeable for v in ours.values())  # views of the mapped file


def test_split_parameters_are_joined_as_paddle_load_joins_them(tmp_path):
    """``paddle.save(protocol=2|3)`` splits a parameter over 2**30 bytes into 1-D slices listed under
    ``UnpackBigParamInfor@@``; too big to write in a test, the same table is written by hand."""
    w = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    flat = w.ravel()
    state = {"w@@.0": flat[:5], "w@@.1": flat[5:], "b": np.ones(2, np.float32),
             "UnpackBigParamInfor@@": {"w": {"OriginShape": (3, 4), "slices": ["w@@.0", "w@@.1"]}},
             "StructuredToParameterName@@": {"w": "linear_0.w_0", "b": "linear_0.b_0"}}
    path = tmp_path / "split.pdparams"
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=2)
    ours = cio.read_pdparams(path)
    ref = paddle.load(str(path), return_numpy=True)
    assert sorted(ours) == sorted(ref) == ["b", "w"]
    _assert_same({k: ours[k] for k in ref}, ref)
    np.testing.assert_array_equal(ours["w"], w)


def test_our_writer_reads_back_in_paddle(tmp_path, weights):
    cio.write_pdparams(weights, tmp_path / "w.pdparams")
    _assert_same(paddle.load(str(tmp_path / "w.pdparams"), return_numpy=True), weights)
    _assert_same(cio.read_pdparams(tmp_path / "w.pdparams"), weights)


# --- damaged legal files: a ConversionError or the arrays, nothing else ----------------------------
def _small_file(protocol: int) -> bytes:
    rng = np.random.default_rng(3)
    state = {"a": rng.standard_normal((2, 3)).astype(np.float32), "b": np.arange(4), "c": np.float16(1.5)}
    return pickle.dumps(state, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_truncation_is_refused(tmp_path, protocol):
    data = _small_file(protocol)
    path = tmp_path / "cut.pdparams"
    for end in range(1, len(data)):
        path.write_bytes(data[:end])
        with pytest.raises(ConversionError, match="cut.pdparams"):
            cio.read_pdparams(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(protocol=st.sampled_from([2, 4, 5]), edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                            min_size=1, max_size=4))
def test_corrupted_bytes_give_arrays_or_one_error(tmp_path, protocol, edits):
    """Random byte edits of a legal file: the reader returns numeric arrays or raises ConversionError;
    never another exception, never a crash (this runs in the pytest process on purpose)."""
    data = bytearray(_small_file(protocol))
    for where, value in edits:
        data[where % len(data)] = value
    path = tmp_path / "flipped.pdparams"
    path.write_bytes(bytes(data))
    try:
        state = cio.read_pdparams(path)
    except ConversionError:
        return
    assert all(isinstance(v, np.ndarray) and v.dtype.kind in "fiub" for v in state.values())


def test_interpreter_only_knows_plain_opcodes():
    """Refused opcodes are named; no opcode of pickle is silently accepted or unknown to the table."""
    from paddle_vit.convert import pickle_vm
    names = {v: k for k, v in vars(pickle).items() if isinstance(v, bytes) and len(v) == 1 and k.isupper()}
    assert pickle_vm._OPCODE_NAMES == names
