"""The operator's platform view: every account, ranked by what needs attention, in two statements.

What makes an account need attention is said once, in `ATTENTION`, as SQL: the same conditions
rank and filter the page, count the statuses, and feed the business metrics, so that the page,
its counts and `/metrics` can never disagree. An account's status is the first condition it meets;
its reasons are all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, Select, case, cast, exists, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from tradeguard.domain.commands import CommandState
from tradeguard.queries.guards import market_level_of
from tradeguard.queries.read_models import PlatformAccount, PlatformAccountPage
from tradeguard.store.models import Account, AccountState, CloseCommand, ExpectedTrade

_OUTSTANDING = (CommandState.PENDING.value, CommandState.SENT.value)
_FAILED = CommandState.FAILED.value

# One row per account that has a live or failed command: the table's history stays out of the join.
_commands = (
    select(
        CloseCommand.account_id,
        func.sum(case((CloseCommand.state.in_(_OUTSTANDING), 1), else_=0)).label("outstanding"),
        func.sum(case((CloseCommand.state == _FAILED, 1), else_=0)).label("failed"),
    )
    .where(CloseCommand.state.in_((*_OUTSTANDING, _FAILED)))
    .group_by(CloseCommand.account_id)
    .subquery("commands")
)
OUTSTANDING_COMMANDS = func.coalesce(_commands.c.outstanding, 0)
FAILED_COMMANDS = func.coalesce(_commands.c.failed, 0)

ATTENTION: tuple[tuple[str, ColumnElement[bool]], ...] = (
    ("halted", not_(AccountState.trading_allowed)),
    ("critical", AccountState.drawdown_level == "critical"),
    ("stale_feed", AccountState.feed_stale),
    ("divergent", AccountState.divergences_detected > 0),
    ("commands_outstanding", OUTSTANDING_COMMANDS > 0),
    ("commands_failed", FAILED_COMMANDS > 0),
    ("warning", AccountState.drawdown_level == "warning"),
)
"""What needs attention, most urgent first; an account meeting none is `ok`."""
STATUSES: tuple[str, ...] = (*(name for name, _ in ATTENTION), "ok")

_rank = case(*((condition, rank) for rank, (_, condition) in enumerate(ATTENTION)), else_=len(ATTENTION))
# Stored as text on SQLite: compared as a number on both databases.
_DRAWDOWN = func.coalesce(cast(AccountState.drawdown_pct, Float), 0.0)


@dataclass(frozen=True)
class PlatformFilters:
    status: str | None = None
    broker: str | None = None
    signal: str | None = None
    owner_id: int | None = None


def _states(columns: list, filters: PlatformFilters) -> Select:
    """Every account's state with its commands, narrowed by every filter but the status.

    The accounts' table joins only when a filter needs it: whatever ranks or counts an account is
    in its state and its commands, and a scan of the states alone is the cheaper one.
    """
    query = (
        select(*columns)
        .select_from(AccountState)
        .outerjoin(_commands, _commands.c.account_id == AccountState.account_id)
    )
    if filters.broker is not None or filters.owner_id is not None:
        query = query.join(Account, Account.id == AccountState.account_id)
    if filters.broker is not None:
        query = query.where(Account.broker == filters.broker)
    if filters.owner_id is not None:
        query = query.where(Account.owner_id == filters.owner_id)
    if filters.signal is not None:
        holds_signal = exists().where(
            ExpectedTrade.account_id == AccountState.account_id,
            ExpectedTrade.signal_id == filters.signal,
            ExpectedTrade.status == "open",
        )
        query = query.where(holds_signal)
    return query


async def status_counts(session: AsyncSession, filters: PlatformFilters) -> dict[str, int]:
    """Accounts per status over every account the filters other than `status` select."""
    # Grouped outside: PostgreSQL would not take the CASE's parameters as the same expression twice.
    ranks = _states([_rank.label("rank")], filters).subquery("ranks")
    rows = await session.execute(select(ranks.c.rank, func.count()).group_by(ranks.c.rank))
    counts = dict.fromkeys(STATUSES, 0)
    for rank_value, count in rows:
        counts[STATUSES[rank_value]] = count
    return counts


async def platform_accounts_page(
    session: AsyncSession, filters: PlatformFilters, *, limit: int, offset: int
) -> PlatformAccountPage:
    # The page is ranked on narrow rows; only its own accounts are then read whole, since sorting
    # every account's full row costs several times more at thousands of accounts.
    ranked = _states(
        [AccountState.account_id.label("id"), _rank.label("rank"), _DRAWDOWN.label("drawdown")], filters
    )
    if filters.status is not None:
        ranked = ranked.where(_rank == STATUSES.index(filters.status))
    # One row past the page says whether there is another.
    ranked = ranked.order_by(_rank, _DRAWDOWN.desc(), AccountState.account_id)
    page = ranked.offset(offset).limit(limit + 1).subquery("page")
    columns = [
        Account,
        AccountState,
        page.c.rank,
        OUTSTANDING_COMMANDS.label("outstanding"),
        FAILED_COMMANDS.label("failed"),
        *(condition.label(name) for name, condition in ATTENTION),
    ]
    query = (
        select(*columns)
        .select_from(page)
        .join(Account, Account.id == page.c.id)
        .join(AccountState, AccountState.account_id == page.c.id)
        .outerjoin(_commands, _commands.c.account_id == page.c.id)
        .order_by(page.c.rank, page.c.drawdown.desc(), page.c.id)
    )
    rows = (await session.execute(query)).all()
    accounts = [_row_out(row) for row in rows[:limit]]
    counts = await status_counts(session, filters)
    return PlatformAccountPage(
        accounts=accounts,
        counts=counts,
        total=counts[filters.status] if filters.status is not None else sum(counts.values()),
        next_cursor=offset + limit if len(rows) > limit else None,
    )


def _row_out(row) -> PlatformAccount:
    account: Account = row.Account
    state: AccountState = row.AccountState
    return PlatformAccount(
        account_id=account.id,
        name=account.name,
        owner_id=account.owner_id,
        broker=account.broker,
        login=account.login,
        currency=account.currency,
        status=STATUSES[row.rank],
        attention=[name for name, _ in ATTENTION if getattr(row, name)],
        trading_allowed=state.trading_allowed,
        halted_at=state.halted_at,
        halt_reason=state.halt_reason,
        drawdown_level=state.drawdown_level,
        market_level=market_level_of(state),
        drawdown_pct=state.drawdown_pct,
        equity=state.equity,
        balance=state.balance,
        last_sync_at=state.last_sync_at,
        sync_status=state.status,
        total_syncs=state.total_syncs,
        feed_stale=state.feed_stale,
        open_positions=state.open_positions_count,
        open_divergences=state.divergences_detected,
        outstanding_commands=row.outstanding,
        failed_commands=row.failed,
    )
