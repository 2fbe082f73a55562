"""What a run does once its plan is applied: each place delivers what it
batched, each place the run changed gets one history record, and trash
runs older than the retention period are purged.
"""

from __future__ import annotations

import time

from accord.engine import history
from accord.engine.plan import ARCHIVE_ONLY
from accord.engine.report import Report
from accord.errors import AccordError
from accord.model import Side

__all__ = ["SessionEnd"]


class SessionEnd:
    """The end of an applied run of a :class:`~accord.engine.session.Session`."""

    def _finish(self, report: Report) -> list[str]:
        """Let each place deliver what it batched (``Replica.finish``)."""
        notices: list[str] = []
        for replica in self._opened:
            try:
                notices += replica.finish()
            except AccordError as exc:
                report.aborted = report.aborted or (
                    f"{exc.message}; the changes for {replica.url} are kept "
                    "and sent by the next run"
                )
        return notices

    def _record_history(self, report: Report, status: str, started: float) -> list[str]:
        """One history record in each place this run changed (shared logs)."""
        notices = []
        changes: dict[Side | None, list[tuple[str, str, str | None]]] = {
            side: [] for side in self.replicas
        }
        for outcome in report.done:  # one pass for both places
            action = outcome.action
            if action.op not in ARCHIVE_ONLY and action.side in changes:
                changes[action.side].append((action.op, action.key, action.new_key))
        for side, replica in self.replicas.items():
            done = changes[side]
            if not done:
                continue
            data = history.record(
                run=self.run,
                who=self.who,
                command=self.command,
                started=started,
                finished=time.time(),
                status=status,
                side=side,
                other=self.replicas[side.other].url,
                changes=done,
            )
            notice = history.write(replica, data)
            if notice:
                notices.append(notice)
        return notices

    def _purge_trash(self) -> list[str]:
        """Remove trash runs older than the retention period."""
        if self.policy.trash_days <= 0:
            return []
        cutoff = time.strftime(
            "%Y%m%dT%H%M%SZ", time.gmtime(time.time() - self.policy.trash_days * 86400)
        )
        notices = []
        for replica in (self.left, self.right):
            try:
                runs = replica.trash_runs()
            except AccordError:
                continue
            for run in runs:
                if run < cutoff:
                    count = replica.trash_purge(run)
                    notices.append(
                        f"purged {count} items older than "
                        f"{self.policy.trash_days:g} days from the trash "
                        f"of {replica.url}"
                    )
        return notices
