"""Generate the files in samples/: what dscall reads, small and real.

    .venv/bin/python scripts/make_samples.py [--out samples]

Output is deterministic (reportlab's invariant mode; DOCX core properties and ZIP timestamps
fixed), so regenerating gives byte-identical files and a clean git diff. Needs the dev extra
(reportlab, python-docx).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import docx
from docx.oxml.ns import qn
from docx.shared import Pt
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FIXED_TIME = datetime(2026, 1, 15, 9, 0, 0, tzinfo=timezone.utc)
ZIP_TIME = (2026, 1, 15, 9, 0, 0)
CJK_FONT = "STSong-Light"  # a standard Adobe CID font: nothing embedded, text extractable

# --- English report (PDF) --------------------------------------------------------------------

REPORT_SECTIONS = [
    (
        "Letter from the Chief Executive",
        [
            "2025 was the year Northwind Analytics stopped being a reporting vendor and became "
            "a partner in our customers' daily decisions. Revenue grew 23% to $48.6 million, "
            "recurring revenue reached 81% of the total, and we ended the year with 1,240 "
            "customers in 31 countries.",
            "We also made mistakes. The migration of our European customers to the new data "
            "platform took four months longer than planned, and two outages in March cost some "
            "customers a full day of dashboards. We have changed how we stage releases because "
            "of it, and we describe the changes in the Operations section.",
            "Our priorities for 2026 are simple: keep the platform boring and reliable, make "
            "forecasting available to every customer tier, and grow in Japan and Brazil, where "
            "our partners already serve more than sixty customers.",
        ],
    ),
    (
        "Highlights of the Year",
        [
            "Net revenue retention was 118%. Gross margin improved from 71% to 74%, mostly "
            "because compute costs per query fell by a third after the storage rewrite.",
            "The forecasting module, launched in May, is used by 410 customers. Its median "
            "forecast error on weekly retail demand was 8.9%, against 12.4% for the rule-based "
            "baseline it replaced.",
            "We hired 96 people and ended the year with 412 employees. Voluntary attrition fell "
            "to 9%, the lowest since the company was founded in 2017.",
        ],
    ),
    (
        "Operations",
        [
            "The platform served 2.3 billion queries, with a monthly availability between "
            "99.93% and 99.99% except in March (99.71%). Both March incidents were caused by a "
            "schema migration that locked a shared metadata table. Migrations now run against a "
            "shadow copy first and are released region by region, one region per day.",
            "Support answered 38,500 tickets. The median first response time was 42 minutes "
            "and customer satisfaction with support stayed at 4.6 out of 5.",
            "Our data centres in Frankfurt and Virginia now run on contracts for renewable "
            "electricity; Singapore will follow in the second quarter of 2026.",
        ],
    ),
    (
        "Outlook and Risks",
        [
            "We expect revenue between $57 million and $60 million in 2026, with an operating "
            "margin of 6% to 8%. The outlook assumes no large change in exchange rates; about "
            "a third of our revenue is billed in euros.",
            "The main risks are concentration (our ten largest customers bring 19% of revenue), "
            "the pace of regulation of automated decision systems in the European Union, and "
            "competition from cloud providers that bundle analytics with storage.",
            "We will report on progress every quarter. Questions from shareholders are welcome "
            "at investors@northwind-analytics.example.",
        ],
    ),
]

FINANCIALS = [
    ["Figure (USD thousands)", "2023", "2024", "2025"],
    ["Revenue", "31,920", "39,510", "48,600"],
    ["Recurring revenue", "24,260", "31,210", "39,370"],
    ["Gross profit", "22,020", "28,050", "35,960"],
    ["Operating expenses", "25,480", "29,330", "33,880"],
    ["Operating income", "-3,460", "-1,280", "2,080"],
    ["Cash at year end", "18,700", "21,400", "26,950"],
]


def make_report_pdf(path: Path) -> None:
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=10.5, leading=14.5)
    story: list[object] = [
        Paragraph("Northwind Analytics - Annual Report 2025", styles["Title"]),
        Paragraph("Prepared for shareholders, published 15 January 2026", styles["Italic"]),
        Spacer(1, 0.6 * cm),
    ]
    for number, (title, paragraphs) in enumerate(REPORT_SECTIONS):
        story.append(Paragraph(title, styles["Heading2"]))
        story.extend(Paragraph(text, body) for text in paragraphs)
        if number == 1:
            story += [
                Spacer(1, 0.4 * cm),
                Paragraph("Table 1. Financial summary", styles["Heading4"]),
                _table(FINANCIALS, "Helvetica"),
                Paragraph(
                    "Operating income turned positive in the second quarter of 2025 and stayed "
                    "positive for the rest of the year.",
                    body,
                ),
                PageBreak(),
            ]
        elif number == 2:
            story.append(PageBreak())
    _build(path, story, "Northwind Analytics Annual Report 2025")


# --- Chinese / mixed report (PDF) ----------------------------------------------------------

BRIEF_PARAGRAPHS = [
    "长江物流（Yangtze Logistics）2025 年第三季度完成货运量 1,860 万吨，同比增长 12.4%。"
    "其中集装箱业务增长最快，达到 64 万标准箱（TEU），主要来自武汉、重庆和南京三个枢纽港。",
    "本季度营业收入为 38.2 亿元人民币，毛利率 17.8%，比上一季度提高 1.1 个百分点。"
    "燃油成本下降和多式联运（rail-water intermodal）线路满载率提高是毛利改善的两个主要原因。",
    "冷链业务仍处于投入期。新建的成都冷库于八月投入使用，容量 4.5 万吨；"
    "预计 2026 年第二季度实现单月盈亏平衡。",
    "风险方面：长江中游枯水期可能提前到来，影响大型船舶通航；"
    "部分客户的付款周期从 45 天延长到 60 天，应收账款余额因此上升 9%。",
    "下季度重点：完成与上海港的电子提单（e-B/L）系统对接，上线新的运力调度算法，"
    "并在宜昌增开一条每周三班的铁水联运班列。",
]

BRIEF_TABLE = [
    ["指标 Metric", "2025 Q2", "2025 Q3", "变化 Change"],
    ["货运量（万吨）", "1,702", "1,860", "+9.3%"],
    ["集装箱（万 TEU）", "57", "64", "+12.3%"],
    ["营业收入（亿元）", "35.6", "38.2", "+7.3%"],
    ["毛利率", "16.7%", "17.8%", "+1.1 pt"],
    ["准点率 On-time rate", "93.1%", "95.4%", "+2.3 pt"],
]


def make_brief_pdf(path: Path) -> None:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    styles = getSampleStyleSheet()
    title = ParagraphStyle("zh-title", parent=styles["Title"], fontName=CJK_FONT)
    heading = ParagraphStyle("zh-h2", parent=styles["Heading2"], fontName=CJK_FONT)
    body = ParagraphStyle(
        "zh-body",
        parent=styles["BodyText"],
        fontName=CJK_FONT,
        fontSize=10.5,
        leading=16,
        wordWrap="CJK",  # break lines between CJK characters, not only at spaces
        alignment=TA_LEFT,
    )
    story: list[object] = [
        Paragraph("长江物流 2025 年第三季度经营简报", title),
        Paragraph("Yangtze Logistics - Q3 2025 Business Brief", styles["Italic"]),
        Spacer(1, 0.5 * cm),
        Paragraph("一、经营概况", heading),
    ]
    story.extend(Paragraph(text, body) for text in BRIEF_PARAGRAPHS[:3])
    story += [
        Paragraph("二、主要指标 Key figures", heading),
        _table(BRIEF_TABLE, CJK_FONT),
        PageBreak(),
        Paragraph("三、风险与下季度计划", heading),
    ]
    story.extend(Paragraph(text, body) for text in BRIEF_PARAGRAPHS[3:])
    _build(path, story, "Yangtze Logistics Q3 2025 Brief")


def _table(rows: list[list[str]], font: str) -> Table:
    table = Table(rows, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 9.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#8899aa")),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
            ]
        )
    )
    return table


def _build(path: Path, story: list[object], title: str) -> None:
    document = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title=title,
        author="dscall samples",
        invariant=1,
        leftMargin=2.2 * cm,
        rightMargin=2.2 * cm,
    )
    document.build(story)


# --- DOCX -------------------------------------------------------------------------------------


def make_handbook_docx(path: Path) -> None:
    document = docx.Document()
    document.add_heading("Harbor & Pine Co. - Remote Work Handbook", level=0)
    document.add_paragraph(
        "This handbook explains how Harbor & Pine employees work away from the office. It "
        "applies to everyone on a permanent contract from 1 February 2026."
    )
    document.add_heading("1. Who can work remotely", level=1)
    document.add_paragraph(
        "Any employee who has finished the three-month onboarding period may work remotely up "
        "to four days a week. Roles that handle physical stock or customers in person agree a "
        "schedule with their team lead instead."
    )
    document.add_heading("2. Equipment and allowances", level=1)
    document.add_paragraph(
        "The company provides a laptop, a monitor and a headset. The table below lists the "
        "monthly allowances; they are paid with the salary and need no receipts."
    )
    rows = [
        ("Allowance", "Full-time", "Part-time", "Notes"),
        ("Internet", "EUR 30", "EUR 20", "Paid from the first full month"),
        ("Electricity and heating", "EUR 25", "EUR 15", "October to March only"),
        ("Coworking space", "up to EUR 150", "", "Needs approval from your team lead"),
    ]
    table = document.add_table(rows=len(rows), cols=4)
    table.style = "Table Grid"
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    # Coworking is paid the same to everyone: one cell spans both contract columns.
    merged = table.cell(3, 1).merge(table.cell(3, 2))
    merged.text = "up to EUR 150"
    document.add_heading("3. Working hours and availability", level=1)
    document.add_paragraph(
        "Core hours are 10:00 to 15:00 in your contract's time zone. Outside core hours, "
        "answer messages within one working day."
    )
    document.add_paragraph("Keep your calendar up to date.", style="List Bullet")
    document.add_paragraph(
        "Join the Monday planning call with your camera on.", style="List Bullet"
    )
    document.add_paragraph("Tell your team lead before travelling abroad.", style="List Bullet")
    document.add_heading("4. Security", level=1)
    document.add_paragraph(
        "Work only on company devices, lock your screen when you step away, and never use "
        "public Wi-Fi without the company VPN. Report a lost device within two hours to "
        "security@harborpine.example."
    )
    _save_docx(document, path, "Remote Work Handbook")


def make_plan_docx_zh(path: Path) -> None:
    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name = "SimSun"
    style.font.size = Pt(11)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "SimSun")
    document.add_heading("智慧社区服务平台项目计划书", level=0)
    document.add_heading("一、项目背景", level=1)
    document.add_paragraph(
        "本项目为杭州市西湖区 12 个社区建设统一的线上服务平台，整合物业报修、"
        "老年人助餐预约和垃圾分类积分三项服务。目前居民需要使用四个不同的小程序，"
        "使用率不足百分之三十。"
    )
    document.add_heading("二、目标", level=1)
    document.add_paragraph(
        "平台上线后六个月内，月活跃用户达到两万人；报修平均处理时间从五天缩短到两天；"
        "助餐预约全部线上完成。"
    )
    document.add_heading("三、进度安排", level=1)
    rows = [
        ("阶段", "时间", "主要工作", "负责人"),
        ("需求调研", "2026 年 3 月", "走访社区，访谈居民和物业", "王磊"),
        ("设计开发", "2026 年 4 月至 7 月", "完成三项服务的开发和测试", "陈静"),
        ("试点运行", "2026 年 8 月", "在两个社区试点并收集反馈", "陈静"),
        ("全面推广", "2026 年 9 月", "覆盖全部 12 个社区", "王磊"),
    ]
    table = document.add_table(rows=len(rows), cols=4)
    table.style = "Table Grid"
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    document.add_heading("四、预算", level=1)
    document.add_paragraph(
        "项目总预算 186 万元，其中软件开发 120 万元，硬件和网络 38 万元，"
        "培训与宣传 28 万元。资金由区财政和街道共同承担。"
    )
    document.add_heading("五、风险", level=1)
    document.add_paragraph(
        "老年居民使用智能手机的比例较低。计划在每个社区设立线下服务点，"
        "由志愿者协助老年人完成注册和预约。"
    )
    _save_docx(document, path, "智慧社区服务平台项目计划书")


def _save_docx(document: docx.document.Document, path: Path, title: str) -> None:
    props = document.core_properties
    props.title = title
    props.author = "dscall samples"
    props.last_modified_by = "dscall samples"
    props.created = FIXED_TIME.replace(tzinfo=None)
    props.modified = FIXED_TIME.replace(tzinfo=None)
    props.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    # python-docx stamps every ZIP entry with the current time; rewrite with a fixed one (and
    # without the template's thumbnail) so that regenerating gives identical bytes.
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)


# --- text ---------------------------------------------------------------------------------

MEETING_NOTES = """\
Product council - meeting notes
Date: 12 January 2026. Present: Amira (chair), Jonas, Li Wei, Priya, Tomás.

1. Release 4.2
Jonas reported that release 4.2 is on track for 3 February. The last open bug is the export
of reports with more than 65,000 rows to spreadsheet files; a fix is in review. Priya asked
for one more week of beta for the new permissions screen, because two pilot customers found
the role names confusing. Decision: keep the date, and ship the permissions screen behind a
feature flag that is off by default.

2. Pricing of the forecasting add-on
Li Wei presented usage data: 410 customers use forecasting, and 70% of them run it less than
once a week. Proposal: include a small monthly quota in every plan and charge only above it.
Tomás worried about revenue in the first quarter. Decision: model three quota levels and bring
the numbers to the next council.

3. Accessibility audit
The external audit found 23 issues, 4 of them serious (keyboard traps in two dialogs, missing
labels on chart controls). Amira asked that the serious ones be fixed before release 4.2.

Actions
- Jonas: merge the export fix and confirm the release date by 20 January.
- Li Wei: quota model with three levels, for the council on 26 January.
- Priya: feature flag for the permissions screen; rename the roles with the pilot customers.
- Tomás: plan the four serious accessibility fixes into the current sprint.
"""

RELEASE_NOTES = """\
# Tidewater CLI - release notes

## 2.4.0 (2026-01-20)

### New
- `tide sync --dry-run` shows what would change without touching the remote.
- Configuration files may now include other files with `include = "path.toml"`.
- Progress bars fall back to plain log lines when the output is not a terminal.

### Fixed
- Uploads larger than 4 GiB no longer fail with a checksum error on Windows.
- `tide login` respects the `HTTPS_PROXY` environment variable.
- Exit code is 2 (not 1) when an option has an invalid value.

### Changed
- The default number of parallel transfers is now 8 (was 4). Set `transfers = 4` in the
  configuration file to keep the old behaviour.

## 2.3.1 (2025-12-02)

### Fixed
- A crash when the remote returned an empty directory listing.
- Timestamps in `tide log` are shown in local time, as documented.

## Upgrading

Run `tide self-update`, or download the new version from the releases page. Version 2.4 reads
configuration files written by 2.x; no migration is needed.
"""


def make_text_files(out: Path) -> None:
    (out / "meeting-notes.txt").write_text(MEETING_NOTES, encoding="utf-8", newline="\n")
    (out / "release-notes.md").write_text(RELEASE_NOTES, encoding="utf-8", newline="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "samples")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    make_report_pdf(out / "annual-report-2025.pdf")
    make_brief_pdf(out / "logistics-brief-zh.pdf")
    make_handbook_docx(out / "remote-work-handbook.docx")
    make_plan_docx_zh(out / "community-project-plan-zh.docx")
    make_text_files(out)
    for path in sorted(out.iterdir()):
        print(f"{path.stat().st_size:>8}  {path}")


if __name__ == "__main__":
    main()
