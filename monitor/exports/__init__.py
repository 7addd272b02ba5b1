"""Session exports: pure functions from a recorded session (`monitor.store.SessionTrace`) to text.

`csv_export.to_csv` (the trace CSV that `bedside replay` reads), `fhir.to_fhir_bundle`/`to_fhir_json` (a FHIR R4
Bundle of vital-signs Observations), `hl7.to_hl7` (an HL7 v2.6 ORU^R01 per IHE PCD-01) and `report.to_report_html`
(a printable session report). No I/O, no clock, no database: the caller reads the trace and writes the text.
`export(trace, format)` is the one entry point of the CLI (`bedside export`) and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from monitor.store import SessionTrace

Format = Literal["csv", "fhir", "hl7", "report"]
FORMATS: tuple[Format, ...] = get_args(Format)


@dataclass(frozen=True, slots=True)
class Export:
    text: str
    media_type: str
    filename: str


def export(trace: SessionTrace, fmt: Format) -> Export:
    """The session in format `fmt` with its media type and a file name (`bedside-<session id>.<ext>`)."""
    from monitor.exports.csv_export import to_csv
    from monitor.exports.fhir import to_fhir_json
    from monitor.exports.hl7 import to_hl7
    from monitor.exports.report import to_report_html
    from monitor.session_stats import session_statistics

    name = f"bedside-{trace.session.id}"
    if fmt == "csv":  # a row a second: readings of one second share a row, so a replay holds each value between
        return Export(to_csv(trace, resolution=1.0), "text/csv; charset=utf-8", f"{name}.csv")
    if fmt == "fhir":
        return Export(to_fhir_json(trace), "application/fhir+json", f"{name}.fhir.json")
    if fmt == "hl7":
        return Export(to_hl7(trace), "application/hl7-v2; charset=utf-8", f"{name}.hl7")
    if fmt == "report":
        return Export(to_report_html(trace, session_statistics(trace)), "text/html; charset=utf-8", f"{name}.html")
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
