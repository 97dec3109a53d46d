"""A Hugging Face Hub cache written offline, laid out as ``huggingface_hub`` lays it out, and
checked by ``huggingface_hub``'s own cache scanner (so a layout it would not read fails here).

    <cache>/models--<org>--<name>/blobs/<sha256 of the file>          (LFS files are named by their hash)
    <cache>/models--<org>--<name>/snapshots/<commit>/<filename> -> ../../blobs/<sha256>
    <cache>/models--<org>--<name>/refs/main                           (the commit 'main' points to)
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def put_in_hf_cache(cache: Path, repo_id: str, files: dict[str, Path], revision: str = "main") -> str:
    """Put ``files`` (repo filename -> local file) into ``cache`` as one new commit of ``repo_id``
    that ``revision`` points to; returns the commit hash."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.file_download import repo_folder_name
    repo = Path(cache) / repo_folder_name(repo_id=repo_id, repo_type="model")
    blobs = {name: _sha256(src) for name, src in files.items()}
    commit = hashlib.sha1(repr(sorted(blobs.items())).encode()).hexdigest()  # 40 hex digits, as a git commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        blob = repo / "blobs" / blobs[name]
        if not blob.exists():
            shutil.copyfile(src, blob)
        link = snapshot / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    info = scan_cache_dir(cache)
    if info.warnings:
        raise AssertionError(f"huggingface_hub does not accept the cache written: {info.warnings}")
    found = {(r.repo_id, rev.commit_hash, f.file_name) for r in info.repos for rev in r.revisions for f in rev.files}
    missing = [name for name in files if (repo_id, commit, name) not in found]
    if missing:
        raise AssertionError(f"huggingface_hub's scan does not see {missing} in {repo_id}@{commit}")
    return commit
