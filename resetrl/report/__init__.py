"""`resetrl report`: one self-contained HTML page per run folder or compare folder.

- `data.py`: the folder read back (config, metrics, rollouts grouped per step and problem).
- `page.py`: the HTML, with `page.css` and `page.js` inlined; `write_report`, `write_report_or_warn`.
"""

from resetrl.report.page import REPORT_NAME, build_page, write_report, write_report_or_warn

__all__ = ["REPORT_NAME", "build_page", "write_report", "write_report_or_warn"]
