"""A server whose TRADEGUARD_SECRET_KEY is not the one the devices were registered under says so."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet

from tests.support.apps import make_settings, start_api, stop_api
from tests.support.bridging import position, register_follower, snapshot
from tradeguard.bridges.client import BridgeClient, BridgeError


async def test_a_bridge_is_told_to_retry_and_the_log_names_the_setting(tmp_path, caplog):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'tradeguard.db'}"
    registering, lifespan = await start_api(
        make_settings(tmp_path / "a", database_url, secret_key=Fernet.generate_key().decode())
    )
    try:
        follower = await register_follower(registering)
        await follower.bridge.send_snapshot(snapshot(position(1)))
    finally:
        await stop_api(registering, lifespan)
    misconfigured, lifespan = await start_api(
        make_settings(tmp_path / "b", database_url, secret_key=Fernet.generate_key().decode())
    )
    try:
        bridge = BridgeClient(misconfigured.http, device_id=follower.device_id, secret=follower.secret)
        with caplog.at_level(logging.ERROR), pytest.raises(BridgeError) as refused:
            await bridge.send_snapshot(snapshot(position(1)))
    finally:
        await stop_api(misconfigured, lifespan)

    assert refused.value.status_code == 503
    assert "secret key is misconfigured" in str(refused.value)
    assert "TRADEGUARD_SECRET_KEY" in caplog.text
    assert follower.secret not in caplog.text
