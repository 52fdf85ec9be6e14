from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from dscall.config import DiscoverySettings
from dscall.documents.discover import discover, printable
from dscall.types import SkippedFile, SourceFile
from tests.unit.documents.builders import unreadable


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def _found(items: Iterable[SourceFile | SkippedFile]) -> tuple[list[str], list[SkippedFile]]:
    files: list[str] = []
    skipped: list[SkippedFile] = []
    for item in items:
        if isinstance(item, SourceFile):
            files.append(item.rel_path)
        else:
            skipped.append(item)
    return files, skipped


def _run(paths: list[str], **settings: object) -> tuple[list[str], list[SkippedFile]]:
    return _found(discover(paths, DiscoverySettings(**settings)))  # type: ignore[arg-type]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _touch(
        tmp_path / "docs",
        "b.pdf",
        "a.txt",
        "sub/z.docx",
        "sub/deeper/m.md",
        "A-upper.PDF",
        "notes.xlsx",
        ".hidden.txt",
        ".cache/c.pdf",
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path / "docs"


def test_folder_walk_is_recursive_sorted_and_relative(tree: Path) -> None:
    files, skipped = _run(["docs"])
    assert files == ["A-upper.PDF", "a.txt", "b.pdf", "sub/deeper/m.md", "sub/z.docx"]
    assert [(s.path, s.kind) for s in skipped] == [("docs/notes.xlsx", "unsupported")]
    assert "unsupported file type '.xlsx'" in skipped[0].reason


def test_source_file_fields(tree: Path) -> None:
    first = next(item for item in discover(["docs/sub"], DiscoverySettings()))
    assert isinstance(first, SourceFile)
    assert first.path == Path("docs/sub/deeper/m.md")
    assert (first.rel_path, first.doc_type, first.size) == ("deeper/m.md", "md", 1)


def test_hidden_files_and_folders_only_when_asked(tree: Path) -> None:
    files, _ = _run(["docs"], include_hidden=True)
    assert ".hidden.txt" in files
    assert ".cache/c.pdf" in files
    # Named explicitly, a hidden file is read even without the flag.
    assert _run(["docs/.hidden.txt"])[0] == ["docs/.hidden.txt"]


def test_file_argument_keeps_its_normalised_path(tree: Path) -> None:
    files, _ = _run(["./docs/sub/../b.pdf", str(tree / "a.txt")])
    assert files == ["docs/b.pdf", (tree / "a.txt").as_posix()]


def test_globs_expand_sorted_and_missing_arguments_are_reported(tree: Path) -> None:
    files, skipped = _run(["docs/**/*.md", "docs/*.pdf", "nothing/*.pdf", "absent.pdf"])
    assert files == ["docs/sub/deeper/m.md", "docs/b.pdf"]
    assert [(s.path, s.kind, s.reason) for s in skipped] == [
        ("nothing/*.pdf", "missing", "no file matches this pattern"),
        ("absent.pdf", "missing", "no such file or folder"),
    ]


def test_include_and_exclude(tree: Path) -> None:
    assert _run(["docs"], include=("*.pdf", "*.PDF"))[0] == ["A-upper.PDF", "b.pdf"]
    # A folder pattern prunes the folder; a name pattern matches at any depth.
    assert _run(["docs"], exclude=("sub",))[0] == ["A-upper.PDF", "a.txt", "b.pdf"]
    assert _run(["docs"], exclude=("*.md",))[0] == ["A-upper.PDF", "a.txt", "b.pdf", "sub/z.docx"]
    assert _run(["docs"], exclude=("sub/deeper/*",))[0] == [
        "A-upper.PDF",
        "a.txt",
        "b.pdf",
        "sub/z.docx",
    ]
    # Filtered files are dropped silently, not reported as skipped.
    files, skipped = _run(["docs"], include=("*.txt",))
    assert (files, skipped) == (["a.txt"], [])


def test_symlink_loop_back_to_a_parent(tree: Path) -> None:
    (tree / "sub" / "loop").symlink_to("..")
    files, skipped = _run(["docs"])
    assert files == ["A-upper.PDF", "a.txt", "b.pdf", "sub/deeper/m.md", "sub/z.docx"]
    loops = [s for s in skipped if s.kind == "loop"]
    assert [(s.path, s.reason) for s in loops] == [
        ("docs/sub/loop", "symbolic link loop: leads back to a parent folder")
    ]


def test_symlink_pointing_at_itself_and_broken_link(tree: Path) -> None:
    (tree / "self.pdf").symlink_to("self.pdf")
    (tree / "dangling.pdf").symlink_to("nowhere.pdf")
    _, skipped = _run(["docs"])
    kinds = {s.path: (s.kind, s.reason) for s in skipped}
    assert kinds["docs/self.pdf"] == ("loop", "symbolic link loop")
    assert kinds["docs/dangling.pdf"] == ("unreadable", "broken symbolic link")


def test_symlinked_folder_is_followed_once(tree: Path) -> None:
    (tree / "again").symlink_to("sub")
    files, skipped = _run(["docs"])
    assert "again/z.docx" in files
    assert "sub/z.docx" not in files  # "again" sorts first and took the folder
    assert [s.reason for s in skipped if s.kind == "loop"] == [
        "folder already read through another symbolic link"
    ]


def test_special_files_are_not_opened(tree: Path) -> None:
    os.mkfifo(tree / "pipe.txt")
    _, skipped = _run(["docs"])
    assert ("docs/pipe.txt", "unreadable") in [(s.path, s.kind) for s in skipped]


def test_unreadable_file_and_folder(tree: Path) -> None:
    with unreadable(Path("docs/b.pdf")):
        files, skipped = _run(["docs"])
    assert "b.pdf" not in files
    assert ("docs/b.pdf", "unreadable", "permission denied") in [
        (s.path, s.kind, s.reason) for s in skipped
    ]
    with unreadable(Path("docs/sub")):
        files, skipped = _run(["docs"])
    assert "sub/z.docx" not in files
    assert ("docs/sub", "unreadable") in [(s.path, s.kind) for s in skipped]


def test_discovery_is_lazy(tree: Path) -> None:
    found = discover(["docs"], DiscoverySettings())
    first = next(found)
    assert isinstance(first, SourceFile)
    # Created after the first file was handed out: a lazy walk still lists the folder later.
    _touch(tree / "sub", "late.txt")
    rest, _ = _found(found)
    assert "sub/late.txt" in rest


def test_control_characters_in_names_are_escaped_for_display(tree: Path) -> None:
    name = "evil\x1b[31mred\nline.csv"
    (tree / name).write_text("x")
    _, skipped = _run(["docs"])
    shown = next(s.path for s in skipped if "evil" in s.path)
    assert shown == "docs/evil\\x1b[31mred\\nline.csv"
    assert "\x1b" not in shown


def test_undecodable_name_bytes_become_escapes(tree: Path) -> None:
    raw = os.path.join(b"docs", b"caf\xe9.txt")
    with open(raw, "wb") as handle:
        handle.write(b"x")
    files, _ = _run(["docs"])
    assert "caf\\xe9.txt" in files
    assert all(name.encode("utf-8") for name in files)


def test_printable() -> None:
    assert printable("plain name.pdf") == "plain name.pdf"
    assert printable("tab\there") == "tab\\there"
    assert printable("rtl\u202eexe.pdf") == "rtl\\u202eexe.pdf"
    assert printable("中文 名字.docx") == "中文 名字.docx"
