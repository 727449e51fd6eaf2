"""Group commit: the lines of concurrent requests go to the stream in one append.

Requests that the event loop serves in one turn are collected, and the next turn
appends them all in a single stream transaction (one Arrow table, one commit); each
request's future resolves once its lines are durable. The seed client posts one line
per request from many connections, so this turns hundreds of tiny commits a second
into a few bigger ones. Small groups commit on the loop itself (a thread hop would
cost more than the commit); big ones go to a worker thread so the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from shopstream import metrics
from shopstream.domain.intake import Intake, merged_table
from shopstream.ports import AppendResult, DeadLetters, Stream

log = logging.getLogger("shopstream.appender")

INLINE_LINES = 500  # groups up to this size commit on the event loop


@dataclass(frozen=True)
class Appended:
    appended: int  # this request's lines that were new
    duplicates: int  # this request's valid lines accepted before (or earlier in the group)


class GroupCommit:
    def __init__(self, stream: Stream, dead_letters: DeadLetters) -> None:
        self.stream = stream
        self.dead_letters = dead_letters
        self._pending: list[tuple[Intake, asyncio.Future]] = []

    async def append(self, intake: Intake) -> Appended:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # runs after this turn's other requests joined
        self._pending.append((intake, future))
        return await future

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        if sum(len(intake.accepted_ids) for intake, _ in group) <= INLINE_LINES:
            self._commit_inline(group)
        else:
            asyncio.get_running_loop().create_task(self._commit_in_thread(group))

    async def _commit_in_thread(self, group: list[tuple[Intake, asyncio.Future]]) -> None:
        intakes = [intake for intake, _ in group]
        try:
            result = await asyncio.to_thread(self._commit, intakes)
        except Exception as error:
            self._fail(group, error)
            return
        self._resolve(group, result)

    def _commit_inline(self, group: list[tuple[Intake, asyncio.Future]]) -> None:
        try:
            result = self._commit([intake for intake, _ in group])
        except Exception as error:
            self._fail(group, error)
            return
        self._resolve(group, result)

    def _commit(self, intakes: list[Intake]) -> AppendResult:
        # Dead letters first: if the append then fails, "nothing accepted" (503) is true,
        # and a retry rewrites the same dead letters (idempotent on event_id).
        letters = [d for intake in intakes for d in intake.dead_letters]
        if letters:
            self.dead_letters.write(letters)
        started = time.perf_counter()
        result = self.stream.append(merged_table(intakes))
        metrics.STREAM_APPEND_SECONDS.observe(time.perf_counter() - started)
        return result

    @staticmethod
    def _fail(group: list[tuple[Intake, asyncio.Future]], error: Exception) -> None:
        # every request of the group fails alike: none of them was acknowledged
        log.warning("append of %d requests failed: %s: %s", len(group), type(error).__name__, error)
        for _, future in group:
            if not future.done():
                future.set_exception(error)

    @staticmethod
    def _resolve(group: list[tuple[Intake, asyncio.Future]], result: AppendResult) -> None:
        claimed = set(result.duplicates)
        for intake, future in group:
            new = 0
            for event_id in intake.accepted_ids:
                if event_id not in claimed:
                    claimed.add(event_id)
                    new += 1
            if not future.done():
                future.set_result(Appended(new, len(intake.accepted_ids) - new))
