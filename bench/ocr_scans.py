"""Generated scans with a known text, for the OCR benchmark and the OCR tests.

A "scan" is the known text rendered by Pillow onto a white A4 image at a given dpi (with a
font that covers the script: DejaVu for English, WenQuanYi Zen Hei or Noto CJK for Chinese),
saved as an image-only PDF page: no text layer, exactly what a scanner hands over. The mixed
PDF puts one such page between digital (text-layer) pages, drawn with reportlab.

Recall: the share of the known words (English: lower-cased ``\\w+`` tokens; Chinese: CJK
characters, since Chinese has no spaces between words) found in the OCR text, counted as
multisets, so a word repeated in the known text must be found as often.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ENGLISH_TEXT = (
    "The quarterly report shows that revenue grew by twelve percent in the northern region, "
    "while costs in the supply chain fell for the third time this year. Customers asked for "
    "shorter delivery times and clearer invoices; the board approved a new pricing model on "
    "14 March 2026. Section 4.2 lists the risks: currency exchange, demand forecasts, and the "
    "contract with Baker & Sons Ltd., which expires in December. Payment terms are net 30 "
    "days, and late invoices carry a fee of 1.5% per month."
)
CHINESE_TEXT = (
    "本季度报告显示，北部地区的收入增长了百分之十二，而供应链成本今年第三次下降。"
    "客户要求缩短交货时间，并提供更清晰的发票；董事会于三月批准了新的定价模式。"
    "第四节列出了风险：汇率、需求预测以及与贝克父子公司的合同，该合同将于十二月到期。"
    "付款条件为三十天，逾期发票每月收取百分之一点五的费用。"
)
_FONT_CANDIDATES = {
    "en": ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",),
    "zh": (
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    ),
}
_FC_LANG = {"en": "en", "zh": "zh-cn"}
_A4_INCHES = (8.27, 11.69)
_MARGIN_INCHES = 1.0
_FONT_POINTS = 12
_LINE_POINTS = 18


def font_for(language: str) -> Path | None:
    """A font file that covers ``language`` ("en" or "zh"), or None when none is installed."""
    for candidate in _FONT_CANDIDATES[language]:
        if Path(candidate).is_file():
            return Path(candidate)
    if shutil.which("fc-list") is None:
        return None
    listed = subprocess.run(
        ["fc-list", f":lang={_FC_LANG[language]}", "file"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    files = sorted(line.split(":")[0].strip() for line in listed.splitlines() if line.strip())
    return Path(files[0]) if files else None


def known_text(language: str) -> str:
    return ENGLISH_TEXT if language == "en" else CHINESE_TEXT


def render_scan(text: str, font: Path, dpi: int) -> Image.Image:
    """``text`` on a white A4 page at ``dpi``, 12 pt, wrapped to the margins (greyscale)."""
    width, height = (round(side * dpi) for side in _A4_INCHES)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(str(font), round(_FONT_POINTS * dpi / 72))
    margin = round(_MARGIN_INCHES * dpi)
    y = margin
    for line in _wrap(text, face, width - 2 * margin):
        draw.text((margin, y), line, font=face, fill=0)
        y += round(_LINE_POINTS * dpi / 72)
    return image


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    # Words where there are spaces; character by character for CJK, which wraps anywhere.
    tokens = re.findall(r"\S+\s*", text) if " " in text else list(text)
    lines: list[str] = []
    line = ""
    for token in tokens:
        if line and face.getlength((line + token).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines


def scan_pdf(images: Sequence[Image.Image], dpi: int) -> bytes:
    """An image-only PDF, one page per image, each page sized for ``dpi``."""
    out = io.BytesIO()
    first, *rest = images
    first.save(out, "PDF", resolution=float(dpi), save_all=True, append_images=rest)
    return out.getvalue()


def mixed_pdf(path: Path, pages: Sequence[str | Image.Image], dpi: int) -> Path:
    """A PDF whose pages are digital text (a ``str``, in Helvetica) or a scan (an image drawn
    to fill the page, no text layer), in the order given."""
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.utils import ImageReader  # type: ignore[import-untyped]
    from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    page_width, page_height = A4
    for page in pages:
        if isinstance(page, str):
            text = pdf.beginText(72, page_height - 72)
            text.setFont("Helvetica", 11)
            for line in re.findall(r"(?:\S+\s*){1,12}", page):
                text.textLine(line.strip())
            pdf.drawText(text)
        else:
            pdf.drawImage(ImageReader(page), 0, 0, width=page_width, height=page_height)
        pdf.showPage()
    pdf.save()
    return path


def word_recall(known: str, found: str) -> float:
    """Share of the known words found (lower-cased ``\\w+`` tokens, as multisets)."""
    return _recall(
        Counter(re.findall(r"\w+", known.lower())), Counter(re.findall(r"\w+", found.lower()))
    )


def char_recall(known: str, found: str) -> float:
    """Share of the known CJK characters found (as multisets): recall for Chinese."""
    return _recall(Counter(_cjk(known)), Counter(_cjk(found)))


def recall_for(language: str, known: str, found: str) -> float:
    return word_recall(known, found) if language == "en" else char_recall(known, found)


def _cjk(text: str) -> list[str]:
    return [char for char in text if "\u4e00" <= char <= "\u9fff"]


def _recall(known: Counter[str], found: Counter[str]) -> float:
    total = sum(known.values())
    return sum((known & found).values()) / total if total else 1.0
