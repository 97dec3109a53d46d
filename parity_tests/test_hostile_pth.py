"""``.pth`` zips read by memory-mapping only after each record matches what the pickle declares,
and deflate-compressed zips read as ``torch.load`` reads them (issue 15, item 5).

Each odd zip is rewritten from a real ``torch.save`` file with records 64-byte aligned as torch
writes them (``hostile_files.write_zip``); plain ``torch.load`` (no mmap) is the referee: what it
refuses we refuse, what it reads we convert to the same bits.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from convert_helpers import cli_args, folder_listing, run_cli, source_state
from hostile_files import write_zip, zip_records
from paddle_vit.convert import ConversionError
from paddle_vit.convert import io as cio


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pth") / "good.pth"
    torch.save(source_state("vit", "timm"), path)
    return path


def _record(records: list, key: str) -> int:
    return next(i for i, (name, _) in enumerate(records) if name.endswith(f"/data/{key}"))


def _edit(saved: Path, folder: Path, how: str) -> Path:
    records = zip_records(saved)
    i = _record(records, "0")
    name, data = records[i]
    if how == "record-shorter":      # the pickle declares more bytes than the record holds
        records[i] = (name, data[: len(data) // 2])
    elif how == "record-longer":
        records[i] = (name, data + data)
    elif how == "record-missing":
        del records[i]
    return write_zip(folder / f"{how}.pth", records)


@pytest.mark.parametrize("how,expected", [
    ("record-shorter", "holds {half} bytes; data.pkl declares"),
    ("record-longer", "holds {double} bytes; data.pkl declares"),
    ("record-missing", "the zip has no record data/0"),
])
def test_record_that_does_not_match_its_declaration_is_refused(tmp_path, saved, how, expected):
    """With mmap, torch hands out the next record's bytes as weights for a short record (the old
    reader converted it); plain torch.load refuses; so do we, naming the record and both sizes."""
    path = _edit(saved, tmp_path, how)
    size = len(zip_records(saved)[_record(zip_records(saved), "0")][1])
    with pytest.raises(Exception):
        torch.load(path, weights_only=True, mmap=False)  # the referee refuses it too
    before = folder_listing(tmp_path)
    code, out = run_cli(path, tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 1 and expected.format(half=size // 2, double=2 * size) in out and "Traceback" not in out, out
    assert folder_listing(tmp_path) == before
    with pytest.raises(ConversionError, match=f"{how}.pth"):
        cio.read_checkpoint(path)


@pytest.mark.parametrize("which", ["all", "data.pkl-only", "one-record"])
def test_deflated_zip_reads_as_torch_load_reads_it(tmp_path, saved, which):
    """A zip whose records are deflate-compressed is legal (torch.load reads it); the old reader
    mapped it and handed out compressed bytes, then refused it as corrupt."""
    records = zip_records(saved)
    path = tmp_path / f"deflated-{which}.pth"
    if which == "all":
        write_zip(path, records, zipfile.ZIP_DEFLATED)
    else:  # stored zip, then the chosen record recompressed in place of its stored copy
        target = records[0][0] if which == "data.pkl-only" else records[_record(records, "1")][0]
        with zipfile.ZipFile(path, "w") as z:
            for name, data in records:
                z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data,
                           compress_type=zipfile.ZIP_DEFLATED if name == target else zipfile.ZIP_STORED)
    ref = torch.load(path, weights_only=True, mmap=False)
    assert cio.storage_check(path) is False  # read without mmap
    ours, layout = cio.read_checkpoint(path)
    assert layout == "torch" and list(ours) == list(ref)
    for key, value in ref.items():
        assert torch.equal(ours[key], value), key
    code, out = run_cli(path, tmp_path / "out.pdparams", *cli_args("vit"))
    assert code == 0 and "PASS" in out, out
    assert run_cli(saved, tmp_path / "ref.pdparams", *cli_args("vit"), "--no-verify")[0] == 0
    got, want = cio.read_pdparams(tmp_path / "out.pdparams"), cio.read_pdparams(tmp_path / "ref.pdparams")
    assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want)


def test_torch_save_files_are_still_memory_mapped(tmp_path, saved):
    """The check passes every record of a real torch.save file, so it is mapped (not copied)."""
    assert cio.storage_check(saved) is True
    shared = {"a": torch.arange(6.0), "b": torch.zeros(3, dtype=torch.float16)}
    shared["view"] = shared["a"][2:]  # a view: one storage declared twice
    torch.save(shared, tmp_path / "views.pth")
    assert cio.storage_check(tmp_path / "views.pth") is True
    state, _ = cio.read_checkpoint(tmp_path / "views.pth")
    assert torch.equal(state["view"], torch.arange(2.0, 6.0))


def test_hostile_pickle_in_a_zip_is_still_judged_by_torch(tmp_path):
    """The storage scan runs the zip's pickle on our inert interpreter: code it names is not run,
    and torch's weights-only loader still refuses it."""
    from test_convert_robustness import MARKER, _CreatesFile
    torch.save({"w": _CreatesFile(tmp_path)}, tmp_path / "evil.pth")
    assert cio.storage_check(tmp_path / "evil.pth") is True and not (tmp_path / MARKER).exists()
    with pytest.raises(ConversionError, match="refused to load"):
        cio.read_checkpoint(tmp_path / "evil.pth")
    assert not (tmp_path / MARKER).exists()
