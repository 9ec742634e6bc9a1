"""Results pages: written atomically, never replacing a page by one that would lose a finished figure, and
docs/results.md, every page in one.
"""
import os
import sys
from typing import Dict, List, Optional, Tuple

from experiments import layout

MARKS = " †‡*"  # marks a row name may carry on a page (significance, footnotes) that are not part of the run's name


def page_tables(text: str) -> List[Tuple[List[str], Dict[str, Dict[str, str]]]]:
    """The markdown tables of a page: ``(column names, {row name: {column: cell}})`` each; a row name without
    its marks, a cell that holds no result (empty, ``(not run)``) left out."""
    tables, lines = [], text.splitlines()
    index = 0
    while index < len(lines):
        if not (lines[index].startswith("|") and index + 1 < len(lines) and set(lines[index + 1].replace("|", "").strip()) <= set("-: ")
                and lines[index + 1].startswith("|")):
            index += 1
            continue
        cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
        header, rows = cells(lines[index]), {}
        index += 2
        while index < len(lines) and lines[index].startswith("|"):
            row = cells(lines[index])
            rows[row[0].strip(MARKS)] = {column: cell for column, cell in zip(header[1:], row[1:])
                                         if cell and cell != "(not run)" and not (column == "seeds" and cell == "0")}
            index += 1
        tables.append((header, rows))
    return tables


def lost_results(old: str, new: str) -> List[str]:
    """
    What a new page would lose of an old one: a table row with results that it lacks, a cell that held a
    result and is now empty, or fewer seeds in a row. Each old table is compared with the new table that
    shares the most column names with it (a page holds e.g. a results table and a speed table).
    """
    lost = []
    new_tables = page_tables(new)
    for header, rows in page_tables(old):
        match = max(new_tables, key=lambda table: len(set(table[0]) & set(header)), default=None)
        new_rows = match[1] if match and len(set(match[0]) & set(header)) >= 2 else {}
        for name, cells in rows.items():
            if not cells:
                continue
            now = new_rows.get(name)
            if now is None:
                lost.append(f"row {name!r}")
                continue
            for column, cell in cells.items():
                if column not in now:
                    lost.append(f"{name!r}: {column}")
                elif column == "seeds" and cell.isdigit() and now[column].isdigit() and int(now[column]) < int(cell):
                    lost.append(f"{name!r}: seeds {cell} -> {now[column]}")
    return lost


def publish_page(name: str, lines: List[str], folder: Optional[str] = None) -> str:
    """
    Write one page (to docs/results/, then rebuild docs/results.md, unless ``folder`` says elsewhere), print
    it. A page is never replaced by one that would lose a result (:func:`lost_results`: a finished row, a
    filled cell, a seed; e.g. a table made from a runs folder that lacks some runs or their archives, or by
    `run --seeds 3` after seeds 1 and 2): the page is kept, and the new text only printed.
    """
    text = "\n".join(lines) + "\n"
    folder = folder or layout.results_folder()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            lost = lost_results(handle.read(), text)
        if lost:
            print(text)
            print(f"NOT WRITTEN: {path} keeps its results: the new page would lose {len(lost)} of them ({'; '.join(lost[:8])}"
                  f"{'; ...' if len(lost) > 8 else ''}). Point --runs-dir at the runs that made it, finish those runs, or "
                  "table every seed: python -m experiments table SUITE --seeds ...", file=sys.stderr)
            return text
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    if folder == layout.results_folder():
        write_index()
    else:
        print(f"written: {path}", file=sys.stderr)
    print(text)
    return text


def write_index() -> None:
    """docs/results.md: every suite's table (full runs only), each with the command that made it."""
    folder = layout.results_folder()
    parts = [
        "# Results on real data",
        "",
        "Dev splits only (the official test sets are kept elsewhere). Each table below is written by",
        "`python -m experiments run SUITE` (or `table SUITE` from finished runs) with",
        "`STRUCTKD_DATA_DIR` pointing at corpora laid out like `../shared/data`; the runs' configs, logs and",
        "metrics are kept under `runs/experiments/SUITE/`. CPU only, 2 cores.",
        "",
    ]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".md") and not name.endswith("_quick.md"):
            with open(os.path.join(folder, name)) as handle:
                # images sit beside the suite's page, in docs/results/
                parts.append("".join(line.replace("](", "](results/") if line.startswith("![") else line
                                     for line in handle.readlines()))
    target = os.path.join(os.path.dirname(folder), "results.md")  # docs/results.md beside docs/results/
    with open(target + ".tmp", "w") as handle:
        handle.write("\n".join(parts))
    os.replace(target + ".tmp", target)
