"""Measure how fast ``kb import`` takes in records: prints records/s for a 1,000-record import.

By default it generates a 1,000-record MEDLINE file from a real record in the test fixtures
(each copy with its own PMID, DOI and title, so none is deduplicated away) and imports it into a
fresh temporary corpus. ``--file`` imports a file of your own instead, e.g. the first 1,000
lines of SciFact's corpus.jsonl.

    python bench/import_throughput.py
    python bench/import_throughput.py --records 5000
    python bench/import_throughput.py --file corpus-1000.jsonl
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.config import Settings
from kb.corpus.importer import import_files

FIXTURE = ROOT / "tests" / "data" / "fixtures" / "medline" / "rispy_example_pubmed.nbib"


def generated_medline(count: int) -> str:
    """*count* distinct MEDLINE records made from the fixture's first record."""
    record = FIXTURE.read_text(encoding="utf-8").split("\n\n")[0]
    copies = []
    for n in range(count):
        copies.append(record
                      .replace("PMID- 30922926", f"PMID- {40000000 + n}")
                      .replace("10.1016/j.ejmg.2019.03.004", f"10.5555/bench.{n}")
                      .replace("TI  - Time lapse:", f"TI  - Time lapse {n}:"))
    return "\n\n".join(copies) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="records to generate")
    parser.add_argument("--file", type=Path, help="import this file instead of a generated one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus"
        corpus.mkdir()
        source = args.file
        if source is None:
            source = folder / "bench.nbib"
            source.write_text(generated_medline(args.records), encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=folder / "index")
        started = time.perf_counter()
        report = import_files([source], settings, progress=False)
        elapsed = time.perf_counter() - started
        records = len(report.added) + len(report.merged) + len(report.skipped)
        started = time.perf_counter()
        again = import_files([source], settings, progress=False)
        second = time.perf_counter() - started
    print(f"{source.name}: {records} records in {elapsed:.2f} s = {records / elapsed:,.0f} "
          f"records/s (added {len(report.added)}, written as {', '.join(report.written[:1])}"
          f"{' ...' if len(report.written) > 1 else ''})")
    print(f"re-import (all skipped as duplicates): {len(again.skipped)} records in {second:.2f} s "
          f"= {len(again.skipped) / second:,.0f} records/s")


if __name__ == "__main__":
    main()
