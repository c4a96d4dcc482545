"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, over real HTTP.

Sign in, see a seeded account, ingest a snapshot through the API and watch the page change without a
reload; screenshots (desktop and phone-sized) are kept in test-artifacts/ for people to look at.

Chromium comes from Debian (`apt-get install chromium`), never from `playwright install`. Without it
the test is skipped with a reason, except under CI=true, where its absence fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.support.apps import Api, make_settings
from tests.support.bridging import Follower, position, register_follower, snapshot
from tests.support.builders import PASSWORD, store_snapshots
from tests.support.net import SHORT_KEEPALIVE, free_port, wait_for_port
from tests.support.paths import REPO_ROOT
from tests.support.waiting import eventually
from tradeguard.app import create_app

ARTIFACTS = REPO_ROOT / "test-artifacts"
TIMEOUT_MS = 15_000  # a guard against hanging, not a performance claim: the page shows changes in ~0.3 s

# An account that climbed to a peak of 10,400 and then lost into the drawdown guard's warning band.
HISTORY = [10000, 10120, 10250, 10180, 10400, 10310, 10150, 9800, 9620, 9400, 9150, 8980, 8820]
BALANCE = 10000


@dataclass
class Served:
    url: str
    api: Api


@contextlib.asynccontextmanager
async def serving(settings, port: int) -> AsyncIterator[object]:
    """The whole service on a real port (uvicorn in this event loop); yields the app."""
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_for_port(port)
        while not server.started:
            assert not task.done(), "the server stopped while starting"
            await asyncio.sleep(0.02)
        yield app
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


def _sqlite_settings(data: Path):
    return make_settings(data, f"sqlite+aiosqlite:///{data / 'tradeguard.db'}")


@pytest.fixture(scope="module")
async def served(tmp_path_factory) -> AsyncIterator[Served]:
    """The service on a SQLite file of its own, and an HTTP client that talks to it over the network."""
    port = free_port()
    async with serving(_sqlite_settings(tmp_path_factory.mktemp("dashboard")), port) as app:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10, limits=SHORT_KEEPALIVE) as http:
            yield Served(url, Api(app=app, http=http))


def _minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


async def _seed(api: Api) -> Follower:
    """A follower whose bridge has reported for the past hour: one matched trade, one manual trade."""
    follower = await register_follower(api)
    opened = _minutes_ago(70).isoformat()
    await follower.expect("signal-42", ticket="5001", volume="1.00", opened_at=opened)
    for index, equity in enumerate(HISTORY):
        profit = equity - BALANCE
        positions = [
            position(
                "5001",
                volume="1.00",
                current_price=f"{1.085 + profit / 100_000:.5f}",
                profit=f"{profit - 25}",
                opened_at=opened,
            ),
            position(
                "5002",
                symbol="GBPUSD",
                side="sell",
                volume="0.20",
                open_price="1.26400",
                current_price="1.26275",
                profit="25.00",
                opened_at=opened,
            ),
        ]
        quotes = [
            {"symbol": "EURUSD", "bid": "1.08600", "ask": "1.08610"},
            {"symbol": "GBPUSD", "bid": "1.26270", "ask": "1.26280"},
        ]
        body = snapshot(
            *positions,
            # Ten seconds clear of the 15 min and 1 h range edges: the page dates its window by the
            # server's Date header, whole seconds that a busy server sends late.
            taken_at=_minutes_ago(60 - 5 * index + 1 / 6),
            balance=str(BALANCE),
            equity=str(equity),
            quotes=quotes,
        )
        summary = await follower.bridge.send_snapshot(body)
        assert summary["applied"], summary
    return follower


def _note_console(message, problems: list[str], ignore_urls: tuple[str, ...]) -> None:
    if message.type not in ("error", "warning"):
        return
    if any(part in message.location.get("url", "") for part in ignore_urls):
        return
    problems.append(f"console {message.type}: {message.text}")


async def _signed_in_page(context, served: Served, follower: Follower, ignore_urls: tuple[str, ...] = ()):
    page = await context.new_page()
    problems: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: _note_console(message, problems, ignore_urls))
    page.on(
        "request",
        lambda request: None if request.url.startswith(served.url + "/") else foreign.append(request.url),
    )
    await page.goto(served.url + "/")
    await page.get_by_label("Email").fill(follower.owner.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    return page, problems, foreign


async def test_sign_in_see_the_account_and_watch_a_snapshot_arrive(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await _seed(served.api)
    syncs_before = (await follower.status())["total_syncs"]
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)

        card = page.locator(f'[data-account-id="{follower.account_id}"]')
        await expect(card).to_be_visible()
        await expect(card).to_contain_text("Follower")
        await expect(card).to_have_attribute("data-status", "warning")
        await expect(page.locator("#stat-syncs")).to_have_text(str(syncs_before))
        await expect(page.locator('#positions tr[data-ticket="5001"]')).to_contain_text("matched")
        await expect(page.locator('#positions tr[data-ticket="5002"]')).to_contain_text("unexpected")
        await expect(page.locator("#chart svg .threshold.critical").first).to_be_attached()
        await expect(page.locator("#drawdown-gauge svg")).to_contain_text("warning")
        await expect(page.locator("#events .feed-item").first).to_be_visible()
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")

        # The same document from here on: a reload would lose this marker and fire a navigation.
        await page.evaluate("window.__still_the_same_page = true")
        navigations = []
        page.on(
            "framenavigated",
            lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
        )

        live = snapshot(
            position(
                "5001",
                volume="1.00",
                current_price="1.07310",
                profit="-1215.00",
                opened_at=_minutes_ago(70).isoformat(),
            ),
            position(
                "5002",
                symbol="GBPUSD",
                side="sell",
                volume="0.20",
                open_price="1.26400",
                current_price="1.26650",
                profit="-50.00",
                opened_at=_minutes_ago(70).isoformat(),
            ),
            position(
                "7001",
                symbol="XAUUSD",
                side="buy",
                volume="0.20",
                open_price="2650.00",
                current_price="2657.50",
                profit="150.00",
            ),
            balance=str(BALANCE),
            equity="8885",
            quotes=[
                {"symbol": "EURUSD", "bid": "1.07310", "ask": "1.07320"},
                {"symbol": "GBPUSD", "bid": "1.26200", "ask": "1.27000"},
                {"symbol": "XAUUSD", "bid": "2657.50", "ask": "2657.90"},
            ],
        )
        summary = await follower.bridge.send_snapshot(live)
        assert summary["applied"], summary

        new_row = page.locator('#positions tr[data-ticket="7001"]')
        await expect(new_row).to_be_visible()
        await expect(new_row).to_contain_text("XAUUSD")
        await expect(new_row).to_contain_text("unexpected")
        await expect(page.locator("#stat-syncs")).to_have_text(str(syncs_before + 1))
        await expect(card).to_contain_text(f"{syncs_before + 1} syncs")
        await expect(card).to_contain_text("$8,885.00")
        await expect(page.locator("#stat-equity")).to_have_text("$8,885.00")
        await expect(page.locator('#market-guards [data-symbol="GBPUSD"]')).to_be_visible()
        # The spread alert arrives once, in the alerts and as the audit entry it also is.
        gbpusd_alert = page.locator("#alerts .feed-item", has_text="GBPUSD market warning")
        await expect(gbpusd_alert).to_have_count(1)
        await expect(page.locator('#events [data-event-type="alert"]', has_text="GBPUSD")).to_have_count(1)
        await expect(page.locator('#events [data-event-type="divergence"]').first).to_contain_text("7001")
        # The chart's points are buckets: the live snapshot may share one with the last seeded snapshot.
        await expect(page.locator("#chart")).to_have_attribute("data-snapshots", str(len(HISTORY) + 1))

        assert await page.evaluate("window.__still_the_same_page") is True
        assert navigations == []

        ARTIFACTS.mkdir(exist_ok=True)
        await page.mouse.move(0, 0)
        await page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


async def test_a_feeds_answer_older_than_the_stream_keeps_what_the_stream_brought(served, browser):
    """Selecting an account reads its feeds. Here that answer leaves the server before a snapshot and
    reaches the page after the stream brought the snapshot's alert: the alert stays, in the alerts and
    in the events, whichever arrives first."""
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await register_follower(served.api)
    other_account = await follower.owner.new_account("Other")
    held = position("5002", symbol="GBPUSD", side="sell", open_price="1.26400", current_price="1.26275")
    calm = [{"symbol": "GBPUSD", "bid": "1.26270", "ask": "1.26280"}]
    assert (await follower.bridge.send_snapshot(snapshot(held, quotes=calm)))["applied"]

    holding = False
    snapshot_sent = False
    stale_answer_fetched = asyncio.Event()
    release_stale_answer = asyncio.Event()
    stale_answer_shown = asyncio.Event()

    async def hold_the_alerts_answer(route):
        if not holding or f"account_id={follower.account_id}&" not in route.request.url:
            await route.continue_()
            return
        answer = await route.fetch()
        stale_answer_fetched.set()
        await release_stale_answer.wait()
        await route.fulfill(response=answer)

    async def hold_newer_reads_until_the_stale_answer_is_shown(route):
        # Else the refresh the snapshot starts could land first, and the page would drop the older answer.
        if snapshot_sent:
            await stale_answer_shown.wait()
        await route.continue_()

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    await context.route("**/api/v1/alerts?*", hold_the_alerts_answer)
    await context.route("**/api/v1/positions/open?*", hold_newer_reads_until_the_stale_answer_is_shown)
    try:
        page, problems, _ = await _signed_in_page(context, served, follower)
        await expect(page.locator('#positions tr[data-ticket="5002"]')).to_be_visible()
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
        await page.locator(f'[data-account-id="{other_account}"]').click()
        await expect(page.locator("#account-name")).to_have_text("Other")
        holding = True
        await page.locator(f'[data-account-id="{follower.account_id}"]').click()
        await asyncio.wait_for(stale_answer_fetched.wait(), TIMEOUT_MS / 1000)

        snapshot_sent = True
        wide = [{"symbol": "GBPUSD", "bid": "1.26200", "ask": "1.27000"}]
        assert (await follower.bridge.send_snapshot(snapshot(held, quotes=wide)))["applied"]
        gbpusd_alert = page.locator("#alerts .feed-item", has_text="GBPUSD market warning")
        alert_entry = page.locator('#events [data-event-type="alert"]', has_text="GBPUSD")
        await expect(gbpusd_alert).to_have_count(1)
        await expect(alert_entry).to_have_count(1)

        await page.evaluate(
            """() => {
                window.__feedRenders = 0;
                new MutationObserver(() => { window.__feedRenders += 1; })
                    .observe(document.getElementById('alerts'), { childList: true });
            }"""
        )
        release_stale_answer.set()
        await page.wait_for_function("() => window.__feedRenders > 0", timeout=TIMEOUT_MS)
        stale_answer_shown.set()

        await expect(page.locator('#positions tr[data-ticket="5002"]')).to_be_visible()
        await expect(gbpusd_alert).to_have_count(1)
        await expect(alert_entry).to_have_count(1)
        assert problems == [], problems
    finally:
        release_stale_answer.set()
        stale_answer_shown.set()
        await context.close()


async def _labels_apart(page) -> dict[str, int]:
    """How many time and level labels the chart shows, after checking that no two of a kind overlap
    and that every one lies inside the chart."""
    boxes = await page.evaluate(
        """() => {
            const chart = document.querySelector('#chart svg').getBoundingClientRect();
            const boxes = (selector) => [...document.querySelectorAll(`#chart svg ${selector}`)].map((element) => {
                const box = element.getBoundingClientRect();
                return [box.left, box.top, box.right, box.bottom];
            });
            return { chart: [chart.left, chart.top, chart.right, chart.bottom],
                     time: boxes('.time-label'), level: boxes('.threshold-label') };
        }"""
    )
    left, top, right, bottom = boxes["chart"]
    for kind in ("time", "level"):
        labels = boxes[kind]
        for index, (a_left, a_top, a_right, a_bottom) in enumerate(labels):
            assert left <= a_left and a_right <= right and top <= a_top and a_bottom <= bottom, (kind, labels)
            for b_left, b_top, b_right, b_bottom in labels[index + 1 :]:
                apart = a_right <= b_left or b_right <= a_left or a_bottom <= b_top or b_bottom <= a_top
                assert apart, f"{kind} labels overlap: {labels}"
    return {kind: len(boxes[kind]) for kind in ("time", "level")}


async def test_the_chart_ranges_zoom_and_far_off_snapshots_keep_its_axes_readable(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await _seed(served.api)
    # History from before this bridge, with a 90 % loss three years ago, and one snapshot dated 2099.
    long_ago = datetime.now(UTC) - timedelta(days=3 * 365)
    far_ahead = datetime(2099, 1, 1, tzinfo=UTC)
    await store_snapshots(
        served.api,
        follower.account_id,
        [(long_ago, Decimal("1000"), Decimal("10000")), (far_ahead, Decimal("9000"), Decimal("10400"))],
    )
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)
        chart = page.locator("#chart")
        ranges = page.get_by_role("group", name="Time range")

        # All: three years and an hour, in buckets of days (the last hour in one or two), the 90 %
        # drawdown among them; 2099 is named, not drawn.
        await expect(ranges.get_by_role("button", name="All")).to_have_attribute("aria-pressed", "true")
        await expect(chart).to_have_attribute("data-snapshots", str(len(HISTORY) + 1))
        await expect(chart).to_have_attribute("data-points", re.compile(r"^[23]$"))
        await expect(page.locator("#chart-note")).to_contain_text("in the future")
        shown = await _labels_apart(page)
        assert 3 <= shown["time"] <= 1366 // 40, shown
        assert shown["level"] == 2

        # Snapshots every 5 minutes over the past hour: the last 15 minutes hold 3, the last hour 12.
        for name, points in (("15 min", 3), ("1 h", 12), ("1 day", len(HISTORY))):
            await ranges.get_by_role("button", name=name).click()
            await expect(ranges.get_by_role("button", name=name)).to_have_attribute("aria-pressed", "true")
            await expect(chart).to_have_attribute("data-points", str(points))
            shown = await _labels_apart(page)
            assert shown["time"] >= 3, (name, shown)

        # Dragging across the middle half of the hour zooms into it; a double click goes back.
        await ranges.get_by_role("button", name="1 h").click()
        await expect(chart).to_have_attribute("data-points", "12")
        # Every redraw replaces the svg; one measured as it is replaced has no box yet.
        svg = await eventually(page.locator("#chart svg").bounding_box, "the chart's svg laid out")
        plot_left, plot_width = svg["x"] + 56, svg["width"] - 56 - 12
        y = svg["y"] + 60
        await page.mouse.move(plot_left + plot_width * 0.25, y)
        await page.mouse.down()
        await page.mouse.move(plot_left + plot_width * 0.75, y, steps=5)
        await page.mouse.up()
        await expect(page.get_by_role("button", name="Reset zoom")).to_be_visible()
        await expect(ranges.get_by_role("button", name="1 h")).to_have_attribute("aria-pressed", "false")
        await expect(chart).to_have_attribute("data-points", re.compile(r"^[5-7]$"))
        await _labels_apart(page)
        await page.mouse.dblclick(plot_left + plot_width * 0.5, y)
        await expect(page.get_by_role("button", name="Reset zoom")).to_be_hidden()
        await expect(chart).to_have_attribute("data-points", "12")

        ARTIFACTS.mkdir(exist_ok=True)
        await ranges.get_by_role("button", name="All").click()
        await expect(chart).to_have_attribute("data-snapshots", str(len(HISTORY) + 1))
        await page.mouse.move(0, 0)
        await page.locator(".panel-chart").screenshot(path=ARTIFACTS / "dashboard-chart-all.png")
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


async def test_the_page_fits_a_phone(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await _seed(served.api)
    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
    )
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)
        await expect(page.locator(f'[data-account-id="{follower.account_id}"]')).to_be_visible()
        await expect(page.locator('#positions tr[data-ticket="5002"]')).to_be_visible()
        await expect(page.locator("#chart svg")).to_be_attached()
        # One column: nothing wider than the screen but the scrollers meant to scroll sideways.
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


async def test_a_wrong_password_is_refused_on_the_page(served, browser):
    from playwright.async_api import expect

    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(served.url + "/")
        await page.get_by_label("Email").fill("nobody@example.com")
        await page.get_by_label("Password").fill("not the password")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.", timeout=TIMEOUT_MS)
        assert await page.evaluate("sessionStorage.length") == 0
    finally:
        await context.close()


async def test_without_the_stream_the_page_polls(served, browser):
    """A server without the stream (404) still gets a page that follows the account, every 5 s."""
    from playwright.async_api import expect

    follower = await _seed(served.api)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")

    async def no_stream(route):
        await route.fulfill(status=404, content_type="application/json", body='{"detail":"Not Found"}')

    await context.route("**/api/v1/stream*", no_stream)
    try:
        page, problems, foreign = await _signed_in_page(
            context, served, follower, ignore_urls=("/api/v1/stream",)
        )
        await expect(page.locator("#connection")).to_have_attribute(
            "data-mode", "polling", timeout=TIMEOUT_MS
        )
        await expect(page.locator('#positions tr[data-ticket="5002"]')).to_be_visible(timeout=TIMEOUT_MS)
        await page.evaluate("window.__still_the_same_page = true")

        opened = _minutes_ago(70).isoformat()
        summary = await follower.bridge.send_snapshot(
            snapshot(
                position("5001", volume="1.00", opened_at=opened),
                position(
                    "8001", symbol="USDJPY", volume="0.30", open_price="151.200", current_price="151.350"
                ),
                balance=str(BALANCE),
                equity="9100",
            )
        )
        assert summary["applied"], summary
        await expect(page.locator('#positions tr[data-ticket="8001"]')).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator('#positions tr[data-ticket="5002"]')).to_have_count(0)
        await expect(page.locator("#stat-equity")).to_have_text("$9,100.00")
        assert await page.evaluate("window.__still_the_same_page") is True
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


async def test_a_halted_account_shows_its_close_commands_and_is_rearmed_from_the_page(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await register_follower(served.api)
    opened = _minutes_ago(10).isoformat()
    await follower.expect("signal-7", ticket="6001", volume="1.00", opened_at=opened)
    held = position("6001", volume="1.00", opened_at=opened)
    assert (await follower.bridge.send_snapshot(snapshot(held, balance="10000", equity="10000")))["applied"]
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)
        card = page.locator(f'[data-account-id="{follower.account_id}"]')
        await expect(card).to_have_attribute("data-status", "healthy")
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")

        # 22 % below the peak: critical, so the account is halted and its position is to be closed.
        losing = position("6001", volume="1.00", current_price="1.06300", profit="-2200.00", opened_at=opened)
        summary = await follower.bridge.send_snapshot(snapshot(losing, balance="10000", equity="7800"))
        [command] = summary["commands"]
        await expect(card).to_have_attribute("data-status", "critical")
        await expect(page.locator("#halted")).to_be_visible()
        await expect(page.locator("#halted")).to_contain_text("Trading halted")
        item = page.locator(f'#commands [data-command-id="{command["command_id"]}"]')
        await expect(item).to_have_attribute("data-state", "sent")
        await expect(item).to_contain_text("#6001")

        await follower.bridge.acknowledge(command["command_id"], "executed", close_price="1.06300")
        await expect(item).to_have_attribute("data-state", "executed")
        gone = snapshot(balance="7800", equity="7800")
        assert (await follower.bridge.send_snapshot(gone))["applied"]
        await expect(item).to_have_attribute("data-state", "closed")
        await expect(page.locator('#positions tr[data-ticket="6001"]')).to_have_count(0)

        async def accept(dialog):
            await dialog.accept()

        page.once("dialog", accept)
        await page.get_by_label("Start a new peak at the current equity").check()
        await page.get_by_role("button", name="Re-arm trading").click()
        await expect(page.locator("#halted")).to_be_hidden()
        await expect(card).not_to_have_attribute("data-status", "critical")
        await expect(card.locator(".trading-chip")).to_be_visible()
        await expect(page.locator('#events [data-event-type="rearmed"]')).to_have_count(1)
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


async def test_the_page_reconnects_and_resumes_after_the_server_restarts(browser, tmp_path):
    """The stream drops with the server; the page says so, reconnects with Last-Event-ID and goes on."""
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    settings = _sqlite_settings(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stream_requests: list[dict[str, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=SHORT_KEEPALIVE) as http:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        try:
            async with serving(settings, port) as app:
                follower = await register_follower(Api(app=app, http=http))
                opened = _minutes_ago(10).isoformat()
                await follower.expect("signal-1", ticket="9001", opened_at=opened)
                page = await context.new_page()
                page.on(
                    "request",
                    lambda request: (
                        stream_requests.append(request.headers) if "/api/v1/stream" in request.url else None
                    ),
                )
                await page.goto(url + "/")
                await page.get_by_label("Email").fill(follower.owner.email)
                await page.get_by_label("Password").fill(PASSWORD)
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
                await follower.bridge.send_snapshot(snapshot(position("9001", opened_at=opened)))
                await expect(page.locator('#positions tr[data-ticket="9001"]')).to_contain_text("matched")
                await expect(page.locator('#events [data-event-type="matched"]')).to_have_count(1)
            await expect(page.locator("#connection")).to_have_attribute("data-mode", "reconnecting")

            async with serving(settings, port):
                await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
                assert stream_requests[0].get("last-event-id") is None
                assert stream_requests[-1].get("last-event-id", "").isdigit(), stream_requests[-1]
                second = position("9002", symbol="USDJPY", open_price="151.200", current_price="151.300")
                await follower.bridge.send_snapshot(snapshot(position("9001", opened_at=opened), second))
                await expect(page.locator('#positions tr[data-ticket="9002"]')).to_be_visible()
                # What was shown before the restart is still there once, not twice.
                await expect(page.locator('#events [data-event-type="matched"]')).to_have_count(1)
        finally:
            await context.close()


async def test_a_close_shows_the_pnl_its_deal_realized_and_a_close_without_one_says_last_floating(
    served, browser
):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await register_follower(served.api)
    gold = position(
        "8001", symbol="XAUUSD", volume="0.02", open_price="2650.00", current_price="2648.31", profit="-3.38"
    )
    euro = position("8002", profit="-5.00")
    assert (await follower.bridge.send_snapshot(snapshot(gold, euro)))["applied"]
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")
        await expect(page.locator('#positions tr[data-ticket="8001"]')).to_be_visible()

        stop = {
            "ticket": "8001",
            "close_price": "2331.43",
            "profit": "-637.14",
            "commission": "-1.60",
            "closed_at": _minutes_ago(0.02).isoformat(),
            "reason": "stop_loss",
        }
        assert (await follower.bridge.send_snapshot(snapshot(closed_deals=[stop])))["applied"]

        closes = page.locator('#events [data-event-type="closed_on_broker"]')
        realized = closes.filter(has_text="#8001").locator('[data-pnl-source="realized"]')
        await expect(realized).to_contain_text("638.74")
        await expect(realized).to_contain_text("realized")
        floating = closes.filter(has_text="#8002").locator('[data-pnl-source="last_floating"]')
        await expect(floating).to_contain_text("5.00")
        await expect(floating).to_contain_text("last floating")
        await expect(closes.filter(has_text="#8001")).to_contain_text("stop loss")
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


def _dollars(value: float) -> str:
    """Money as the page writes it in en-US: $1,234.50, -$12.00."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def _percent(value: float) -> str:
    return f"{value:,.2f} %"


async def _expect_the_apis_standings(page, follower: Follower) -> dict:
    """Every step's headroom on the page reads as the API's, in money and percent; the standings."""
    from playwright.async_api import expect

    answer = (await follower.owner.get(f"/api/v1/accounts/{follower.account_id}/guard-rules")).json()
    for standing in answer["standings"]:
        card = page.locator(f'#rules [data-rule-id="{standing["rule"]}"]')
        for index, step in enumerate(standing["steps"]):
            row = card.locator(f'tr[data-step="{index}"]')
            await expect(row.locator(".headroom-money")).to_have_text(_dollars(step["headroom"]))
            await expect(row.locator(".headroom-pct")).to_have_text(_percent(step["headroom_pct"]))
            await expect(row).to_have_attribute("data-breached", str(step["breached"]).lower())
    return {standing["rule"]: standing for standing in answer["standings"]}


async def test_the_risk_rules_panel_shows_each_rules_headroom_and_follows_the_snapshots(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await register_follower(served.api)
    watch = {
        "id": "floating_watch",
        "label": "floating <b>watch</b>",
        "metric": "floating",
        "shadow": True,
        "steps": [
            {"tier": "alert", "threshold": {"amount": "500"}},
            {"tier": "halt", "threshold": {"amount": "1500"}},
        ],
    }
    body = {"preset": "ftmo-2-step", "initial_balance": "100000", "rules": [watch]}

    async def at_equity(equity: int) -> None:
        held = position("1", profit=f"{equity - 100000}.00")
        sent = await follower.bridge.send_snapshot(snapshot(held, balance="100000", equity=str(equity)))
        assert sent["applied"], sent

    changed = await follower.owner.put(f"/api/v1/accounts/{follower.account_id}/guard-rules", json=body)
    assert changed.status_code == 200, changed.text
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)
        panel = page.locator(".panel-rules")
        rules = panel.locator("#rules .rule")

        # Before the first snapshot: the rules and their thresholds, no headroom.
        await expect(rules).to_have_count(3)
        source = panel.locator("#rules-source")
        await expect(source).to_contain_text("ftmo-2-step preset and 1 rule of its own")
        await expect(source).to_contain_text("$100,000.00")
        await expect(panel.locator("#rules-no-snapshot")).to_be_visible()
        daily = panel.locator('[data-rule-id="daily_loss"]')
        await expect(daily).to_contain_text("daily loss")
        await expect(daily).to_contain_text("per day from 00:00 Europe/Prague")
        await expect(daily).to_contain_text("5.00 % of the initial balance")
        await expect(daily.locator('tr[data-step="0"]')).to_contain_text("no snapshot yet")
        shadowed = panel.locator('[data-rule-id="floating_watch"]')
        # The label is text, never markup.
        await expect(shadowed.locator(".rule-head strong")).to_have_text("floating <b>watch</b>")
        await expect(shadowed.locator(".badge.shadow")).to_have_text("shadow")
        await expect(panel.locator(".badge.shadow")).to_have_count(1)
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")

        await at_equity(99000)
        await expect(panel.locator("#rules-no-snapshot")).to_be_hidden()
        standings = await _expect_the_apis_standings(page, follower)
        assert standings["daily_loss"]["steps"][0]["headroom"] == 4000, standings
        assert standings["floating_watch"]["steps"][0]["breached"] is True, standings
        await expect(daily.locator(".rule-loss")).to_contain_text("Loss $1,000.00 (1.00 %)")
        await expect(daily.locator(".meter-value")).to_have_text(_percent(20))
        await expect(shadowed.locator(".rule-head")).to_contain_text("at alert")
        # The shadow rule's alert is recorded, not acted on: the account trades on.
        decision = page.locator('#events [data-event-type="shadow_decision"]')
        await expect(decision).to_have_count(1)
        await expect(decision).to_contain_text("shadow decision")
        await expect(decision).to_contain_text("in shadow would alert")
        await expect(page.locator("#halted")).to_be_hidden()

        await at_equity(97500)
        await expect(daily.locator('tr[data-step="0"] .headroom-money')).to_have_text(_dollars(2500))
        standings = await _expect_the_apis_standings(page, follower)
        assert standings["floating_watch"]["steps"][1]["breached"] is True, standings
        await expect(daily.locator(".meter-value")).to_have_text(_percent(50))
        await expect(page.locator("#halted")).to_be_hidden()

        ARTIFACTS.mkdir(exist_ok=True)
        await page.mouse.move(0, 0)
        await panel.screenshot(path=ARTIFACTS / "dashboard-rules.png")

        # A change of rules is an audit entry like others: the panel follows it.
        removed = await follower.owner.delete(f"/api/v1/accounts/{follower.account_id}/guard-rules")
        assert removed.status_code == 200, removed.text
        await expect(source).to_have_attribute("data-source", "settings")
        await expect(source).to_contain_text("drawdown settings")
        await expect(rules).to_have_count(len(removed.json()["rules"]))
        await expect(page.locator('#events [data-event-type="guard_rules_changed"]')).to_have_count(2)
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()


async def test_an_automatic_resume_reads_as_one_in_the_events(served, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    follower = await register_follower(served.api)
    cooling = {
        "id": "floating",
        "metric": "floating",
        "steps": [{"tier": "halt", "threshold": {"amount": "400"}}],
        "resume": {"mode": "cool_down", "below": "0.5", "after_seconds": 0},
    }
    changed = await follower.owner.put(
        f"/api/v1/accounts/{follower.account_id}/guard-rules", json={"rules": [cooling]}
    )
    assert changed.status_code == 200, changed.text
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page, problems, foreign = await _signed_in_page(context, served, follower)
        await expect(page.locator("#rules-source")).to_contain_text("rules set for it")
        await expect(page.locator("#connection")).to_have_attribute("data-mode", "live")

        assert (await follower.bridge.send_snapshot(snapshot(position("1"), equity="9500")))["applied"]
        await expect(page.locator("#halted")).to_be_visible()
        await expect(page.locator('#rules [data-rule-id="floating"] tr[data-step="0"]')).to_have_attribute(
            "data-breached", "true"
        )
        assert (await follower.bridge.send_snapshot(snapshot(position("1"), equity="9850")))["applied"]

        await expect(page.locator("#halted")).to_be_hidden()
        resumed = page.locator('#events [data-event-type="rearmed"]')
        await expect(resumed).to_have_count(1)
        await expect(resumed.locator(".badge", has_text="automatic")).to_be_visible()
        await expect(resumed).to_contain_text("rules floating resumed")
        assert problems == [], problems
        assert foreign == [], f"requests to other origins: {foreign}"
    finally:
        await context.close()
