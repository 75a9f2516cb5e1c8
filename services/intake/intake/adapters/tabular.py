"""Spreadsheets in and out: reading uploaded CSV and XLSX files into rows, writing CSV and XLSX files.

No Flask and no database here. Row numbers are the numbers a user sees in the sheet (the header is row 1
when it is the first line). Every text shown to users comes as a :class:`Text` in Dutch and English.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, NamedTuple

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

CSV_DELIMITERS = ",;\t"
WRITE_DELIMITER = ";"  # what Dutch Excel expects when it opens a CSV file
MAX_UNZIPPED_BYTES = 64 * 1024 * 1024  # an .xlsx that inflates beyond this is refused (zip bomb)
MAX_COLUMNS = 200
# Every row counts toward the row limit, empty ones too (a sheet of empty rows once took a minute of CPU):
# a file may have this many rows besides its data rows (a header, a title, blank lines).
EXTRA_ROWS = 100
# The work per file is bounded before a spreadsheet library parses anything: at most this many cells in all
# sheets together, and this many shared strings, counted in one cheap pass over the XML.
CELLS_PER_ROW = 50
_SCAN_CHUNK = 1024 * 1024
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s/>]")
_STRING_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s/>]")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv; charset=utf-8"


class Text(NamedTuple):
    """A text shown to users, in Dutch and English."""

    nl: str
    en: str

    def pick(self, language: str) -> str:
        return self.en if language == "en" else self.nl


@dataclass(frozen=True)
class Issue:
    """A problem with one cell (row and column), one column (row None) or the file (both None)."""

    reason: Text
    row: int | None = None
    column: str | None = None


class FileRejected(Exception):
    """The file as a whole cannot be read; nothing in it is processed."""

    def __init__(self, reason: Text, status: int = 422, row: int | None = None) -> None:
        super().__init__(reason.en)
        self.reason = reason
        self.status = status
        self.row = row


@dataclass
class Row:
    number: int
    values: list[Any]  # by position; may run past the header when cells were filled outside it
    issues: list[Issue] = field(default_factory=list)


@dataclass
class Table:
    format: str  # "csv" or "xlsx"
    header_row: int
    header: list[str]  # the header cells as written, stripped; "" for an empty header cell
    rows: list[Row]


def column_label(position: int) -> str:
    """How a user finds a column that has no name: its letter in the sheet (0-based position)."""
    return f"kolom {get_column_letter(position + 1)}"


# ---- reading ---------------------------------------------------------------------------------


def read_table(data: bytes, max_rows: int, sheet_titles: Sequence[str] = ()) -> Table:
    """Read an uploaded CSV or XLSX file (told apart by content, not by name).

    Fully empty rows are skipped, but every row counts: more than ``max_rows`` data rows, or more than
    ``max_rows + EXTRA_ROWS`` rows in all, is refused with 413, as soon as the reader gets there.
    ``sheet_titles`` names the worksheet to read in an XLSX file; otherwise the first one is read.
    """
    if not data.strip():
        raise FileRejected(Text("Het bestand is leeg.", "The file is empty."))
    if data.startswith(b"PK\x03\x04"):
        table = _read_xlsx(data, max_rows, sheet_titles)
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRejected(Text(
            "Het oude Excel-formaat (.xls) wordt niet ondersteund; sla het bestand op als Excel-werkmap (.xlsx) "
            "of als CSV UTF-8.",
            "The old Excel format (.xls) is not supported; save the file as an Excel workbook (.xlsx) or as "
            "CSV UTF-8."))
    else:
        table = _read_csv(data, max_rows)
    if not table.rows:
        raise FileRejected(Text("Het bestand bevat alleen een kopregel en geen gegevensrijen.",
                                "The file holds only a header row and no data rows."), row=table.header_row)
    return table


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without byte order mark) or else Windows-1252, what Dutch Excel writes."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data:
        raise FileRejected(Text(
            "Het bestand is opgeslagen als UTF-16 (Unicode-tekst) of is geen tekstbestand. Sla het op als "
            "'CSV UTF-8 (door komma's gescheiden)' of als Excel-werkmap (.xlsx).",
            "The file is saved as UTF-16 (Unicode text) or is not a text file. Save it as "
            "'CSV UTF-8 (comma delimited)' or as an Excel workbook (.xlsx)."))
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _undecodable(data, exc.start + len(codecs.BOM_UTF8)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc.start) from None


def _undecodable(data: bytes, position: int) -> FileRejected:
    byte = f"0x{data[position]:02X}"
    return FileRejected(Text(
        f"De tekens in het bestand zijn geen UTF-8 en geen Windows-1252 (byte {byte} op positie {position}). "
        "Sla het bestand op als 'CSV UTF-8 (door komma's gescheiden)'.",
        f"The file's characters are neither UTF-8 nor Windows-1252 (byte {byte} at position {position}). "
        "Save the file as 'CSV UTF-8 (comma delimited)'."))


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a CSV file, from its header line: ``,``, ``;`` or tab."""
    try:
        found = csv.Sniffer().sniff(header_line, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        found = ""
    counts = {d: header_line.count(d) for d in CSV_DELIMITERS}
    most = max(counts.values())
    if not most:
        return ","  # a single column
    if len(found) == 1 and counts.get(found) == most:
        return found
    return next(d for d in CSV_DELIMITERS if counts[d] == most)


def _read_csv(data: bytes, max_rows: int) -> Table:
    text = decode_text(data)
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    if not header_line:
        raise FileRejected(Text("Het bestand is leeg.", "The file is empty."))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(header_line))
    header: list[str] | None = None
    header_row = 0
    rows: list[Row] = []
    number = 0
    try:
        for number, record in enumerate(reader, start=1):
            if number > max_rows + EXTRA_ROWS:
                raise _too_many_rows(max_rows)
            values: list[Any] = [_clean(v) for v in record]
            if all(v is None for v in values):
                continue
            if len(values) > MAX_COLUMNS:
                raise _too_many_columns(number)
            if header is None:
                header, header_row = [v or "" for v in values], number
                continue
            if len(rows) >= max_rows:
                raise _too_many_rows(max_rows)
            rows.append(Row(number, values))
    except csv.Error as exc:
        raise FileRejected(Text(f"Rij {number + 1} is geen geldige CSV: {exc}.",
                                f"Row {number + 1} is not valid CSV: {exc}."), row=number + 1) from None
    if header is None:
        raise FileRejected(Text("Het bestand is leeg.", "The file is empty."))
    return Table("csv", header_row, header, rows)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _too_many_rows(max_rows: int) -> FileRejected:
    dutch_number = f"{max_rows:,}".replace(",", ".")
    return FileRejected(Text(
        f"Het bestand heeft meer dan {dutch_number} gegevensrijen (lege rijen tellen mee); splits het in "
        "kleinere bestanden en verwijder lege rijen.",
        f"The file has more than {max_rows:,} data rows (empty rows count too); split it into smaller files "
        "and delete empty rows."), status=413)


def _too_many_cells() -> FileRejected:
    return FileRejected(Text(
        "De Excel-werkmap bevat te veel (lege of opgemaakte) cellen; kopieer alleen de gegevens naar een nieuwe "
        "werkmap of sla het werkblad op als CSV UTF-8.",
        "The Excel workbook holds too many (empty or formatted) cells; copy only the data into a new workbook or "
        "save the sheet as CSV UTF-8."), status=413)


def _scan_xml(archive: zipfile.ZipFile, name: str, tags: Sequence[tuple[re.Pattern[bytes], int]],
              counts: list[int]) -> None:
    """Count elements of an archive member in one streaming pass, adding to ``counts`` (one per tag, so that
    several members share a limit) and refusing the file as soon as one kind passes its limit. A chunk is
    cut before its last ``<`` so that no tag is split between chunks."""
    carry = b""
    with archive.open(name) as stream:
        while True:
            chunk = stream.read(_SCAN_CHUNK)
            data = carry + chunk
            if chunk:
                cut = data.rfind(b"<")
                data, carry = (data[:cut], data[cut:]) if cut > 0 else (data, b"")
            for index, (pattern, limit) in enumerate(tags):
                counts[index] += len(pattern.findall(data))
                if counts[index] > limit:
                    raise FileRejected(*_limit_reason(pattern, limit))
            if not chunk:
                return


def _limit_reason(pattern: re.Pattern[bytes], limit: int) -> tuple[Text, int]:
    too_many = _too_many_rows(limit - EXTRA_ROWS) if pattern is _ROW_TAG else _too_many_cells()
    return too_many.reason, too_many.status


def _too_many_columns(number: int) -> FileRejected:
    return FileRejected(Text(f"Rij {number} heeft meer dan {MAX_COLUMNS} kolommen.",
                             f"Row {number} has more than {MAX_COLUMNS} columns."), row=number)


def _read_xlsx(data: bytes, max_rows: int, sheet_titles: Sequence[str]) -> Table:
    unreadable = FileRejected(Text(
        "Het bestand is geen leesbare Excel-werkmap (.xlsx).", "The file is not a readable Excel workbook (.xlsx)."))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise unreadable from None
    if inflated > MAX_UNZIPPED_BYTES:
        raise FileRejected(Text("De Excel-werkmap is uitgepakt te groot.", "The Excel workbook is too large unpacked."),
                           status=413)
    # Opening a workbook parses every shared string, and every sheet that does not state its size: count
    # the rows and cells of all sheets together, and the shared strings, before the library reads any.
    max_cells = (max_rows + EXTRA_ROWS) * CELLS_PER_ROW
    sheet_tags, sheet_counts = [(_ROW_TAG, max_rows + EXTRA_ROWS), (_CELL_TAG, max_cells)], [0, 0]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                lowered = name.lower()
                if lowered.endswith("sharedstrings.xml"):
                    _scan_xml(archive, name, [(_STRING_TAG, max_cells)], [0])
                elif "worksheets/" in lowered and lowered.endswith(".xml"):
                    _scan_xml(archive, name, sheet_tags, sheet_counts)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error):
        raise unreadable from None
    with warnings.catch_warnings():  # Excel's own extensions (data validation, styles) make openpyxl warn
        warnings.simplefilter("ignore")
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        except Exception:  # noqa: BLE001 - whatever openpyxl trips over, the file is not a workbook we can read
            raise unreadable from None
        try:
            sheets = workbook.worksheets
            if not sheets:
                raise unreadable
            wanted = {t.casefold() for t in sheet_titles}
            sheet = next((s for s in sheets if s.title.casefold() in wanted), sheets[0])
            # the stored dimension may claim the whole sheet (A1:XFD1048576): read the cells that exist, and
            # no further than one column past the limit (a lone cell in column XFD would pad every row)
            sheet.reset_dimensions()
            return _sheet_table(sheet.iter_rows(max_col=MAX_COLUMNS + 1), max_rows)
        except FileRejected:
            raise
        except Exception:  # noqa: BLE001 - a damaged sheet
            raise unreadable from None
        finally:
            workbook.close()


def _sheet_table(cells_by_row: Iterable[Sequence[Any]], max_rows: int) -> Table:
    header: list[str] | None = None
    header_row = 0
    rows: list[Row] = []
    number = 0
    for cells in cells_by_row:
        number += 1
        if number > max_rows + EXTRA_ROWS:
            raise _too_many_rows(max_rows)
        values: list[Any] = []
        issues: list[tuple[int, Text]] = []
        for position, cell in enumerate(cells):
            row_of_cell = getattr(cell, "row", None)
            if row_of_cell:
                number = row_of_cell
                if number > max_rows + EXTRA_ROWS:
                    raise _too_many_rows(max_rows)
            kind = cell.data_type
            if kind == "f":
                issues.append((position, Text("Formules worden niet geaccepteerd; plak de waarden "
                                              "(Plakken speciaal > Waarden).",
                                              "formulas are not accepted; paste values")))
                values.append(None)
            elif kind == "e":
                issues.append((position, Text(f"De cel bevat een foutwaarde ({cell.value}).",
                                              f"The cell holds an error value ({cell.value}).")))
                values.append(None)
            else:
                values.append(_clean(cell.value))
        last_issue = max((p for p, _ in issues), default=-1)
        while len(values) - 1 > last_issue and values[-1] is None:
            values.pop()
        if not values and not issues:
            continue
        if len(values) > MAX_COLUMNS:
            raise _too_many_columns(number)
        if header is None:
            header, header_row = [_header_name(v) for v in values], number
            if issues:
                position, reason = issues[0]
                raise FileRejected(Text(f"Kopregel, {column_label(position)}: {reason.nl}",
                                        f"Header row, {column_label(position)}: {reason.en}"), row=number)
            continue
        if len(rows) >= max_rows:
            raise _too_many_rows(max_rows)
        named = header
        rows.append(Row(number, values, [
            Issue(reason, number, named[p] if p < len(named) and named[p] else column_label(p))
            for p, reason in issues]))
    if header is None:
        raise FileRejected(Text("Het werkblad is leeg.", "The worksheet is empty."))
    return Table("xlsx", header_row, header, rows)


def _header_name(value: Any) -> str:
    return "" if value is None else text_of(value)


def text_of(value: Any) -> str:
    """A cell value as text: what the user typed, not Python's representation."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


# ---- writing ---------------------------------------------------------------------------------


def _safe_text(value: str) -> str:
    return str(ILLEGAL_CHARACTERS_RE.sub("", value))


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        # a spreadsheet would run a cell starting like a formula: neutralise it (CSV injection)
        return "'" + value if value.startswith(_FORMULA_PREFIXES) else str(value)
    return text_of(value)


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = WRITE_DELIMITER) -> bytes:
    """UTF-8 with a byte order mark (so Excel reads the accents right), ``;``-delimited by default."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class SheetSpec:
    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]] = ()
    widths: Sequence[float] = ()
    wrap: bool = False


def write_xlsx(sheets: Sequence[SheetSpec]) -> bytes:
    """A workbook of plain values: text is always stored as text, never as a formula."""
    workbook = openpyxl.Workbook(write_only=True)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for spec in sheets:
        sheet = workbook.create_sheet(spec.title[:31])
        sheet.freeze_panes = "A2"
        for position, width in enumerate(spec.widths):
            sheet.column_dimensions[get_column_letter(position + 1)].width = width
        sheet.append([_xlsx_cell(sheet, name, font=bold) for name in spec.header])
        for row in spec.rows:
            sheet.append([_xlsx_cell(sheet, value, alignment=wrap if spec.wrap else None) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(sheet: Any, value: Any, font: Font | None = None, alignment: Alignment | None = None) -> Any:
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=_safe_text(value))
        cell.data_type = "s"  # openpyxl would store "=..." as a formula
    else:
        cell = WriteOnlyCell(sheet, value=value)
    if font is not None:
        cell.font = font
    if alignment is not None:
        cell.alignment = alignment
    return cell


def join_list(values: Iterable[Any]) -> str:
    """A list as spreadsheets hold it: ``a;b;c`` in one cell."""
    return ";".join(str(v) for v in values)


def split_list(cell: str) -> list[str]:
    """The items of a ``a;b;c`` cell, stripped, empty items dropped."""
    return [item.strip() for item in cell.split(";") if item.strip()]
