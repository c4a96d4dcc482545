"""Two deployments (each its own database and cache namespace) on one Redis server: what one
deployment's users are shown never comes from the other."""

from __future__ import annotations

from tests.support.apps import make_settings, serve_live
from tests.support.bridging import position, register_follower, snapshot
from tests.support.services import REDIS_URL, require_service
from tests.support.streams import open_stream


async def test_a_live_stream_shows_only_its_own_deployments_events(tmp_path):
    require_service("Redis", "127.0.0.1", 6379)
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    # make_settings gives each deployment a cache namespace of its own, as configuration.md asks
    # of processes that do not serve the same database.
    x = make_settings(tmp_path / "x", f"sqlite+aiosqlite:///{tmp_path / 'x' / 'tradeguard.db'}", REDIS_URL)
    y = make_settings(tmp_path / "y", f"sqlite+aiosqlite:///{tmp_path / 'y' / 'tradeguard.db'}", REDIS_URL)
    async with serve_live(x) as on_x, serve_live(y) as on_y:
        in_x, in_y = await register_follower(on_x.api), await register_follower(on_y.api)
        # Fresh databases number their accounts alike.
        assert in_x.account_id == in_y.account_id

        async with (
            open_stream(on_x.api.http, in_x.owner.token) as x_stream,
            open_stream(on_y.api.http, in_y.owner.token) as y_stream,
        ):
            await x_stream.next("hello")
            await y_stream.next("hello")
            await in_x.bridge.send_snapshot(snapshot(position(1), equity="11111"))
            # Deployment x's own listener has it back from Redis, so Redis has handed it to every
            # listener there is before deployment y publishes anything.
            await x_stream.next("sync", matching=lambda event: event.data["total_syncs"] == 1)
            await in_y.bridge.send_snapshot(snapshot(position(1), equity="22222"))
            syncs = [await y_stream.next("sync")]
            while syncs[-1].data["total_syncs"] != 1 or syncs[-1].data["equity"] != 22222:
                syncs.append(await y_stream.next("sync"))

    assert [event.data["equity"] for event in syncs if event.data["total_syncs"] == 1] == [22222]
