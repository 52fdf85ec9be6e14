"""A DOCX whose relationships name parts the archive does not hold (an image dropped by the
tool that wrote it): python-docx refuses the whole file, Word and pandoc read the text. The
dangling relationships are left out and the file is opened again."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

# One <Relationship .../> element, self-closing as every producer writes it.
_RELATIONSHIP = re.compile(rb"<Relationship\b[^>]*/>")
_TARGET = re.compile(rb'\bTarget="([^"]*)"')
_EXTERNAL = re.compile(rb'\bTargetMode="External"')


def without_dangling_relationships(data: bytes) -> bytes | None:
    """``data`` with the relationships to missing internal parts removed; None when there
    are none to remove (the file is broken otherwise)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        parts = {name: archive.read(name) for name in archive.namelist()}
    changed = False
    for name, content in parts.items():
        if not name.endswith(".rels"):
            continue
        # word/_rels/document.xml.rels describes word/document.xml: targets are relative to
        # word/; _rels/.rels describes the package root.
        base = posixpath.dirname(posixpath.dirname(name))

        def keep(match: re.Match[bytes], base: str = base) -> bytes:
            nonlocal changed
            element = match.group(0)
            target = _TARGET.search(element)
            if target is None or _EXTERNAL.search(element):
                return element
            path = target.group(1).decode("utf-8", "replace")
            resolved = (
                path.lstrip("/")
                if path.startswith("/")
                else posixpath.normpath(posixpath.join(base, path))
            )
            if resolved in names:
                return element
            changed = True
            return b""

        parts[name] = _RELATIONSHIP.sub(keep, content)
    if not changed:
        return None
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return out.getvalue()
