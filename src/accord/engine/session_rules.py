"""The pair's ignore rules in a run: each side's ``.accordignore`` read,
compared with the rules last accepted for the pair, a changed one held back
(not copied either way) until it is accepted, and the rules a run left
recorded as accepted.
"""

from __future__ import annotations

from accord.engine import guards, rules
from accord.engine.detect import ChangeSet
from accord.engine.report import Report
from accord.engine.rules import IGNORE_FILE
from accord.errors import AccordError
from accord.keys import IgnoreRules
from accord.model import FILE, Side
from accord.replica import Replica

__all__ = ["SessionRules", "rules_name"]


class SessionRules:
    """The ignore rules of a :class:`~accord.engine.session.Session`
    (``_rules_now``, ``_rules_accepted``, ``_accepting``, ``rule_changes``)."""

    def _rules_text(self, replica: Replica) -> str:
        """The place's ``.accordignore`` ("" when it has none)."""
        if replica not in self._opened:
            return ""
        entry = replica.stat(IGNORE_FILE)
        if entry is None or entry.kind != FILE:
            return ""
        with replica.open_read(IGNORE_FILE) as stream:
            return str(stream.read().decode("utf-8", "replace"))

    def _read_rules(self) -> None:
        """Each side's ``.accordignore`` now and as accepted for this pair."""
        assert self.store is not None
        for side, replica in self.replicas.items():
            self._rules_now[side] = self._rules_text(replica)
            self._rules_accepted[side] = self.store.setting(rules_name(replica))
        urls = {side: replica.url for side, replica in self.replicas.items()}
        self.rule_changes = rules.changes(self._rules_now, self._rules_accepted, urls)

    def accept_rules(self) -> None:
        """Apply the changed ``.accordignore`` files from this run on."""
        self._accepting = True

    def ignore_rules(self) -> IgnoreRules:
        """The accepted rules of both sides plus the session's excludes."""
        texts = rules.in_effect(self._rules_now, self._rules_accepted, self._accepting)
        return self._rules_with(texts)

    def _rules_with(self, texts: dict[Side, str]) -> IgnoreRules:
        """The session's own rules plus each side's rules ``texts``."""
        own = [f"/{name}" for name in (self.policy.marker, self.policy.db_lock) if name]
        found = IgnoreRules([*self.hook.ignore(), *own, *self.exclude])
        for side in (Side.LEFT, Side.RIGHT):
            found = found + IgnoreRules(texts[side].splitlines())
        return found

    def _settle_rules(
        self, left: ChangeSet, right: ChangeSet
    ) -> tuple[ChangeSet, ChangeSet]:
        """Report rules changes, and hold a changed ``.accordignore`` back
        (not copied either way) until it is accepted."""
        for change in self.rule_changes:
            notice = rules.describe(change, accepted=self._accepting)
            if notice not in self.notices:
                self.notices.append(notice)
        if self.rule_changes and not self._accepting:
            held = {IGNORE_FILE}
            left, right = guards.drop_keys(left, held), guards.drop_keys(right, held)
        return left, right

    def _record_rules(self, report: Report) -> None:
        """After a run that accepted rules (or found none accepted yet, or
        copied a rules file), the rules files as the run left them are the
        accepted ones. Not after an aborted run: the next run decides."""
        assert self.store is not None
        if report.aborted or (self.rule_changes and not self._accepting):
            return  # held: what was accepted stays accepted
        first = any(text is None for text in self._rules_accepted.values())
        copied = any(o.action.key == IGNORE_FILE for o in report.done)
        if not (first or copied or self._accepting):
            return
        try:
            texts = {side: self._rules_text(r) for side, r in self.replicas.items()}
        except AccordError as exc:
            report.notices.append(f"the ignore rules were not recorded: {exc.message}")
            return
        for side, replica in self.replicas.items():
            if self._rules_accepted.get(side) != texts[side]:
                self.store.set_setting(rules_name(replica), texts[side])


def rules_name(replica: Replica) -> str:
    """The archive setting that keeps a place's accepted ignore rules."""
    return f"ignore-rules:{replica.identity}"
