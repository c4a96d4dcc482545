"""Replay refusal: a batch's nonces claimed in one statement, and across a Redis outage, a used
nonce refused by every process, whatever was down when."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

from sqlalchemy import event

from tests.support.apps import two_api_processes
from tests.support.bridging import register_follower
from tradeguard.bridges.client import COMMANDS_PATH
from tradeguard.ingest.nonces import DatabaseNonces


async def test_a_batch_claims_each_new_nonce_once_and_none_used_before(api):
    follower = await register_follower(api)
    device, now = follower.device_id, datetime.now(UTC)
    used, fresh, twice = (secrets.token_hex(8) for _ in range(3))
    nonces = DatabaseNonces()
    async with api.session() as session, session.begin():
        assert await nonces.claim_all(session, [(device, used, now)]) == {(device, used)}
    async with api.session() as session, session.begin():
        claimed = await nonces.claim_all(
            session, [(device, fresh, now), (device, used, now), (device, twice, now), (device, twice, now)]
        )
    assert claimed == {(device, fresh), (device, twice)}


async def test_batches_of_any_size_claim_their_nonces_with_one_compiled_statement(api):
    follower = await register_follower(api)
    device, now = follower.device_id, datetime.now(UTC)
    sent = []
    engine = api.services.engine.sync_engine

    def record(_connection, _cursor, statement, _parameters, context, _executemany) -> None:
        if "device_nonces" in statement:
            sent.append(context.compiled)

    event.listen(engine, "before_cursor_execute", record)
    try:
        # From two on: SQLite sends a batch of one as a single execute, compiled apart.
        for size in (2, 3, 5):
            claims = [(device, secrets.token_hex(8), now) for _ in range(size)]
            async with api.session() as session, session.begin():
                assert len(await DatabaseNonces().claim_all(session, claims)) == size
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(sent) == 3
    assert all(compiled is sent[0] for compiled in sent)


async def test_a_used_nonce_is_refused_by_every_process_before_during_and_after_a_redis_outage(
    private_redis, database_url, tmp_path
):
    settings = {"redis_timeout_seconds": 0.2, "redis_retry_seconds": 0.3}
    async with two_api_processes(tmp_path, private_redis.url, database_url, **settings) as processes:
        follower = await register_follower(processes[0].api)
        used, first_uses, replays = [], {}, {}

        async def use_then_replay_everything_used(phase: str) -> None:
            for index, process in enumerate(processes):
                headers = follower.bridge.signed_headers("GET", COMMANDS_PATH, b"")
                first_uses[(phase, index)] = (
                    await process.api.http.get(COMMANDS_PATH, headers=headers)
                ).status_code
                used.append((phase, index, headers))
            for first_phase, first_index, headers in used:
                for index, process in enumerate(processes):
                    replay = await process.api.http.get(COMMANDS_PATH, headers=headers)
                    replays[(f"used {first_phase} on {first_index}", f"replayed {phase} on {index}")] = (
                        replay.status_code
                    )

        await use_then_replay_everything_used("before")
        private_redis.kill()
        await use_then_replay_everything_used("during")
        await private_redis.start()
        # Past the retry interval, so that every process is back on Redis.
        await asyncio.sleep(0.5)
        await use_then_replay_everything_used("after")

    assert set(first_uses.values()) == {200}
    assert len(replays) == 2 * 2 + 4 * 2 + 6 * 2
    assert {combination: status for combination, status in replays.items() if status != 401} == {}
