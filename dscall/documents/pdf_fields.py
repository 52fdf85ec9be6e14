"""The values typed or chosen in a page's form fields, read with pypdf.

pypdf's ``extract_text`` reads the page's content only, and a filled field's value lives in
its widget annotation (``/V``, inherited from the parent field when the widget is one of
several). Text fields (``/Tx``) and choice fields (``/Ch``) hold text; buttons hold state names
(``/Yes``, ``/Off``), which are not text a reader sees, so they are left out, as are hidden
widgets.
"""

from __future__ import annotations

from typing import Any

_TEXT_FIELD_TYPES = ("/Tx", "/Ch")
_COMBO = 1 << 17  # a choice field's Combo flag (/Ff bit 18): a drop-down shows its value only
# Annotation flags Hidden and NoView: a widget no viewer shows.
_NOT_SHOWN = 0x02 | 0x20
# A field hierarchy is a tree; a cycle in a damaged file must not loop.
_MAX_PARENTS = 32


def field_values(page: Any) -> list[str]:
    """Values of the text and choice fields whose widgets are on ``page`` (a pypdf page), in
    annotation order, each once per widget."""
    annotations = page.get("/Annots")
    if annotations is None:
        return []
    values: list[str] = []
    for reference in annotations.get_object():
        widget = reference.get_object()
        if not hasattr(widget, "get") or widget.get("/Subtype") != "/Widget":
            continue
        if int(widget.get("/F", 0)) & _NOT_SHOWN:
            continue
        kind = _inherited(widget, "/FT")
        options = _inherited(widget, "/Opt")
        flags = _inherited(widget, "/Ff")
        if kind == "/Ch" and options is not None and not int(flags or 0) & _COMBO:
            text = _options(options)  # a list box shows all its options
            if text:
                values.append(text)
            continue
        value = _inherited(widget, "/V")
        if kind not in _TEXT_FIELD_TYPES or value is None:
            continue
        text = _as_text(value)
        if text:
            values.append(text)
    return values


def _inherited(field: Any, key: str) -> Any:
    for _ in range(_MAX_PARENTS):
        if key in field:
            return field[key].get_object()
        parent = field.get("/Parent")
        if parent is None:
            return None
        field = parent.get_object()
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, list):  # a multiple-choice list field
        return ", ".join(_as_text(item.get_object()) for item in value)
    return str(value).strip()


def _options(options: Any) -> str:
    """A list box's /Opt: display strings, or [export, display] pairs."""
    labels = []
    for item in options:
        item = item.get_object() if hasattr(item, "get_object") else item
        if isinstance(item, list) and item:
            item = item[-1].get_object() if hasattr(item[-1], "get_object") else item[-1]
        label = str(item).strip()
        if label:
            labels.append(label)
    return ", ".join(labels)
