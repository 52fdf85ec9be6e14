"""Write the small documents of tests/fixtures/documents/ (see SOURCES.md there).

    .venv/bin/python scripts/make_fidelity_fixtures.py

Each file reproduces one document-fidelity finding (issue 14) in a few hundred bytes to a few
KB. PDFs come from reportlab (deterministic with invariant=1), pypdf's writer and raw PDF
objects; DOCX files from python-docx with WordprocessingML parts written as XML where
python-docx has no API. The AES-256 files get a fresh random salt each run, so they change
when regenerated; everything else is byte-for-byte stable.
"""

from __future__ import annotations

import io
import sys
import zlib
from pathlib import Path

from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity_docx import write_docx_fixtures

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "documents"
LETTER_SPLIT_TEXT = (
    "North Buona Vista Road runs past the old station towards the harbour gate and the ferry"
)


def form_filled(path: Path) -> None:
    """Text fields filled by reportlab (values with appearance streams) and a choice field
    beside their labels; on page 2 a label above its box, a label printed twice, an empty
    field, a hidden field."""
    pdf = canvas.Canvas(str(path), invariant=1)
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, 780, "Applicant name:")
    pdf.acroForm.textfield(name="name", value="Ada Lovelace", x=180, y=772, width=220, height=20)
    pdf.drawString(72, 740, "Agency:")
    pdf.acroForm.textfield(
        name="agency", value="Analytical Engines Ltd", x=180, y=732, width=220, height=20
    )
    pdf.drawString(72, 700, "Region:")
    pdf.acroForm.choice(
        name="region", value="Northern", options=["Northern", "Southern"], x=180, y=692, width=120
    )
    pdf.acroForm.checkbox(name="agree", checked=True, x=180, y=650)
    pdf.showPage()
    # Page 2: a label above its box, a label printed three times, an empty field, a hidden one.
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, 760, "Remarks (write below):")
    pdf.acroForm.textfield(
        name="remarks", value="Delivered on time.", x=72, y=725, width=300, height=24
    )
    for number, (y, value) in enumerate(((660, "Bo Chen"), (620, "Cy Diaz"), (580, ""))):
        pdf.drawString(72, y, "Witness:")
        pdf.acroForm.textfield(
            name=f"witness{number}", value=value, x=180, y=y - 8, width=200, height=20
        )
    pdf.acroForm.textfield(
        name="internal", value="HIDDEN-42", x=400, y=400, width=100, annotationFlags="hidden"
    )
    pdf.showPage()
    pdf.save()


def form_need_appearances(path: Path, template: Path) -> None:
    """The same form with a value written by pypdf without an appearance stream, the file
    asking viewers to draw it (NeedAppearances), as many form fillers do."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(template))
    writer.update_page_form_field_values(
        writer.pages[0], {"name": "Grace Hopper"}, auto_regenerate=False
    )
    writer.set_need_appearances_writer(True)
    writer.write(str(path))


def hyphenation(path: Path) -> None:
    """Line ends with a soft hyphen (U+00AD), hyphenation printed with an ordinary hyphen,
    and compounds that happen to end a line."""
    lines = [
        "The De\u00ad",
        "scription of the method is short. Hyphen-",
        "ation by a typesetter uses the ordinary hyphen. A well-",
        "known result, and every well-known result, is kept. The Franco-",
        "Prussian war is a compound too.",
    ]
    pdf = canvas.Canvas(str(path), invariant=1)
    pdf.setFont("Helvetica", 11)
    for number, line in enumerate(lines):
        pdf.drawString(72, 780 - 16 * number, line)
    pdf.showPage()
    pdf.save()


def outside_crop_box(path: Path) -> None:
    """Text drawn beyond the media box, and text outside a crop box tighter than it."""
    pdf = canvas.Canvas(str(path), pagesize=(612, 792), invariant=1)
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, 700, "Visible on page one.")
    pdf.drawString(72, 900, "Above the page: never seen.")
    pdf.drawString(-400, 500, "Left of the page: never seen.")
    pdf.showPage()
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, 700, "Visible on page two.")
    pdf.drawString(72, 100, "Below the crop box: never seen.")
    pdf.setCropBox((0, 300, 612, 792))
    pdf.showPage()
    pdf.save()


def aes256(path: Path, plain: Path, user_password: str, perms_mismatch: bool) -> None:
    """AES-256 (R6) encryption by pypdf. With ``perms_mismatch`` the /P entry disagrees with
    the encrypted /Perms copy of it, as some producers write it: pdfium then reports an
    incorrect password while pypdf (and poppler, qpdf) open the file."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password=user_password, owner_password="owner-x", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    data = buffer.getvalue()
    if perms_mismatch:
        old = b"/P 4294967292"
        assert old in data, "pypdf wrote /P differently: update the fixture script"
        data = data.replace(old, b"/P -3860".ljust(len(old)))  # same length: xref stays right
    path.write_bytes(data)


def plain(path: Path) -> None:
    pdf = canvas.Canvas(str(path), invariant=1)
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, 700, "Quarterly budget: freight costs fell four percent.")
    pdf.showPage()
    pdf.save()


def letter_split(path: Path) -> None:
    """An invisible text layer placed glyph by glyph at Helvetica's advances but drawn with
    60% horizontal scaling (Tz), as OCR layers are: pdfium sees gaps between all letters."""
    ops = [b"BT 3 Tr /F1 10 Tf 60 Tz"]
    x = 0.0
    for char in LETTER_SPLIT_TEXT:
        if char != " ":
            ops.append(b"1 0 0 1 %.2f 700 Tm (%s) Tj" % (72 + x, char.encode()))
        x += stringWidth(char, "Helvetica", 10)
    ops.append(b"ET")
    content = zlib.compress(b" ".join(ops), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    path.write_bytes(_raw_pdf(objects))


def _raw_pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    form_filled(OUT / "form_filled.pdf")
    form_need_appearances(OUT / "form_need_appearances.pdf", OUT / "form_filled.pdf")
    hyphenation(OUT / "hyphenation.pdf")
    outside_crop_box(OUT / "outside_crop_box.pdf")
    plain(OUT / "plain.pdf")
    aes256(OUT / "aes256_empty_user_password.pdf", OUT / "plain.pdf", "", perms_mismatch=True)
    aes256(OUT / "aes256_user_password.pdf", OUT / "plain.pdf", "s3cret", perms_mismatch=False)
    letter_split(OUT / "letter_split.pdf")
    write_docx_fixtures(OUT)
    for path in sorted(OUT.iterdir()):
        print(f"{path.name:40} {path.stat().st_size:>7,} bytes")


if __name__ == "__main__":
    main()
