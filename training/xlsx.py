"""Read the cells of an ``.xlsx`` workbook with the standard library only.

The spotting datasets ship their labels as Excel workbooks. An ``.xlsx`` file is a zip of
XML parts (ECMA-376): ``xl/workbook.xml`` names the sheets, ``xl/_rels/workbook.xml.rels``
maps each sheet to its part, ``xl/sharedStrings.xml`` holds the text that cells refer to by
index, and each ``xl/worksheets/sheetN.xml`` lists rows of cells (``<c r="B3" t="s"><v>7</v>``).
This reader returns every sheet as a list of rows of Python values (str, float, int, bool or
None), which is all the converters need; styles, formulas and dates are not interpreted (a
formula cell gives its cached value).

Problems (not a zip, missing parts, malformed XML) raise :class:`pfes.errors.InputError`
naming the file.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from pfes.errors import InputError

__all__ = ["read_xlsx", "column_index"]

_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_REF = re.compile(r"^([A-Z]+)(\d+)$")

Cell = str | float | int | bool | None


def column_index(letters: str) -> int:
    """0-based column of ``"A"``, ``"B"``, ..., ``"Z"``, ``"AA"``, ..."""
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("A") + 1)
    return n - 1


def _text(el: ET.Element | None) -> str:
    """Concatenated ``<t>`` text under ``el`` (rich text runs are several ``<t>``)."""
    if el is None:
        return ""
    return "".join(t.text or "" for t in el.iter(f"{{{_NS['m']}}}t"))


def _number(s: str) -> float | int:
    v = float(s)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def _sheet_rows(root: ET.Element, shared: list[str]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    m = _NS["m"]
    for row in root.iter(f"{{{m}}}row"):
        r_attr = row.get("r")
        r = int(r_attr) - 1 if r_attr else len(rows)
        while len(rows) < r:
            rows.append([])
        cells: list[Cell] = []
        for c in row.findall(f"{{{m}}}c"):
            ref = c.get("r")
            col = len(cells)
            if ref:
                hit = _REF.match(ref)
                if hit:
                    col = column_index(hit.group(1))
            t = c.get("t", "n")
            v = c.find(f"{{{m}}}v")
            value: Cell
            if t == "s":
                value = shared[int(v.text or 0)] if v is not None else None
            elif t == "inlineStr":
                value = _text(c.find(f"{{{m}}}is"))
            elif t in ("str", "e"):
                value = v.text if v is not None else None
            elif t == "b":
                value = bool(int(v.text or 0)) if v is not None else None
            else:
                value = _number(v.text) if v is not None and v.text not in (None, "") else None
            while len(cells) < col:
                cells.append(None)
            if col < len(cells):
                cells[col] = value
            else:
                cells.append(value)
        rows.append(cells)
    return rows


def read_xlsx(path: str | Path) -> dict[str, list[list[Cell]]]:
    """All sheets of the workbook at ``path``: sheet name -> rows (row 1 first) of cells.

    Empty rows in the middle of a sheet come back as empty lists, so row ``i`` of the result
    is spreadsheet row ``i + 1``; missing cells inside a row are None.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"spreadsheet not found: {path}")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())

            def xml(part: str) -> ET.Element:
                if part not in names:
                    raise InputError(f"{path}: not an .xlsx workbook (no {part})")
                return ET.fromstring(z.read(part))

            wb = xml("xl/workbook.xml")
            rels = xml("xl/_rels/workbook.xml.rels")
            target_of = {
                r.get("Id"): r.get("Target", "")
                for r in rels.iter(f"{{{_NS['pr']}}}Relationship")
            }
            shared: list[str] = []
            if "xl/sharedStrings.xml" in names:
                sst = xml("xl/sharedStrings.xml")
                shared = [_text(si) for si in sst.findall(f"{{{_NS['m']}}}si")]
            out: dict[str, list[list[Cell]]] = {}
            for sheet in wb.iter(f"{{{_NS['m']}}}sheet"):
                rid = sheet.get(f"{{{_NS['r']}}}id")
                target = target_of.get(rid, "")
                part = (target.lstrip("/") if target.startswith("/")
                        else posixpath.normpath(posixpath.join("xl", target)))
                out[sheet.get("name", part)] = _sheet_rows(xml(part), shared)
            return out
    except zipfile.BadZipFile as e:
        raise InputError(f"{path}: not an .xlsx workbook (not a zip file)") from e
    except ET.ParseError as e:
        raise InputError(f"{path}: malformed workbook XML ({e})") from e
    except (IndexError, ValueError) as e:
        raise InputError(f"{path}: malformed workbook cell ({e})") from e
