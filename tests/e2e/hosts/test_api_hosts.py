"""Several API hosts over one PostgreSQL and one Redis: each `tradeguard serve` in a network namespace
of its own, on an address of its own, one `tradeguard worker` beside them. A bridge may talk to any
host at any moment, and what one host acknowledged is what the others answer."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import pytest

from tests.support.bridging import STATUS, position, snapshot
from tests.support.builders import Caller
from tests.support.hosts import Deployment, Host, api_hosts
from tests.support.streams import open_stream
from tests.support.waiting import eventually
from tradeguard.bridges.client import SNAPSHOTS_PATH, BridgeClient, encode_body

GUARDS = "/api/v1/guards/status"
POSITIONS = "/api/v1/positions/open"
SNAPSHOTS_PER_HOST = 6
ROUNDS = 15
BREACHES = 5


@pytest.fixture(scope="module")
async def hosts(tmp_path_factory):
    """Hosts a and b as deployed by default (each process keeps its own copies of cached reads),
    host c with TRADEGUARD_NEAR_CACHE=false; the worker on a."""
    async with api_hosts(
        tmp_path_factory.mktemp("hosts"),
        {"a": {}, "b": {}, "c": {"TRADEGUARD_NEAR_CACHE": "false"}},
        shared={
            # Cached reads outlive every test here, so an answer can only turn fresh through an
            # invalidation, never by its time to live running out.
            "TRADEGUARD_CACHE_TTL_SECONDS": "3600",
            # Other runs share this PostgreSQL and its connection limit; no test here sends any
            # host more than a few requests at a time.
            "TRADEGUARD_DB_POOL_SIZE": "3",
            "TRADEGUARD_DB_MAX_OVERFLOW": "2",
        },
        worker_on="a",
    ) as deployment:
        yield deployment


async def _follower(hosts: Deployment) -> tuple[Caller, int, dict]:
    """A user with an account and its registered device, all made through host a."""
    owner = await hosts.sign_up("a")
    account_id = await owner.new_account()
    device = (await owner.post(f"/api/v1/accounts/{account_id}/devices")).json()
    return owner, account_id, device


def _bridge(host: Host, device: dict) -> BridgeClient:
    return BridgeClient(host.http, device_id=device["device_id"], secret=device["secret"])


async def _total_syncs(reader: Caller, account_id: int) -> int:
    return (await reader.get(STATUS, account_id=account_id)).json()["total_syncs"]


async def _cache_hits(host: Host, view: str) -> float:
    text = (await host.http.get("/metrics")).text
    match = re.search(rf'^tradeguard_cache_hits_total\{{view="{view}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_bridge_that_moves_to_the_other_host_mid_stream_has_each_snapshot_applied_once_in_order(
    hosts,
):
    owner, account_id, device = await _follower(hosts)
    on_a, on_b = _bridge(hosts["a"], device), _bridge(hosts["b"], device)
    # Each snapshot closes one position and opens the next, at an equity of its own, so the
    # stored state tells which snapshot was applied last and the history in which order.
    sent = [
        snapshot(position(index), position(index + 1), equity=str(10_000 + index))
        for index in range(2 * SNAPSHOTS_PER_HOST)
    ]

    answers = [await on_a.send_snapshot(body) for body in sent[: SNAPSHOTS_PER_HOST - 1]]
    last_on_a = encode_body(sent[SNAPSHOTS_PER_HOST - 1])
    signed_for_a = on_a.signed_headers("POST", SNAPSHOTS_PATH, last_on_a)
    answers.append(
        (await hosts["a"].http.post(SNAPSHOTS_PATH, content=last_on_a, headers=signed_for_a)).json()
    )
    # The bridge never got that answer, so it sends the snapshot again, newly signed, to the other host.
    retried = await on_b.send_snapshot(sent[SNAPSHOTS_PER_HOST - 1])
    replayed = await hosts["b"].http.post(SNAPSHOTS_PATH, content=last_on_a, headers=signed_for_a)
    answers += [await on_b.send_snapshot(body) for body in sent[SNAPSHOTS_PER_HOST:]]

    assert [(answer["applied"], answer["total_syncs"]) for answer in answers] == [
        (True, count) for count in range(1, 2 * SNAPSHOTS_PER_HOST + 1)
    ]
    assert (retried["applied"], retried["total_syncs"]) == (False, SNAPSHOTS_PER_HOST)
    # Host b knows the nonce host a took: a request captured on its way to a is refused on b.
    assert (replayed.status_code, replayed.json()["detail"]) == (401, "nonce already used")
    # The equity history in the order the hosts received the snapshots, which is the order sent.
    stored = await hosts.fetch(
        "SELECT equity FROM account_snapshots WHERE account_id = $1 ORDER BY received_at", account_id
    )
    assert [row["equity"] for row in stored] == [Decimal(body["equity"]) for body in sent]
    last = 2 * SNAPSHOTS_PER_HOST - 1
    for host in hosts.hosts.values():
        reader = host.caller(owner)
        assert await _total_syncs(reader, account_id) == 2 * SNAPSHOTS_PER_HOST
        open_positions = (await reader.get(POSITIONS, account_id=account_id)).json()["positions"]
        assert sorted(held["ticket"] for held in open_positions) == [str(last), str(last + 1)]


async def test_a_breach_on_one_host_issues_each_close_once_and_any_host_delivers_and_settles_it(hosts):
    _, account_id, device = await _follower(hosts)
    on_a, on_b = _bridge(hosts["a"], device), _bridge(hosts["b"], device)
    book = [position(1), position(2), position(3, symbol="GBPUSD")]
    await on_a.send_snapshot(snapshot(*book, equity="10000"))

    breach = snapshot(*book, equity="7900")
    issued = await on_a.send_snapshot(breach)
    # A bridge that lost host a's answer sends the same snapshot again, newly signed, to host b.
    retried = await on_b.send_snapshot(breach)
    # Its next round reaches both hosts at once, still past the critical level.
    both = await asyncio.gather(
        on_a.send_snapshot(snapshot(*book, equity="7800")), on_b.send_snapshot(snapshot(*book, equity="7700"))
    )
    polled = {"a": await on_a.poll_commands(), "b": await on_b.poll_commands()}

    command_ids = sorted(command["command_id"] for command in issued["commands"])
    assert sorted(command["ticket"] for command in issued["commands"]) == ["1", "2", "3"]
    assert retried["applied"] is False
    delivered = [retried["commands"], *(answer["commands"] for answer in both), *polled.values()]
    assert [sorted(command["command_id"] for command in commands) for commands in delivered] == [
        command_ids
    ] * len(delivered)

    acknowledged = [
        await on_b.acknowledge(command_id, "executed", profit="-50") for command_id in command_ids
    ]
    after = {"a": await on_a.poll_commands(), "b": await on_b.poll_commands()}
    closed = await on_a.send_snapshot(snapshot(equity="7650"))

    assert [command["state"] for command in acknowledged] == ["executed"] * 3
    assert after == {"a": [], "b": []}
    assert sorted(closed["closed_on_broker"]) == ["1", "2", "3"]
    assert closed["commands"] == []
    stored = await hosts.fetch(
        "SELECT id, ticket, state, acknowledged_by, confirmed_at FROM close_commands WHERE account_id = $1",
        account_id,
    )
    assert sorted((row["id"], row["ticket"]) for row in stored) == sorted(
        (command["command_id"], command["ticket"]) for command in issued["commands"]
    )
    assert {(row["state"], row["acknowledged_by"]) for row in stored} == {("executed", device["device_id"])}
    assert all(row["confirmed_at"] is not None for row in stored)


async def test_a_breach_reaching_both_hosts_at_once_is_applied_once_and_issues_each_close_once(hosts):
    followers = [await _follower(hosts) for _ in range(BREACHES)]
    book = [position(1), position(2), position(3, symbol="GBPUSD")]
    bridges = [(_bridge(hosts["a"], device), _bridge(hosts["b"], device)) for _, _, device in followers]
    for on_a, _ in bridges:
        await on_a.send_snapshot(snapshot(*book, equity="10000"))

    # Each bridge's breach sent to both hosts at once, as a client retrying on a timeout behind a
    # load balancer can; all the accounts at once, so that the hosts' transactions overlap.
    breaches = [snapshot(*book, equity="7900") for _ in bridges]
    answers = await asyncio.gather(
        *(
            bridge.send_snapshot(breach)
            for pair, breach in zip(bridges, breaches, strict=True)
            for bridge in pair
        )
    )

    for index, (_, account_id, _) in enumerate(followers):
        on_a_answer, on_b_answer = answers[2 * index], answers[2 * index + 1]
        assert sorted((on_a_answer["applied"], on_b_answer["applied"])) == [False, True]
        issued = sorted(command["command_id"] for command in on_a_answer["commands"])
        assert sorted(command["command_id"] for command in on_b_answer["commands"]) == issued
        stored = await hosts.fetch("SELECT id, ticket FROM close_commands WHERE account_id = $1", account_id)
        assert sorted(row["ticket"] for row in stored) == ["1", "2", "3"]
        assert sorted(row["id"] for row in stored) == issued


async def test_without_copies_a_host_reads_another_hosts_acknowledged_write_on_the_next_read(hosts):
    owner, account_id, device = await _follower(hosts)
    on_a = _bridge(hosts["a"], device)
    on_c = hosts["c"].caller(owner)

    acknowledged, seen = [], []
    for _ in range(ROUNDS):
        # Read first, so that what host c answers next is a cached entry the write must replace.
        await _total_syncs(on_c, account_id)
        acknowledged.append((await on_a.send_snapshot(snapshot(position(1))))["total_syncs"])
        seen.append(await _total_syncs(on_c, account_id))
    guards_before = (await on_c.get(GUARDS, account_id=account_id)).json()
    changed = (
        await hosts["a"]
        .caller(owner)
        .put(f"/api/v1/accounts/{account_id}/guard-config", json={"drawdown_warning_pct": "12"})
    )
    guards_after = (await on_c.get(GUARDS, account_id=account_id)).json()

    assert acknowledged == list(range(1, ROUNDS + 1))
    assert seen == acknowledged
    assert changed.status_code == 200, changed.text
    assert guards_before["drawdown_guard"]["warning_threshold_pct"] == 15
    assert guards_after["drawdown_guard"]["warning_threshold_pct"] == 12


async def test_with_copies_a_host_drops_its_copy_once_another_hosts_write_is_announced(hosts):
    owner, account_id, device = await _follower(hosts)
    on_a = _bridge(hosts["a"], device)
    on_b = hosts["b"].caller(owner)
    await on_a.send_snapshot(snapshot(position(1)))
    await _total_syncs(on_b, account_id)
    await on_b.get(GUARDS, account_id=account_id)
    hits_before = {
        view: await _cache_hits(hosts["b"], view) for view in ("reconciliation_status", "guard_status")
    }
    # Answered from what host b holds for them: the reads the writes below must not leave behind.
    assert await _total_syncs(on_b, account_id) == 1
    assert (await on_b.get(GUARDS, account_id=account_id)).json()["drawdown_guard"][
        "warning_threshold_pct"
    ] == 15
    hits_after = {view: await _cache_hits(hosts["b"], view) for view in hits_before}

    written = await on_a.send_snapshot(snapshot(position(1)))
    changed = (
        await hosts["a"]
        .caller(owner)
        .put(f"/api/v1/accounts/{account_id}/guard-config", json={"drawdown_warning_pct": "12"})
    )

    assert hits_after == {view: hits + 1 for view, hits in hits_before.items()}
    assert (written["total_syncs"], changed.status_code) == (2, 200)

    async def b_shows_both_writes() -> bool:
        guards = (await on_b.get(GUARDS, account_id=account_id)).json()
        return (
            await _total_syncs(on_b, account_id) == 2
            and guards["drawdown_guard"]["warning_threshold_pct"] == 12
        )

    await eventually(b_shows_both_writes, "host b answers with host a's snapshot and guard change")
    # Once dropped, the copy from before the writes never comes back.
    for _ in range(ROUNDS):
        assert await b_shows_both_writes()


async def test_a_dashboard_streaming_from_one_host_sees_what_another_host_applied(hosts):
    owner, account_id, device = await _follower(hosts)
    on_a = _bridge(hosts["a"], device)

    async with open_stream(hosts["b"].http, owner.token) as from_b:
        await from_b.next("hello")
        await on_a.send_snapshot(snapshot(position(1), equity="10000"))
        await on_a.send_snapshot(snapshot(position(1), equity="7900"))
        # A write's audit entries (its alerts among them) go out before the account's state.
        alert = await from_b.next("alert", matching=lambda event: event.data["kind"] == "drawdown")
        synced = await from_b.next("sync", matching=lambda event: event.data["total_syncs"] == 2)

    assert (synced.data["account_id"], synced.data["equity"], synced.data["trading_allowed"]) == (
        account_id,
        7900,
        False,
    )
    assert alert.data["level"] == "critical"
