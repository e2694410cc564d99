"""`resetrl report RUN_DIR`: the HTML report of a run folder or a compare folder."""

from __future__ import annotations

import time


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="write a self-contained HTML report of a run or compare folder")
    parser.add_argument("folder", help="a run folder (resetrl train --out) or a compare folder (resetrl compare --out)")
    parser.add_argument("--out", help="HTML file to write (default: FOLDER/report.html)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from resetrl.report import write_report

    started = time.perf_counter()
    path = write_report(args.folder, args.out)
    print(f"resetrl: wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s); "
          "open it in a browser, no network needed")
    return 0
