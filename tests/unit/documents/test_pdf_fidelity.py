"""Issue 14, PDF findings: filled forms, hyphenation, AES-256, text outside the page box,
letter-split text layers. Each on a committed fixture (scripts/make_fidelity_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscall.documents.pdf import extract_pdf, pdfium_available
from dscall.errors import EncryptedDocument

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "documents"
needs_pdfium = pytest.mark.skipif(not pdfium_available(), reason="pypdfium2 not installed")


@pytest.fixture(params=["auto", "pdfium", "pypdf"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "pdfium" and not pdfium_available():
        pytest.skip("pypdfium2 not installed")
    return str(request.param)


def _pages(name: str, backend: str = "auto") -> tuple[str, ...]:
    return extract_pdf((FIXTURES / name).read_bytes(), backend).pages  # type: ignore[arg-type]


def test_filled_form_fields_are_part_of_the_page_text(backend: str) -> None:
    first, second = _pages("form_filled.pdf", backend)
    for value in ("Ada Lovelace", "Analytical Engines Ltd", "Northern"):
        assert value in first
    for value in ("Delivered on time.", "Bo Chen", "Cy Diaz"):
        assert value in second
    assert "Yes" not in first  # a ticked checkbox's state is not text
    assert "HIDDEN-42" not in second  # nor is a hidden field's value


@needs_pdfium
def test_pdfium_places_form_values_beside_their_labels() -> None:
    assert _pages("form_filled.pdf") == (
        "Applicant name: Ada Lovelace\nAgency: Analytical Engines Ltd\nRegion: Northern",
        # a label above its box; a label printed three times, the last field left empty
        "Remarks (write below):\nDelivered on time.\nWitness: Bo Chen\nWitness: Cy Diaz\nWitness:",
    )


def test_pypdf_adds_form_values_after_the_page_text() -> None:
    first, _ = _pages("form_filled.pdf", "pypdf")
    assert (
        first == "Applicant name:\nAgency:\nRegion:\nAda Lovelace\nAnalytical Engines Ltd\nNorthern"
    )


def test_form_values_without_appearance_streams_are_read(backend: str) -> None:
    # pypdf filled "name" and asked viewers to draw it (NeedAppearances): the value is read.
    first, _ = _pages("form_need_appearances.pdf", backend)
    assert "Grace Hopper" in first
    assert "Ada Lovelace" not in first
    assert "Analytical Engines Ltd" in first


def test_soft_and_typeset_hyphens_are_joined_and_compounds_kept(backend: str) -> None:
    (page,) = _pages("hyphenation.pdf", backend)
    assert "The Description of the method" in page  # soft hyphen (U+00AD)
    assert "Hyphenation by a typesetter" in page  # ordinary hyphen, no compound known
    # "well-known" is written within a line elsewhere, "Prussian" starts with a capital.
    assert "A well-\nknown result, and every well-known result" in page
    assert "The Franco-\nPrussian war" in page
    assert "\ufffe" not in page
    assert "\u00ad" not in page


def test_all_backends_give_the_same_hyphenation() -> None:
    readings = {_pages("hyphenation.pdf", backend) for backend in ("auto", "pypdf")}
    assert len(readings) == 1


def test_aes256_with_empty_user_password_is_read_when_pdfium_refuses_it() -> None:
    data = (FIXTURES / "aes256_empty_user_password.pdf").read_bytes()
    expected = ("Quarterly budget: freight costs fell four percent.",)
    assert extract_pdf(data, "auto").pages == expected
    assert extract_pdf(data, "pypdf").pages == expected


@needs_pdfium
def test_pdfium_alone_still_reports_the_password_it_refuses() -> None:
    data = (FIXTURES / "aes256_empty_user_password.pdf").read_bytes()
    with pytest.raises(EncryptedDocument, match="password-protected PDF"):
        extract_pdf(data, "pdfium")


def test_aes256_with_a_user_password_stays_an_accurate_error(backend: str) -> None:
    data = (FIXTURES / "aes256_user_password.pdf").read_bytes()
    with pytest.raises(EncryptedDocument) as caught:
        extract_pdf(data, backend)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message == "password-protected PDF: it needs a user password (the empty one was tried)"
    assert "owner-x" not in message


def test_text_outside_the_visible_page_box_is_not_extracted(backend: str) -> None:
    expected = ("Visible on page one.", "Visible on page two.")
    assert _pages("outside_crop_box.pdf", backend) == expected


@needs_pdfium
def test_letter_split_text_layer_is_read_whole_from_pypdf() -> None:
    expected = "North Buona Vista Road runs past the old station towards the harbour gate"
    assert _pages("letter_split.pdf", "pdfium")[0].startswith("N o r t h B u o n a")
    assert _pages("letter_split.pdf", "auto")[0].startswith(expected)


@needs_pdfium
def test_ordinary_pages_are_not_replaced() -> None:
    # Fixtures whose pdfium text is fine keep pdfium's reading in auto (no pypdf involved).
    for name in ("plain.pdf", "outside_crop_box.pdf", "hyphenation.pdf"):
        assert _pages(name, "auto") == _pages(name, "pdfium")


def _inherited_landscape_pdf() -> bytes:
    """A landscape page whose MediaBox is inherited from the page tree (as TeX and other
    producers write it), with text past x = 612, where US Letter would end."""
    import io

    import pypdf
    from pypdf.generic import NameObject
    from reportlab.pdfgen import canvas

    drawn = io.BytesIO()
    sheet = canvas.Canvas(drawn, pagesize=(841.89, 595.28))
    sheet.drawString(72, 500, "Left column words")
    sheet.drawString(700, 500, "Right column words")
    sheet.save()
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(drawn.getvalue())))
    page = writer.pages[0]
    box = page[NameObject("/MediaBox")]
    del page[NameObject("/MediaBox")]
    if NameObject("/CropBox") in page:
        del page[NameObject("/CropBox")]
    writer._root_object["/Pages"][NameObject("/MediaBox")] = box
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_box_inherited_from_the_page_tree_is_the_visible_box(backend: str) -> None:
    # pdfium's per-page box getters read only the page's own dictionary and fall back to US
    # Letter: the right third of a landscape page was cut (ja/platexsheet.pdf, bench-docs).
    text = "\n".join(extract_pdf(_inherited_landscape_pdf(), backend).pages)
    assert "Left column words" in text
    assert "Right column words" in text


def test_field_values_of_a_page_cut_out_of_its_form_are_read() -> None:
    # Widgets with their values but no /AcroForm in the catalog (a page cut out of a larger
    # form: SF424_page2.pdf in bench-docs): pdfium opens no form, the values come from pypdf.
    import io

    import pypdf
    from pypdf.generic import NameObject

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(FIXTURES / "form_filled.pdf"))
    del writer._root_object[NameObject("/AcroForm")]
    out = io.BytesIO()
    writer.write(out)
    first, _ = extract_pdf(out.getvalue(), "auto").pages
    for value in ("Ada Lovelace", "Analytical Engines Ltd", "Northern"):
        assert value in first


def _list_box_pdf() -> bytes:
    import io

    from reportlab.pdfgen import canvas

    drawn = io.BytesIO()
    sheet = canvas.Canvas(drawn)
    sheet.drawString(72, 720, "Colours:")
    sheet.acroForm.listbox(
        name="colours", value="Teal", options=["Amber", "Teal", "Violet"], x=150, y=660,
        width=120, height=70,
    )  # fmt: skip
    sheet.drawString(72, 620, "Size:")
    sheet.acroForm.choice(
        name="size", value="Large", options=["Small", "Large"], x=150, y=612, width=120
    )
    sheet.save()
    return drawn.getvalue()


def test_a_list_box_shows_its_options_a_drop_down_its_value(backend: str) -> None:
    (text,) = extract_pdf(_list_box_pdf(), backend).pages  # type: ignore[arg-type]
    for option in ("Amber", "Teal", "Violet"):  # a list box shows every option
        assert option in text
    assert "Large" in text
    assert "Small" not in text  # a closed drop-down shows only its value
