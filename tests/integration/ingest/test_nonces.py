"""Replay refusal across a Redis outage: a used nonce is refused by every process, whatever was down when."""

from __future__ import annotations

import asyncio

from tests.support.apps import two_api_processes
from tests.support.bridging import register_follower
from tradeguard.bridges.client import COMMANDS_PATH


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
