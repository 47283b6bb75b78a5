"""What a fuzz run counted: per operation and mode, the answers and the checks they failed."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from schemathesis import GenerationMode

__all__ = ["FuzzReport", "OperationReport", "format_table"]


@dataclasses.dataclass
class OperationReport:
    """What one operation's cases were answered, and the checks they failed."""

    operation: str
    requested: int = 0
    cases: Counter[str] = dataclasses.field(default_factory=Counter)
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    # Why 4xx answers said no: "status problem-type" (what keeps a share of 2xx down).
    problems: Counter[str] = dataclasses.field(default_factory=Counter)
    positive_2xx: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    check_failures: Counter[str] = dataclasses.field(default_factory=Counter)
    transport_errors: int = 0
    not_generated: list[str] = dataclasses.field(default_factory=list)
    failures: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def total(self) -> int:
        """Cases sent in both modes."""
        return sum(self.cases.values())

    @property
    def ok_share(self) -> float:
        """Share of cases answered 2xx."""
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return ok / self.total if self.total else 0.0

    @property
    def share_200(self) -> float:
        """Share of cases answered exactly 200."""
        return self.statuses[200] / self.total if self.total else 0.0

    @property
    def positive_ok_share(self) -> float:
        """Share of positive cases answered 2xx."""
        positive = self.cases[GenerationMode.POSITIVE.value]
        return self.positive_2xx / positive if positive else 0.0

    @property
    def clean(self) -> bool:
        """No check failed and every request reached the server."""
        return not self.check_failures and not self.transport_errors

    def as_json(self) -> dict[str, Any]:
        """The operation's report as JSON-ready values."""
        return {
            "operation": self.operation,
            "requested": self.requested,
            "cases": self.total,
            "cases_by_mode": dict(self.cases),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "problems": dict(self.problems.most_common()),
            "ok_share": round(self.ok_share, 4),
            "share_200": round(self.share_200, 4),
            "positive_ok_share": round(self.positive_ok_share, 4),
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "check_failures": dict(sorted(self.check_failures.items())),
            "transport_errors": self.transport_errors,
            "not_generated": self.not_generated,
            "failures": self.failures,
            "wall_s": round(self.wall_s, 2),
        }


@dataclasses.dataclass
class FuzzReport:
    """Every operation's report and the totals."""

    operations: dict[str, OperationReport] = dataclasses.field(default_factory=dict)
    # Operations whose first 2xx was replayed without and with a garbled credential.
    auth_checked: list[str] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0

    @property
    def cases(self) -> int:
        """Cases sent over every operation and mode."""
        return sum(report.total for report in self.operations.values())

    @property
    def server_errors(self) -> int:
        """5xx answers in all."""
        return sum(report.server_errors for report in self.operations.values())

    @property
    def schema_violations(self) -> int:
        """Answers whose body breaks the schema documented for their status, in all."""
        return sum(report.schema_violations for report in self.operations.values())

    @property
    def check_failures(self) -> Counter[str]:
        """Failed checks by name, in all."""
        total: Counter[str] = Counter()
        for report in self.operations.values():
            total.update(report.check_failures)
        return total

    @property
    def clean(self) -> bool:
        """No operation failed a check or lost a request."""
        return all(report.clean for report in self.operations.values())

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        statuses: Counter[int] = Counter()
        for report in self.operations.values():
            statuses.update(report.statuses)
        ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
        return {
            "cases": self.cases,
            "requested": sum(report.requested for report in self.operations.values()),
            "statuses": {str(status): n for status, n in sorted(statuses.items())},
            "ok_share": round(ok / self.cases, 4) if self.cases else 0.0,
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "check_failures": dict(sorted(self.check_failures.items())),
            "auth_checked": len(self.auth_checked),
            "wall_s": round(self.wall_s, 2),
            "operations": [report.as_json() for report in self.operations.values()],
        }


def format_table(report: FuzzReport) -> str:
    """A Markdown table of the report, one operation a row."""
    lines = [
        "| operation | cases | statuses | 5xx | schema violations | other check failures "
        "| 2xx share | positive 2xx share |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for entry in report.operations.values():
        other = {
            name: n
            for name, n in entry.check_failures.items()
            if name not in ("not_a_server_error", "response_schema_conformance")
        }
        statuses = " ".join(f"{status}:{n}" for status, n in sorted(entry.statuses.items()))
        lines.append(
            f"| {entry.operation} | {entry.total} | {statuses} | {entry.server_errors} "
            f"| {entry.schema_violations} | {other or 0} | {entry.ok_share:.1%} "
            f"| {entry.positive_ok_share:.1%} |"
        )
    return "\n".join(lines)
