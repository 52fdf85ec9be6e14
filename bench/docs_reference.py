"""Reference texts for `make bench-docs`: poppler's ``pdftotext`` for PDF, ``pandoc`` for DOCX.

- ``pdftotext -enc UTF-8 FILE -`` (reading order, not ``-layout``): poppler joins line-end
  hyphenation itself, reads filled form fields, and opens AES-256 files with an empty user
  password, so it is the text a careful reader gets.
- ``pandoc -t plain --wrap=none`` (tracked changes accepted, pandoc's default; footnotes and
  endnotes after the body, marked ``[1]``), with a small Lua filter (``TABLE_FILTER``) that
  writes each table row as one line ``a | b``: pandoc's own grid tables wrap the cells side by
  side, which mixes the cells' words line by line (a reading order no reader has), and made
  wide enough not to wrap, pad one 3GPP specification to 1.3 GB. Words are the same either
  way. Run again with ``-M rows-only``, the same filter prints only those table rows, one a
  line, for the table measure. The filter also drops images, whose alt text pandoc prints
  ("[A jellyfish in water Description automatically generated]") but which is no text of the
  document (pdftotext has none either), and writes sub- and superscripts as their plain
  letters, as Word shows them and dscall reads them ("F" + subscript "UL" is "FUL", where
  pandoc's plain writer marks it "F_(UL)").

A reference is cached in the corpus cache under ``refs/`` by the file's sha256 and the tool's
version, so a rerun runs neither tool again. A tool that fails or runs past ``TIMEOUT_S``
gives a failed reference with its one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT_S = 120.0
TOOLS = {"pdf": "pdftotext", "docx": "pandoc"}
APT_PACKAGES = {"pdftotext": "poppler-utils", "pandoc": "pandoc"}
TABLE_FILTER = """
local function cell_text(cell)
  local plain = pandoc.write(pandoc.Pandoc(cell.contents), "plain")
  return (plain:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function row_text(row)
  local cells = {}
  for _, cell in ipairs(row.cells) do table.insert(cells, cell_text(cell)) end
  return pandoc.Plain({pandoc.Str(table.concat(cells, " | "))})
end

local all_rows = {}

function Table(tbl)
  local rows = {}
  for _, row in ipairs(tbl.head.rows) do table.insert(rows, row_text(row)) end
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.head) do table.insert(rows, row_text(row)) end
    for _, row in ipairs(body.body) do table.insert(rows, row_text(row)) end
  end
  for _, row in ipairs(tbl.foot.rows) do table.insert(rows, row_text(row)) end
  for _, row in ipairs(rows) do table.insert(all_rows, row) end
  return rows
end

function Pandoc(doc)
  if doc.meta["rows-only"] then return pandoc.Pandoc(all_rows) end
end

function Image(img)
  return {}
end

function Subscript(el)
  return el.content
end

function Superscript(el)
  return el.content
end
"""


@dataclass(frozen=True)
class Reference:
    ok: bool
    text: str = ""
    error: str = ""
    table_rows: list[list[str]] = field(default_factory=list)  # DOCX only


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS.values() if shutil.which(tool) is None]


def tool_version(tool: str) -> str:
    flag = "-v" if tool == "pdftotext" else "--version"
    done = subprocess.run([tool, flag], capture_output=True, text=True, timeout=30)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else tool


def reference(path: Path, doc_type: str, cache: Path, version: str) -> Reference:
    """The reference text of ``path``, from ``cache`` when it was made before."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    tag = hashlib.sha256((version + TABLE_FILTER).encode()).hexdigest()[:8]
    cached = cache / f"{digest}-{doc_type}-{tag}.json"
    if cached.exists():
        return Reference(**json.loads(cached.read_text()))
    cache.mkdir(parents=True, exist_ok=True)
    if doc_type == "pdf":
        made = _pdf_reference(path)
    else:
        lua = cache / f"tables-{tag}.lua"
        if not lua.exists():
            lua.write_text(TABLE_FILTER)
        made = _docx_reference(path, lua)
    cached.write_text(json.dumps(made.__dict__))
    return made


def _run(command: list[str]) -> tuple[bool, str, str]:
    """(ok, stdout, one-line reason)."""
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, "", f"{command[0]} ran past {TIMEOUT_S:.0f} s"
    out = done.stdout.decode("utf-8", errors="replace")
    errors = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    if done.returncode != 0:
        reason = errors[-1] if errors else f"exit status {done.returncode}"
        return False, out, f"{command[0]}: {reason}"
    return True, out, ""


def _pdf_reference(path: Path) -> Reference:
    ok, text, error = _run(["pdftotext", "-enc", "UTF-8", str(path), "-"])
    return Reference(ok, text.replace("\f", "\n"), error)


def _docx_reference(path: Path, table_filter: Path) -> Reference:
    plain = ["pandoc", "-f", "docx", "-t", "plain", "--wrap=none", f"--lua-filter={table_filter}"]
    ok, text, error = _run([*plain, str(path)])
    if not ok:
        return Reference(False, text, error)
    ok_rows, rows, _ = _run([*plain, "-M", "rows-only=true", str(path)])
    table_rows = [[line] for line in rows.splitlines() if line.strip()] if ok_rows else []
    return Reference(True, text, "", table_rows)
