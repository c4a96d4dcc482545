"""Snapshots applied together: arrival order per account, refusals and failures kept to their own
snapshot, and every answer given only once its batch is committed and its views invalidated; with
batches overlapping, one account's snapshots still in arrival order, endings in batch order, and a
failed batch never taking an account back.

The app under test forms a batch only when `max_size` snapshots are queued (its window is long), so
which snapshots share a transaction is decided by what the test sends, never by timing; the
engine's commits are counted to show that they did. Where two batches must overlap, the first is
held, its states locked, until the second has started.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select, text

from tests.support.apps import Api, make_settings, start_api, stop_api
from tests.support.bridging import Follower, position, register_follower, snapshot
from tests.support.builders import sign_up
from tests.support.services import embedded_and_production
from tradeguard.bridges.client import SNAPSHOTS_PATH, BridgeClient, BridgeError, encode_body
from tradeguard.ingest import step
from tradeguard.ingest.batches import Turn
from tradeguard.store.models import AccountSnapshot, AccountState

pytestmark = embedded_and_production


async def _batched_api(database_url: str, redis_url: str, tmp_path, max_size: int) -> tuple[Api, object]:
    """Two batches in flight, so that the tests of overlapping batches can make them overlap."""
    settings = make_settings(
        tmp_path,
        database_url,
        redis_url,
        ingest_batch_window_ms=1000,
        ingest_batch_max_size=max_size,
        ingest_batches_in_flight=2,
    )
    return await start_api(settings)


@pytest.fixture
async def batched(database_url, redis_url, tmp_path) -> AsyncIterator[Api]:
    """An app whose batches are four snapshots."""
    api, lifespan = await _batched_api(database_url, redis_url, tmp_path, max_size=4)
    try:
        yield api
    finally:
        await stop_api(api, lifespan)


class Commits:
    """The engine's commits from now on."""

    def __init__(self, api: Api) -> None:
        self.count = 0
        self._engine = api.services.engine.sync_engine
        event.listen(self._engine, "commit", self._committed)

    def _committed(self, _connection) -> None:
        self.count += 1

    def stop(self) -> None:
        event.remove(self._engine, "commit", self._committed)


async def _followers(api: Api, count: int) -> list[Follower]:
    owner = await sign_up(api)
    followers = [await register_follower(api, owner) for _ in range(count)]
    for follower in followers:
        await follower.expect("T1")
    return followers


def _snapshots(count: int, *, equity_from: int = 10_001) -> list[dict]:
    """`count` snapshots taken in this order, each with an equity of its own."""
    start = datetime.now(UTC) - timedelta(seconds=1)
    return [
        snapshot(position(1), taken_at=start + timedelta(milliseconds=index), equity=str(equity_from + index))
        for index in range(count)
    ]


async def _equity_history(api: Api, account_id: int) -> list[tuple[datetime, Decimal]]:
    """The account's equity points in time order (the history is keyed by account and time)."""
    async with api.session() as session:
        rows = await session.execute(
            select(AccountSnapshot.taken_at, AccountSnapshot.equity)
            .where(AccountSnapshot.account_id == account_id)
            .order_by(AccountSnapshot.taken_at)
        )
        return [(_utc(taken_at), equity) for taken_at, equity in rows]


async def _stored_state(api: Api, account_id: int) -> AccountState:
    async with api.session() as session:
        return await session.get(AccountState, account_id)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_applied_in_order(sent: list[dict], answers: list[dict], history: list[tuple[datetime, Decimal]]):
    """Whatever order the snapshots reached the queue in, the account applied them one after the
    other: the answers count the syncs as the equity history lists them, each applied snapshot
    newer than the one before, and a snapshot not applied no newer than one applied before it."""
    applied = sorted(
        (
            (answer["total_syncs"], body)
            for body, answer in zip(sent, answers, strict=True)
            if answer["applied"]
        ),
        key=lambda pair: pair[0],
    )
    assert [syncs for syncs, _ in applied] == list(range(1, len(applied) + 1))
    assert history == [
        (datetime.fromisoformat(body["taken_at"]), Decimal(body["equity"])) for _, body in applied
    ]
    assert [taken_at for taken_at, _ in history] == sorted({taken_at for taken_at, _ in history})
    for body, answer in zip(sent, answers, strict=True):
        if not answer["applied"]:
            assert datetime.fromisoformat(body["taken_at"]) <= history[answer["total_syncs"] - 1][0]


async def test_snapshots_of_one_account_in_one_batch_apply_in_arrival_order(batched):
    [follower] = await _followers(batched, 1)
    sent = _snapshots(4)
    commits = Commits(batched)

    answers = await asyncio.gather(*(follower.bridge.send_snapshot(body) for body in sent))

    commits.stop()
    assert commits.count == 1
    history = await _equity_history(batched, follower.account_id)
    _check_applied_in_order(sent, answers, history)
    status = await follower.status()
    latest = max(answers, key=lambda answer: answer["total_syncs"])
    assert status["total_syncs"] == latest["total_syncs"] == len(history)


async def test_a_later_batch_never_overtakes_an_earlier_one_for_the_same_account(batched):
    first, second = await _followers(batched, 2)
    sent = {first.account_id: _snapshots(6), second.account_id: _snapshots(6, equity_from=20_001)}
    commits = Commits(batched)

    answers = await asyncio.gather(
        *(
            follower.bridge.send_snapshot(sent[follower.account_id][index])
            for index in range(6)
            for follower in (first, second)
        )
    )

    commits.stop()
    assert 3 <= commits.count < 12
    for offset, follower in enumerate((first, second)):
        history = await _equity_history(batched, follower.account_id)
        _check_applied_in_order(sent[follower.account_id], answers[offset::2], history)
        assert (await follower.status())["total_syncs"] == len(history)


async def test_each_answer_comes_after_its_commit_and_a_read_after_it_shows_the_snapshot(batched):
    followers = await _followers(batched, 4)
    for follower in followers:
        # The status view cached before the batch: each read after an answer must see past it.
        assert (await follower.status())["total_syncs"] == 0

    async def send_then_read(follower: Follower, body: dict) -> tuple[dict, AccountState, dict]:
        answer = await follower.bridge.send_snapshot(body)
        return answer, await _stored_state(batched, follower.account_id), await follower.status()

    results = await asyncio.gather(
        *(send_then_read(follower, body) for follower, body in zip(followers, _snapshots(4), strict=True))
    )

    for answer, stored, status in results:
        assert answer["applied"] is True
        assert stored.total_syncs == answer["total_syncs"] == 1
        assert (status["total_syncs"], status["status"]) == (1, answer["status"])


async def test_snapshots_refused_in_a_batch_leave_the_others_applied(batched):
    applied_one, revoked, replayed, applied_two = await _followers(batched, 4)
    # Known to the process, then revoked: only the batch's lock can refuse it.
    await revoked.bridge.send_snapshot(snapshot(position(1)))
    gone = await revoked.owner.api.http.delete(
        f"/api/v1/accounts/{revoked.account_id}/devices/{revoked.device_id}", headers=revoked.owner.headers
    )
    assert gone.status_code == 204
    body = encode_body(snapshot(position(1)))
    replay_headers = replayed.bridge.signed_headers("POST", SNAPSHOTS_PATH, body)
    first_use = await batched.http.post(SNAPSHOTS_PATH, content=body, headers=replay_headers)
    assert first_use.status_code == 200
    commits = Commits(batched)

    answers = await asyncio.gather(
        applied_one.bridge.send_snapshot(snapshot(position(1))),
        revoked.bridge.send_snapshot(snapshot(position(1))),
        batched.http.post(SNAPSHOTS_PATH, content=body, headers=replay_headers),
        applied_two.bridge.send_snapshot(snapshot(position(1))),
        # Refused as it arrives: it never joins a batch.
        applied_two.bridge.send_snapshot(snapshot(position(1), equity="lots")),
        return_exceptions=True,
    )

    commits.stop()
    first, refused, replay, second, invalid = answers
    assert commits.count == 1
    assert (first["applied"], first["total_syncs"]) == (True, 1)
    assert (second["applied"], second["total_syncs"]) == (True, 1)
    assert (refused.status_code, refused.detail) == (401, "unknown or revoked device")
    assert (replay.status_code, replay.json()["detail"]) == (401, "nonce already used")
    assert isinstance(invalid, BridgeError) and invalid.status_code == 422
    assert (await revoked.status())["total_syncs"] == 1
    assert (await replayed.status())["total_syncs"] == 1


@pytest.fixture
async def poisoned(batched) -> AsyncIterator[tuple[Api, list[Follower]]]:
    """Four followers, the database refusing every write of the third one's state."""
    followers = await _followers(batched, 4)
    poisoned_id = followers[2].account_id
    async with batched.session() as session:
        if session.bind.dialect.name == "postgresql":
            await session.execute(
                text(
                    "CREATE FUNCTION tg_test_poison() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'poisoned account %', NEW.account_id; END $$"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER tg_test_poison BEFORE UPDATE ON account_states FOR EACH ROW "
                    f"WHEN (NEW.account_id = {poisoned_id}) EXECUTE FUNCTION tg_test_poison()"
                )
            )
        else:
            await session.execute(
                text(
                    "CREATE TRIGGER tg_test_poison BEFORE UPDATE ON account_states "
                    f"WHEN NEW.account_id = {poisoned_id} BEGIN SELECT RAISE(ABORT, 'poisoned account'); END"
                )
            )
        await session.commit()
    try:
        yield batched, followers
    finally:
        async with batched.session() as session:
            await session.execute(
                text(
                    "DROP TRIGGER tg_test_poison"
                    + (" ON account_states" if session.bind.dialect.name == "postgresql" else "")
                )
            )
            if session.bind.dialect.name == "postgresql":
                await session.execute(text("DROP FUNCTION tg_test_poison()"))
            await session.commit()


async def test_a_database_failure_mid_batch_fails_only_its_own_snapshot(
    poisoned, database_url, redis_url, tmp_path
):
    api, followers = poisoned
    commits = Commits(api)

    answers = await asyncio.gather(
        *(follower.bridge.send_snapshot(snapshot(position(1))) for follower in followers),
        return_exceptions=True,
    )

    commits.stop()
    # The batch rolled back, then each snapshot alone: three commits, the poisoned one none.
    assert commits.count == 3
    for follower, answer in zip(followers, answers, strict=True):
        if follower is followers[2]:
            assert (await follower.status())["total_syncs"] == 0
        else:
            assert (answer["applied"], answer["total_syncs"]) == (True, 1)
            assert (await follower.status())["total_syncs"] == 1
    alone = await _failure_alone(database_url, redis_url, tmp_path, followers[2])
    assert isinstance(answers[2], BridgeError)
    assert (
        (answers[2].status_code, answers[2].detail)
        == (alone.status_code, alone.detail)
        == (
            500,
            "internal server error",
        )
    )


async def _failure_alone(database_url, redis_url, data_dir, follower: Follower) -> BridgeError:
    """What the snapshot gets from a process (of the same keys) that applies each snapshot in a
    transaction of its own."""
    api, lifespan = await _batched_api(database_url, redis_url, data_dir, max_size=1)
    try:
        bridge = BridgeClient(api.http, device_id=follower.device_id, secret=follower.secret)
        with pytest.raises(BridgeError) as failed:
            await bridge.send_snapshot(snapshot(position(1)))
        return failed.value
    finally:
        await stop_api(api, lifespan)


class Overlap:
    """Holds the first batch applied from now on, once it has locked its states, until the next batch
    has started (a batch lets the next one start when its states are locked); `log` notes the first
    batch held, each batch started and each commit, in the order they happened."""

    def __init__(self, api: Api, monkeypatch) -> None:
        self.log: list[str] = []
        self.first_held = asyncio.Event()
        self._second_started = asyncio.Event()
        self._batches = 0
        original_apply, original_read = step.apply_batch, step.read_accounts

        async def apply_batch(services, batch, turn):
            self._batches += 1
            self.log.append(f"batch {self._batches} started")
            if self._batches == 2:
                self._second_started.set()
            await original_apply(services, batch, turn)

        async def read_accounts(session, account_ids):
            if not self.first_held.is_set():
                self.log.append("batch 1 holds its locks")
                self.first_held.set()
                await self._second_started.wait()
            return await original_read(session, account_ids)

        monkeypatch.setattr(step, "apply_batch", apply_batch)
        monkeypatch.setattr(step, "read_accounts", read_accounts)
        event.listen(api.services.engine.sync_engine, "commit", self._committed)
        self._engine = api.services.engine.sync_engine

    def _committed(self, _connection) -> None:
        self.log.append("commit")

    def stop(self) -> None:
        event.remove(self._engine, "commit", self._committed)


async def test_an_account_in_two_overlapping_batches_has_its_snapshots_applied_in_arrival_order(
    batched, monkeypatch
):
    [follower] = await _followers(batched, 1)
    sent = _snapshots(8)
    overlap = Overlap(batched, monkeypatch)

    first = [asyncio.ensure_future(follower.bridge.send_snapshot(body)) for body in sent[:4]]
    await overlap.first_held.wait()
    second = [asyncio.ensure_future(follower.bridge.send_snapshot(body)) for body in sent[4:]]
    answers = await asyncio.gather(*first, *second)

    overlap.stop()
    assert overlap.log == [
        "batch 1 started",
        "batch 1 holds its locks",
        "batch 2 started",
        "commit",
        "commit",
    ]
    history = await _equity_history(batched, follower.account_id)
    _check_applied_in_order(sent, answers, history)
    syncs_first = [answer["total_syncs"] for answer in answers[:4] if answer["applied"]]
    syncs_second = [answer["total_syncs"] for answer in answers[4:] if answer["applied"]]
    assert syncs_second and max(syncs_first) < min(syncs_second)
    assert (await follower.status())["total_syncs"] == len(history)


async def test_overlapping_batches_end_in_batch_order_and_answer_after_their_own_ending(
    database_url, redis_url, tmp_path, monkeypatch
):
    api, lifespan = await _batched_api(database_url, redis_url, tmp_path, max_size=1)
    try:
        first, second = await _followers(api, 2)
        subscription = api.services.bus.subscribe([first.account_id, second.account_id])
        log: list[str] = []
        published: list[int] = []
        first_ending, second_waits_its_turn, second_publishing = (
            asyncio.Event(),
            asyncio.Event(),
            asyncio.Event(),
        )
        publish, previous_ended = api.services.bus.publish, Turn.previous_ended
        endings = 0

        async def noted_previous_ended(turn: Turn) -> None:
            nonlocal endings
            endings += 1
            if endings == 2:
                second_waits_its_turn.set()
            await previous_ended(turn)

        async def first_publish_held_until_the_second_batch_has_committed(events):
            events = list(events)
            if not first_ending.is_set():
                first_ending.set()
                await _first_of(second_waits_its_turn, second_publishing)
            else:
                second_publishing.set()
            await publish(events)
            published.append(len(events))
            log.append(f"published account {events[0].account_id}")

        monkeypatch.setattr(Turn, "previous_ended", noted_previous_ended)
        monkeypatch.setattr(
            api.services.bus, "publish", first_publish_held_until_the_second_batch_has_committed
        )

        async def send(follower: Follower) -> dict:
            answer = await follower.bridge.send_snapshot(snapshot(position(1)))
            log.append(f"answered account {follower.account_id}")
            return answer

        sending_first = asyncio.ensure_future(send(first))
        await first_ending.wait()
        answers = await asyncio.gather(sending_first, send(second))

        assert log.index(f"published account {first.account_id}") < log.index(
            f"published account {second.account_id}"
        )
        for follower in (first, second):
            assert log.index(f"published account {follower.account_id}") < log.index(
                f"answered account {follower.account_id}"
            )
        seen = [(await subscription.queue.get()).account_id for _ in range(sum(published))]
        assert seen == sorted(seen, key=[first.account_id, second.account_id].index)
        assert set(seen) == {first.account_id, second.account_id}
        subscription.close()
        assert [answer["applied"] for answer in answers] == [True, True]
    finally:
        await stop_api(api, lifespan)


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(each.wait()) for each in events]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()


async def test_a_batch_failing_after_the_next_one_started_never_takes_an_account_back(poisoned, monkeypatch):
    api, followers = poisoned
    healthy = [follower for index, follower in enumerate(followers) if index != 2]
    sent = {follower.account_id: _snapshots(3) for follower in followers}
    # The first batch, one snapshot of each follower, fails at its end (the poisoned account's
    # state); the second, later snapshots of the healthy ones, starts while the first holds their rows.
    first_batch = [(follower, sent[follower.account_id][0]) for follower in followers]
    second_batch = [(follower, sent[follower.account_id][1]) for follower in healthy]
    second_batch.append((healthy[0], sent[healthy[0].account_id][2]))
    overlap = Overlap(api, monkeypatch)

    failing = [asyncio.ensure_future(follower.bridge.send_snapshot(body)) for follower, body in first_batch]
    await overlap.first_held.wait()
    later = [asyncio.ensure_future(follower.bridge.send_snapshot(body)) for follower, body in second_batch]
    answers = await asyncio.gather(*failing, *later, return_exceptions=True)

    overlap.stop()
    assert overlap.log[:3] == ["batch 1 started", "batch 1 holds its locks", "batch 2 started"]
    assert isinstance(answers[2], BridgeError) and answers[2].status_code == 500
    sends = list(zip(first_batch + second_batch, answers, strict=True))
    for follower in healthy:
        mine = [(body, answer) for (who, body), answer in sends if who is follower]
        history = await _equity_history(api, follower.account_id)
        _check_applied_in_order([body for body, _ in mine], [answer for _, answer in mine], history)
        _, newest_answer = max(mine, key=lambda pair: pair[0]["taken_at"])
        assert newest_answer["applied"] is True
        assert (await follower.status())["total_syncs"] == len(history)
    assert (await followers[0].bridge.send_snapshot(snapshot(position(1))))["applied"] is True
