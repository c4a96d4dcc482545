"""The dashboard's platform page in Chromium: the operator's ranked accounts, counts, exposure and bulk actions.

Each test runs its own service on a SQLite file of its own, so the ranking and counts are the test's own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import insert

from tests.e2e.browser.test_dashboard_browser import TIMEOUT_MS, Served, _sqlite_settings, serving
from tests.support.apps import Api
from tests.support.bridging import position, register_follower, snapshot
from tests.support.builders import NOW, PASSWORD, sign_up, store_snapshots, write_state
from tests.support.net import SHORT_KEEPALIVE, free_port
from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.accounts.service import initial_state
from tradeguard.cache import invalidate_accounts
from tradeguard.store.models import Account, AccountState

SCREENSHOT = "/tmp/platform-page.png"
MANY = 1_000
BURST = 20
BURST_PACE_S = 0.15  # the burst spans a few seconds: several list reads, fewer exposure reads
PLATFORM_READ = "/api/v1/platform/accounts"
EXPOSURE_READ = "/api/v1/platform/exposure"
DRAWDOWNS_READ = "/api/v1/platform/drawdowns"
API = "/api/v1/"
SIGN_IN_REQUESTS = 40  # two summaries for each of the 1,000 accounts would be 2,000


@pytest.fixture
async def served(tmp_path):
    port = free_port()
    async with serving(_sqlite_settings(tmp_path), port) as app:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10, limits=SHORT_KEEPALIVE) as http:
            yield Served(url, Api(app=app, http=http))


async def _signed_in(context, served: Served, email: str, path: str = "/"):
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type in ("error", "warning") else None,
    )
    await page.goto(served.url + path)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    return page, problems


async def _trading_allowed(follower) -> bool:
    response = await follower.owner.get("/api/v1/guards/status", account_id=follower.account_id)
    assert response.status_code == 200, response.text
    return response.json()["trading_allowed"]


async def test_the_operator_sees_the_platform_ranked_and_halts_a_signals_followers(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    signal = f"SIG-{uuid.uuid4().hex[:6]}"
    trading = await register_follower(served.api)
    await trading.expect("t-1", signal_id=signal, volume="1.00")
    held = position("5001", volume="1.00", current_price="1.09000", profit="50.00")
    assert (await trading.bridge.send_snapshot(snapshot(held, equity="10050")))["applied"]
    halted = await register_follower(served.api)
    await write_state(
        served.api,
        halted.account_id,
        trading_allowed=False,
        halted_at=NOW,
        halt_reason="drawdown 22% >= critical 20%",
        drawdown_level="critical",
        drawdown_pct=Decimal("22"),
    )
    operator = await sign_up(served.api, role="owner")

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, problems = await _signed_in(context, served, operator.email)
        await page.get_by_role("link", name="Platform").click()
        rows = page.locator("#platform-accounts tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_have_attribute("data-account-id", str(halted.account_id))
        await expect(rows.nth(0)).to_have_attribute("data-status", "halted")
        await expect(rows.nth(0)).to_contain_text("critical")  # its attention reasons
        await expect(rows.nth(1)).to_have_attribute("data-account-id", str(trading.account_id))
        await expect(rows.nth(1)).to_contain_text("$10,050.00")
        await expect(page.locator('#platform-counts [data-status="halted"]')).to_have_attribute(
            "data-count", "1"
        )
        await expect(page.locator('#platform-counts [data-status="ok"]')).to_have_attribute("data-count", "1")
        await expect(page.locator("#platform-total")).to_have_text("2")
        exposure = page.locator('#exposure tr[data-symbol="EURUSD"]')
        await expect(exposure).to_contain_text("1.00")  # net and gross lots
        await expect(exposure).to_contain_text("+$50.00")
        await expect(exposure).to_contain_text("$1,090.00")  # 1 % of 1.00 × 100,000 × 1.09000, in USD

        # Live: a snapshot elsewhere reaches the page through the platform stream, without a click.
        moved = position("5001", volume="1.00", current_price="1.08000", profit="-50.00")
        assert (await trading.bridge.send_snapshot(snapshot(moved, equity="9950")))["applied"]
        await expect(rows.nth(1)).to_contain_text("$9,950.00")
        await expect(exposure).to_contain_text("-$50.00")

        # A burst of snapshots is read at most once a second, not once per event; the exposure, which
        # sums every position of the platform, at most once in five, and its last read has the last P&L.
        reads: list[str] = []
        exposure_reads: list[str] = []

        def note(request) -> None:
            if PLATFORM_READ in request.url:
                reads.append(request.url)
            elif EXPOSURE_READ in request.url:
                exposure_reads.append(request.url)

        page.on("request", note)
        started = time.perf_counter()
        for step in range(BURST):
            last = step == BURST - 1
            body = snapshot(
                position("5001", volume="1.00", current_price="1.08000", profit="-60.00") if last else moved,
                equity=str(9900 - step),
            )
            assert (await trading.bridge.send_snapshot(body))["applied"]
            await asyncio.sleep(BURST_PACE_S)
        await expect(rows.nth(1)).to_contain_text(f"${9900 - BURST + 1:,}.00")
        await expect(exposure).to_contain_text("-$60.00")
        await page.wait_for_timeout(1500)  # the last throttled read, if one was still due
        elapsed = time.perf_counter() - started
        assert 1 <= len(reads) <= int(elapsed) + 2 < BURST, (len(reads), elapsed)
        assert 1 <= len(exposure_reads) <= int(elapsed / 5) + 2, (len(exposure_reads), len(reads), elapsed)
        assert len(exposure_reads) < len(reads), (len(exposure_reads), len(reads), elapsed)

        dialogs: list[str] = []

        async def accept(dialog):
            dialogs.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await page.locator("#bulk-action").select_option("halt")
        await page.locator("#bulk-by").select_option("signal")
        await page.locator("#bulk-target").fill(signal)
        await page.locator("#bulk-reason").fill("bad signal")
        await page.locator("#bulk-trading-submit").click()
        result = page.locator("#bulk-result")
        await expect(result).to_contain_text(f"#{trading.account_id}")
        await expect(result).to_contain_text("halted")
        assert len(dialogs) == 1 and f"#{trading.account_id}" in dialogs[0] and signal in dialogs[0], dialogs
        assert f"#{halted.account_id}" not in dialogs[0]
        assert not await _trading_allowed(trading)
        await expect(page.locator('#platform-counts [data-status="halted"]')).to_have_attribute(
            "data-count", "2"
        )

        await page.screenshot(path=SCREENSHOT, full_page=True)
        await rows.nth(0).click()
        await expect(page.locator("#account-meta")).to_contain_text(f"#{halted.account_id}")
        await expect(page.locator("#platform")).to_be_hidden()
        assert problems == [], problems
    finally:
        await context.close()


async def test_each_row_draws_its_drawdowns_of_the_last_hour_read_once_per_bucket(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    dipped = await register_follower(served.api)
    now = datetime.now(UTC)
    peak = Decimal("10000")
    # 16.5 % deep 30 minutes ago (the warning band), 4 % five minutes ago.
    await store_snapshots(
        served.api,
        dipped.account_id,
        [
            (now - timedelta(minutes=30), Decimal("8350"), peak),
            (now - timedelta(minutes=5), Decimal("9600"), peak),
        ],
    )
    quiet = await register_follower(served.api)
    operator = await sign_up(served.api, role="owner")

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, problems = await _signed_in(context, served, operator.email)
        reads: list[str] = []
        page.on(
            "request", lambda request: reads.append(request.url) if DRAWDOWNS_READ in request.url else None
        )
        await page.get_by_role("link", name="Platform").click()
        line = page.locator(f'#platform-accounts tr[data-account-id="{dipped.account_id}"] svg.sparkline')
        await expect(line).to_have_attribute("aria-label", "Deepest drawdown in the last hour: 16.50 %")
        await expect(line).to_have_class("sparkline level-warning")
        assert await line.locator("title").text_content() == "Deepest drawdown in the last hour: 16.50 %"
        points = (await line.locator("polyline").get_attribute("points")).split()
        assert len(points) == 2
        depths = [float(point.split(",")[1]) for point in points]
        assert depths[0] > depths[1]  # the deeper point is drawn lower
        quiet_row = page.locator(f'#platform-accounts tr[data-account-id="{quiet.account_id}"]')
        await expect(quiet_row).to_contain_text("no snapshots")
        assert await quiet_row.locator("svg.sparkline").count() == 0
        assert len(reads) == 1 and reads[0].count("account_id=") == 2, reads

        # A snapshot refreshes the list through the stream; the sparklines are not read again.
        list_reads: list[str] = []
        page.on(
            "request",
            lambda request: list_reads.append(request.url) if PLATFORM_READ in request.url else None,
        )
        assert (await quiet.bridge.send_snapshot(snapshot(equity="9990")))["applied"]
        await expect(quiet_row).to_contain_text("$9,990.00")
        await page.wait_for_timeout(1500)
        assert list_reads and len(reads) == 1, (list_reads, reads)
        assert problems == [], problems
    finally:
        await context.close()


async def test_closing_a_symbol_of_one_signal_says_so_and_closes_only_its_positions(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    signal = f"SIG-{uuid.uuid4().hex[:6]}"
    copying = await register_follower(served.api)
    await copying.expect("t-1", signal_id=signal, volume="1.00")
    assert (await copying.bridge.send_snapshot(snapshot(position("7001", volume="1.00"))))["applied"]
    by_hand = await register_follower(served.api)
    assert (await by_hand.bridge.send_snapshot(snapshot(position("7002", volume="0.30"))))["applied"]
    operator = await sign_up(served.api, role="owner")

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, problems = await _signed_in(context, served, operator.email)
        await page.get_by_role("link", name="Platform").click()
        await expect(page.locator('#exposure tr[data-symbol="EURUSD"]')).to_contain_text("1.30")
        dialogs: list[str] = []
        bodies: list[dict] = []

        async def accept(dialog):
            dialogs.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        page.on(
            "request",
            lambda request: bodies.append(request.post_data_json) if "close-symbol" in request.url else None,
        )
        await page.locator("#bulk-symbol").fill("EURUSD")
        await page.get_by_role("textbox", name="Only of signal").fill(signal)
        await page.locator("#bulk-close-submit").click()
        result = page.locator("#bulk-result")
        await expect(result).to_contain_text(
            f"Close EURUSD of signal {signal}: 1 command(s) issued on 1 account(s)"
        )
        await expect(result).to_contain_text(f"#{copying.account_id}): 1 issued")
        assert dialogs == [
            f"Send a close command for every open EURUSD position of signal {signal} on the platform: "
            "1 position(s) on 1 account(s)?"
        ], dialogs
        assert bodies == [{"symbol": "EURUSD", "signal": signal}], bodies
        assert f"#{by_hand.account_id}" not in await result.text_content()
        assert problems == [], problems
    finally:
        await context.close()


async def test_a_follower_sees_no_platform_link_and_nothing_platform_wide(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await register_follower(served.api)
    other = await register_follower(served.api)
    assert (await other.bridge.send_snapshot(snapshot(position("6001"))))["applied"]

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, _ = await _signed_in(context, served, follower.owner.email, path="/#platform")
        await expect(page.locator("#user-email")).to_have_text(follower.owner.email)
        await expect(page.locator("#platform-unavailable")).to_be_visible()  # the API answered 404
        await expect(page.get_by_role("link", name="Platform")).to_have_count(0)
        assert await page.locator("#platform-body").is_hidden()
        assert await page.locator("#platform-accounts tbody tr").count() == 0
        assert await page.locator("#platform-counts > *").count() == 0
        assert await page.locator("#exposure tbody tr").count() == 0
    finally:
        await context.close()


async def _seed_many(api: Api, count: int) -> list[int]:
    """`count` accounts of one follower, straight into the database as bench/seed.py does; every tenth halted."""
    owner = await sign_up(api)
    config = GuardConfig().model_dump()
    rows = [
        {
            "owner_id": owner.user_id,
            "name": f"Bulk {index:04d}",
            "broker": "Many",
            "login": None,
            "currency": "USD",
            "created_at": NOW,
            **config,
        }
        for index in range(count)
    ]
    async with api.session() as session:
        ids = list(
            (
                await session.execute(
                    insert(Account).returning(Account.id, sort_by_parameter_order=True), rows
                )
            ).scalars()
        )
        states = []
        for index, account_id in enumerate(ids):
            state = initial_state(account_id)
            if index % 10 == 0:
                state.trading_allowed = False
                state.halted_at = NOW
            states.append(
                {column.key: getattr(state, column.key) for column in AccountState.__table__.columns}
            )
        await session.execute(insert(AccountState), states)
        await session.commit()
    await invalidate_accounts(api.services.cache, dict.fromkeys(ids, owner.user_id))
    return ids


async def test_a_platform_of_a_thousand_accounts_shows_its_first_page(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    await _seed_many(served.api, MANY)
    operator = await sign_up(served.api, role="admin")

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url) if API in request.url else None)
        page, problems = await _signed_in(context, served, operator.email)
        await expect(page.locator("#user-email")).to_have_text(operator.email)
        # Every card filled, from the platform's pages: a tenth of the accounts halted.
        cards = page.locator("#accounts .account-card")
        await expect(cards).to_have_count(MANY)
        await expect(page.locator('#accounts [data-status="unknown"]')).to_have_count(0)
        await expect(page.locator('#accounts [data-status="critical"]')).to_have_count(MANY // 10)
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
        await page.wait_for_timeout(1500)  # the reads the stream's hello starts, and any still due
        summaries = [url for url in requests if "/reconciliation/status" in url or "/guards/status" in url]
        selected = await page.locator('#accounts [aria-current="true"]').get_attribute("data-account-id")
        assert {url.split("account_id=")[1] for url in summaries} == {selected}, summaries
        # Sign-in, the account list and the platform's pages (twice: once more on the stream's hello),
        # the selected account's detail (twice), the stream: not two reads per account.
        assert len(requests) <= SIGN_IN_REQUESTS, (len(requests), requests)
        print(f"\nan operator of {MANY} accounts signed in with {len(requests)} API requests")
        started = time.perf_counter()
        await page.get_by_role("link", name="Platform").click()
        rows = page.locator("#platform-accounts tbody tr")
        await expect(rows).to_have_count(50)
        await expect(page.locator("#platform-total")).to_have_text(str(MANY))
        shown = time.perf_counter() - started
        print(f"\nplatform page of {MANY} accounts: first page shown {shown * 1000:.0f} ms after the click")
        await expect(rows.first).to_have_attribute("data-status", "halted")
        await expect(page.locator('#platform-counts [data-status="halted"]')).to_have_attribute(
            "data-count", "100"
        )
        await expect(page.locator("#platform-range")).to_have_text(f"1–50 of {MANY}")
        await page.locator("#platform-next").click()
        await expect(page.locator("#platform-range")).to_have_text(f"51–100 of {MANY}")
        await page.locator("#platform-prev").click()
        await expect(page.locator("#platform-range")).to_have_text(f"1–50 of {MANY}")
        assert problems == [], problems
    finally:
        await context.close()
