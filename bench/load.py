"""Sending signed snapshots: priming, closed-loop throughput, and paced (open-loop) streams.

Every concurrent sender owns a disjoint slice of the accounts and sends to them in turn, so no
two in-flight snapshots lock the same account row and each account's `taken_at` only grows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bench.client import Connection, HTTPError
from bench.rates import send_offsets
from bench.snapshots import SnapshotSigner
from bench.stats import latency_summary
from tradeguard.bridges.client import SNAPSHOTS_PATH

APPLIED = b'"applied":true'


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    not_applied: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str | None = None
    failures: dict[str, int] = field(default_factory=dict)
    """Requests that got no answer, by what happened (a connection closed, a time-out, …)."""

    def record(self, status: int, body: bytes, elapsed: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.ok += 1
            self.latencies.append(elapsed)
            if APPLIED not in body:
                self.not_applied += 1
        else:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{status}: {body[:300]!r}"

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        kind = str(exc).rpartition(": ")[2] if isinstance(exc, HTTPError) else type(exc).__name__
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if self.first_error is None:
            self.first_error = repr(exc)

    def summary(self, seconds: float) -> dict:
        return {
            "snapshots_ok": self.ok,
            "snapshots_per_s": round(self.ok / seconds, 1) if seconds else None,
            "not_applied": self.not_applied,
            "errors": self.errors,
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "first_error": self.first_error,
            "no_answer": dict(sorted(self.failures.items())),
            "latency": latency_summary(self.latencies),
        }


async def _send(connection: Connection, signer: SnapshotSigner, body: bytes, tally: Tally | None):
    headers = signer.headers(body)
    started = time.perf_counter()
    try:
        answer = await connection.request("POST", SNAPSHOTS_PATH, headers, body)
    except (HTTPError, OSError) as exc:
        if tally is not None:
            tally.failed(exc)
        return None
    if tally is not None:
        tally.record(answer.status, answer.body, time.perf_counter() - started)
    return answer


async def prime(
    host: str, port: int, signers: Sequence[SnapshotSigner], *, concurrency: int = 32, on_done=None
) -> dict:
    """One snapshot per account: its first, which creates its positions and matches its trades."""
    tally = Tally()
    queue = list(signers)
    started = time.perf_counter()

    async def sender() -> None:
        connection = Connection(host, port)
        try:
            while queue:
                signer = queue.pop()
                await _send(connection, signer, signer.body(), tally)
                if on_done is not None:
                    on_done(1)
        finally:
            await connection.close()

    await asyncio.gather(*(sender() for _ in range(max(1, min(concurrency, len(signers))))))
    return tally.summary(time.perf_counter() - started) | {"accounts": len(signers)}


async def closed_loop(
    host: str,
    port: int,
    signers: Sequence[SnapshotSigner],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 2.0,
    on_tick: Callable[[float], None] | None = None,
) -> dict:
    """As fast as the server answers, `concurrency` snapshots in flight; measured after `warmup`."""
    concurrency = max(1, min(concurrency, len(signers)))
    tally = Tally()
    begin = time.perf_counter()
    measure_from = begin + warmup
    end = measure_from + duration
    cpu_start = time.process_time()
    sent = [0]

    async def sender(index: int) -> None:
        mine = signers[index::concurrency]
        connection = Connection(host, port)
        turn = 0
        try:
            while True:
                now = time.perf_counter()
                if now >= end:
                    return
                signer = mine[turn % len(mine)]
                turn += 1
                await _send(connection, signer, signer.body(), tally if now >= measure_from else None)
                sent[0] += 1
        finally:
            await connection.close()

    async def ticker() -> None:
        while time.perf_counter() < end:
            await asyncio.sleep(0.25)
            if on_tick is not None:
                on_tick(min(1.0, (time.perf_counter() - begin) / (end - begin)))

    ticking = asyncio.create_task(ticker())
    await asyncio.gather(*(sender(index) for index in range(concurrency)))
    ticking.cancel()
    measured = time.perf_counter() - measure_from
    client_cpu = time.process_time() - cpu_start
    return tally.summary(measured) | {
        "accounts": len(signers),
        "concurrency": concurrency,
        "duration_s": round(measured, 2),
        "sent_including_warmup": sent[0],
        "load_generator_cpu_s": round(client_cpu, 2),
    }


async def paced(
    host: str,
    port: int,
    jobs: Sequence[tuple[SnapshotSigner, Callable[[SnapshotSigner], bytes]]],
    *,
    rate: float,
    max_in_flight: int = 64,
    on_answer: Callable[[SnapshotSigner, object, float], None] | None = None,
    stop: asyncio.Event | None = None,
    cycle: bool = False,
) -> Tally:
    """Open loop: start one request every 1/rate seconds, whatever the answers do (bounded in flight).

    Jobs for the same account must not overlap; with `cycle`, jobs repeat until `stop` is set.
    """
    tally = Tally()
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_in_flight)
    busy: set[str] = set()
    tasks: set[asyncio.Task] = set()

    async def one(signer: SnapshotSigner, make: Callable[[SnapshotSigner], bytes]) -> None:
        connection = idle.pop() if idle else Connection(host, port)
        try:
            started = time.perf_counter()
            answer = await _send(connection, signer, make(signer), tally)
            if answer is not None and on_answer is not None:
                on_answer(signer, answer, time.perf_counter() - started)
        finally:
            idle.append(connection)
            busy.discard(signer.account.device_id)
            slots.release()

    interval = 1.0 / rate
    next_at = time.perf_counter()
    index = 0
    while index < len(jobs) or cycle:
        if stop is not None and stop.is_set():
            break
        if cycle and index >= len(jobs):
            index = 0
        signer, make = jobs[index]
        index += 1
        if signer.account.device_id in busy:
            await asyncio.sleep(0.001)
            continue
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        next_at += interval
        await slots.acquire()
        busy.add(signer.account.device_id)
        task = asyncio.create_task(one(signer, make))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    for connection in idle:
        await connection.close()
    return tally


async def read_loop(
    host: str,
    port: int,
    callers: Sequence[tuple[str, int]],
    path: str,
    *,
    concurrency: int,
    duration: float,
) -> dict:
    """GETs of `path?account_id=` rotating callers, closed loop (the Python stand-in for wrk)."""
    latencies: list[float] = []
    errors = [0]
    end = time.perf_counter() + duration

    async def reader(index: int) -> None:
        connection = Connection(host, port)
        turn = index
        try:
            while time.perf_counter() < end:
                token, account = callers[turn % len(callers)]
                turn += concurrency
                started = time.perf_counter()
                try:
                    answer = await connection.request(
                        "GET", f"{path}?account_id={account}", {"Authorization": f"Bearer {token}"}
                    )
                except (HTTPError, OSError):
                    errors[0] += 1
                    continue
                if answer.status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[0] += 1
        finally:
            await connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(reader(index) for index in range(concurrency)))
    seconds = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "error_count": errors[0],
        "latency": latency_summary(latencies),
    }


@dataclass
class Acknowledged:
    """Answers that said `applied`, over a whole run (warm-ups included): what the database must hold."""

    applied: int = 0

    def note(self, answer) -> None:
        if answer.status == 200 and APPLIED in answer.body:
            self.applied += 1


async def _send_prebuilt(
    connection: Connection, message: bytes, tally: Tally | None, acks: Acknowledged, due: float
):
    """Send one pre-signed request; latency from `due` (its scheduled time, or its write in a closed loop)."""
    try:
        answer = await connection.send(message, "POST snapshot")
    except (HTTPError, OSError) as exc:
        if tally is not None:
            tally.failed(exc)
        return None
    acks.note(answer)
    if tally is not None:
        tally.record(answer.status, answer.body, time.perf_counter() - due)
    return answer


async def closed_loop_prebuilt(
    host: str,
    port: int,
    queues: Sequence[Iterable[bytes]],
    *,
    duration: float,
    warmup: float,
    acks: Acknowledged,
) -> dict:
    """One sender per queue, each sending its pre-signed requests back to back; measured after `warmup`.

    A sender whose queue runs out stops early; `exhausted_senders` says how many did (sign more).
    """
    tally = Tally()
    begin = time.perf_counter()
    measure_from = begin + warmup
    end = measure_from + duration
    cpu_start = time.process_time()
    sent = [0]
    exhausted = [0]

    async def sender(queue: Iterable[bytes]) -> None:
        connection = Connection(host, port)
        try:
            for message in queue:
                now = time.perf_counter()
                if now >= end:
                    return
                await _send_prebuilt(connection, message, tally if now >= measure_from else None, acks, now)
                sent[0] += 1
            exhausted[0] += 1
        finally:
            await connection.close()

    await asyncio.gather(*(sender(queue) for queue in queues))
    measured = time.perf_counter() - measure_from
    return tally.summary(measured) | {
        "concurrency": len(queues),
        "duration_s": round(measured, 2),
        "sent_including_warmup": sent[0],
        "exhausted_senders": exhausted[0],
        "load_generator_cpu_s": round(time.process_time() - cpu_start, 2),
    }


async def open_loop_prebuilt(
    host: str,
    port: int,
    messages: Sequence[bytes],
    *,
    rate: float,
    max_connections: int = 256,
    fresh_connections: bool = False,
    acks: Acknowledged,
    on_answer: Callable[[object, float], None] | None = None,
    stop: asyncio.Event | None = None,
    timeout: float = 30.0,
) -> dict:
    """Open loop: request i is due at i / rate seconds, whatever the earlier answers do.

    When `stop` is set no further request is started; those in flight are still awaited.

    Latency runs from the moment a request was due, so time spent waiting for a free connection
    (all `max_connections` busy) counts, as it would for a bridge. With `fresh_connections` every
    request opens its own connection, as independent bridges do, and closes it afterwards.
    """
    tally = Tally()
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_connections)
    tasks: set[asyncio.Task] = set()
    late = [0.0]

    async def one(message: bytes, due: float) -> None:
        connection = Connection(host, port, timeout=timeout) if fresh_connections or not idle else idle.pop()
        try:
            answer = await _send_prebuilt(connection, message, tally, acks, due)
            if answer is not None and on_answer is not None:
                on_answer(answer, time.perf_counter() - due)
        finally:
            if fresh_connections:
                await connection.close()
            else:
                idle.append(connection)
            slots.release()

    cpu_start = time.process_time()
    began = time.perf_counter()
    started = 0
    for message, offset in zip(messages, send_offsets(rate, len(messages)), strict=True):
        due = began + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if stop is not None and stop.is_set():
            break
        await slots.acquire()
        started += 1
        late[0] = max(late[0], time.perf_counter() - due)
        task = asyncio.create_task(one(message, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_in = time.perf_counter() - began
    if tasks:
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    for connection in idle:
        await connection.close()
    summary = tally.summary(elapsed)
    return summary | {
        "offered_per_s": rate,
        "achieved_per_s": summary["snapshots_per_s"],
        "requests": started,
        "sending_took_s": round(sent_in, 3),
        "last_answer_after_s": round(elapsed, 3),
        "most_late_start_ms": round(late[0] * 1000, 1),
        "load_generator_cpu_s": round(time.process_time() - cpu_start, 2),
    }
