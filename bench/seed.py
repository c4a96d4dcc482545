"""Seeding many users, accounts and bridge devices at once, straight into the database.

Signing up N users through the API costs N argon2 hashes and N round trips; the benchmarks need
thousands, so users share one precomputed hash and rows go in with bulk INSERTs through the same
models and defaults the service layer uses (`GuardConfig`, `initial_state`, `DeviceSecrets`, the
expected trades' canonical digest). Tokens are issued with the server's JWT secret, exactly as
`POST /api/v1/auth/token` would. Accounts start with expected trades and no broker positions: the
first snapshot of each (the "priming" ingest) creates them.

    .venv/bin/python -m bench seed --users 5000 --accounts-per-user 2      # 10,000 accounts
    .venv/bin/python -m bench seed --drop                                  # drop the database

Writes bench/results/seed.json (tokens and device secrets for the load generators; git-ignored).
The database (default tradeguard_bench on 127.0.0.1) is created and migrated when missing;
--recreate starts from an empty one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tradeguard.accounts.guard_config import GuardConfig
from tradeguard.accounts.service import initial_state
from tradeguard.auth.passwords import hash_password
from tradeguard.auth.tokens import Principal, issue_token
from tradeguard.ingest.devices import DeviceSecrets
from tradeguard.ingest.trade_body import TradeIn
from tradeguard.ingest.trades import _body_digest, _canonical_fields
from tradeguard.store import migrate
from tradeguard.store.models import Account, AccountState, Device, ExpectedTrade, User
from tradeguard.values import ServerClock

PASSWORD = "bench-password-not-secret"
BATCH = 2_000

# One position per symbol, so matching by symbol, side and open time (no ticket) pairs them one to one.
INSTRUMENTS = (
    ("EURUSD", "1.08500", "0.00010"),
    ("GBPUSD", "1.27000", "0.00012"),
    ("USDJPY", "150.000", "0.010"),
    ("XAUUSD", "2000.00", "0.30"),
    ("AUDUSD", "0.66000", "0.00010"),
    ("USDCAD", "1.35000", "0.00015"),
    ("USDCHF", "0.88000", "0.00012"),
    ("NZDUSD", "0.61000", "0.00012"),
    ("EURJPY", "162.000", "0.015"),
    ("GBPJPY", "190.000", "0.020"),
)


@dataclass(frozen=True, slots=True)
class SeededPosition:
    ticket: str
    symbol: str
    side: str
    volume: str
    open_price: str
    spread: str
    opened_at: str


@dataclass(frozen=True, slots=True)
class SeededAccount:
    account_id: int
    owner_id: int
    device_id: str
    secret: str
    positions: tuple[SeededPosition, ...]


@dataclass(frozen=True, slots=True)
class SeededUser:
    user_id: int
    email: str
    token: str
    accounts: tuple[int, ...]


@dataclass
class Seed:
    """What the load generators read: callers with tokens, accounts with device credentials.

    It also carries the server settings the tokens and device secrets were made for (benchmark
    secrets only), so a later run starts the server the seed fits.
    """

    label: str
    database_url: str
    redis_url: str
    jwt_secret: str
    secret_key: str
    created_at: str
    opened_at: str
    password: str
    positions_per_account: int
    users: list[SeededUser] = field(default_factory=list)
    accounts: list[SeededAccount] = field(default_factory=list)
    operators: list[SeededUser] = field(default_factory=list)
    """Users of role `owner`, with no accounts of their own: the platform's operators."""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {name: getattr(self, name) for name in _SCALARS}
        payload["users"] = [asdict(user) for user in self.users]
        payload["operators"] = [asdict(user) for user in self.operators]
        payload["accounts"] = [
            {"account_id": a.account_id, "owner_id": a.owner_id, "device_id": a.device_id, "secret": a.secret}
            for a in self.accounts
        ]
        path.write_text(json.dumps(payload))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> Seed:
        payload = json.loads(Path(path).read_text())
        seed = cls(**{name: payload[name] for name in _SCALARS})
        opened_at = datetime.fromisoformat(seed.opened_at)
        seed.users = [
            SeededUser(**{**user, "accounts": tuple(user["accounts"])}) for user in payload["users"]
        ]
        # Seeds written before operators were seeded have none.
        seed.operators = [SeededUser(**{**user, "accounts": ()}) for user in payload.get("operators", ())]
        seed.accounts = [
            SeededAccount(
                **account,
                positions=position_specs(account["account_id"], seed.positions_per_account, opened_at),
            )
            for account in payload["accounts"]
        ]
        return seed

    def account(self, account_id: int) -> SeededAccount:
        index = self.__dict__.get("_by_id")
        if index is None or len(index) != len(self.accounts):
            index = {account.account_id: account for account in self.accounts}
            self.__dict__["_by_id"] = index
        return index[account_id]

    def extend(self, other: Seed) -> None:
        self.users += other.users
        self.accounts += other.accounts
        self.operators += other.operators

    def server_env(self) -> dict[str, str]:
        """The settings of a production-mode server for this seed (no in-API worker, no migration)."""
        return {
            "TRADEGUARD_DATABASE_URL": self.database_url,
            "TRADEGUARD_REDIS_URL": self.redis_url,
            "TRADEGUARD_JWT_SECRET": self.jwt_secret,
            "TRADEGUARD_SECRET_KEY": self.secret_key,
            "TRADEGUARD_RUN_WORKER_IN_API": "false",
            "TRADEGUARD_AUTO_MIGRATE": "false",
            "TRADEGUARD_LOG_LEVEL": "WARNING",
        }


_SCALARS = (
    "label",
    "database_url",
    "redis_url",
    "jwt_secret",
    "secret_key",
    "created_at",
    "opened_at",
    "password",
    "positions_per_account",
)


def position_specs(account_id: int, count: int, opened_at: datetime) -> tuple[SeededPosition, ...]:
    specs = []
    for index in range(count):
        symbol, price, spread = INSTRUMENTS[index % len(INSTRUMENTS)]
        # Beyond one position per symbol, alternate sides and step the volume so pairs stay unambiguous.
        lap = index // len(INSTRUMENTS)
        specs.append(
            SeededPosition(
                ticket=str(account_id * 1000 + index),
                symbol=symbol,
                side="buy" if (index + lap) % 2 == 0 else "sell",
                volume=str(Decimal("0.10") + Decimal("0.01") * lap),
                open_price=price,
                spread=spread,
                opened_at=(opened_at + timedelta(seconds=1)).isoformat(),
            )
        )
    return tuple(specs)


def _rows(model, objects) -> list[dict]:
    columns = [column.key for column in model.__table__.columns]
    return [{name: getattr(obj, name) for name in columns} for obj in objects]


async def _insert_returning_ids(connection, model, rows: list[dict]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        result = await connection.execute(
            insert(model).returning(model.id, sort_by_parameter_order=True), chunk
        )
        ids.extend(result.scalars().all())
    return ids


async def _insert(connection, model, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        await connection.execute(insert(model), rows[start : start + BATCH])


async def seed_database(
    engine: AsyncEngine,
    *,
    users: int,
    accounts_per_user: int,
    positions: int,
    operators: int = 0,
    jwt_secret: str,
    secret_key: str,
    redis_url: str = "",
    label: str | None = None,
    token_lifetime: timedelta = timedelta(hours=24),
    migrate_first: bool = True,
    stale_after_seconds: int | None = None,
    on_progress=None,
) -> Seed:
    """Insert `users` users with `accounts_per_user` accounts each, a device per account, and
    `positions` expected trades per account, and `operators` owners; return everything a load
    generator needs.

    `stale_after_seconds` replaces the guard default (60 s) of how long without a snapshot makes
    the worker mark a feed stale: a benchmark that reaches each of 10,000 accounts less often
    than a bridge on its 5 s cadence would otherwise measure stale feeds resuming, not steady ones.
    """
    if migrate_first:
        await migrate.upgrade(engine)
    now = datetime.now(UTC)
    label = label or f"bench{now:%H%M%S}{secrets.token_hex(2)}"
    opened_at = (now - timedelta(minutes=10)).replace(microsecond=0)
    password_hash = hash_password(PASSWORD)
    device_secrets = DeviceSecrets(secret_key)
    step = on_progress or (lambda _name: None)

    async with engine.begin() as connection:

        def user_row(email: str, role: str) -> dict:
            return {
                "email": email,
                "password_hash": password_hash,
                "role": role,
                "is_active": True,
                "created_at": now,
            }

        user_rows = [user_row(f"{label}-u{index}@bench.local", "user") for index in range(users)]
        user_ids = await _insert_returning_ids(connection, User, user_rows)
        operator_rows = [
            user_row(f"{label}-operator{index}@bench.local", "owner") for index in range(operators)
        ]
        operator_ids = await _insert_returning_ids(connection, User, operator_rows)
        step("users")

        config = GuardConfig().model_dump()
        if stale_after_seconds is not None:
            config["stale_after_seconds"] = GuardConfig(
                stale_after_seconds=stale_after_seconds
            ).stale_after_seconds
        account_rows = [
            {
                "owner_id": user_id,
                "name": f"{label} follower {index + 1}",
                "broker": "BenchBroker",
                "login": None,
                "currency": "USD",
                "created_at": now,
                **config,
            }
            for user_id in user_ids
            for index in range(accounts_per_user)
        ]
        account_ids = await _insert_returning_ids(connection, Account, account_rows)
        owners = [row["owner_id"] for row in account_rows]
        await _insert(connection, AccountState, _rows(AccountState, (initial_state(a) for a in account_ids)))
        step("accounts")

        device_secret = {account_id: secrets.token_urlsafe(32) for account_id in account_ids}
        device_rows = [
            {
                "account_id": account_id,
                "device_id": f"dev_{label}_{account_id}",
                "secret_ciphertext": device_secrets.seal(device_secret[account_id]),
                "created_at": now,
                "revoked_at": None,
            }
            for account_id in account_ids
        ]
        await _insert_returning_ids(connection, Device, device_rows)
        step("devices")

        specs = {account_id: position_specs(account_id, positions, opened_at) for account_id in account_ids}
        trade_rows = []
        for account_id in account_ids:
            for spec in specs[account_id]:
                body = TradeIn.model_validate(
                    {
                        "trade_id": f"t{spec.ticket}",
                        "symbol": spec.symbol,
                        "side": spec.side,
                        "volume": Decimal(spec.volume),
                        "entry_price": Decimal(spec.open_price),
                        "opened_at": opened_at,
                    },
                    context=ServerClock(now, timedelta(0)).context(),
                )
                fields = _canonical_fields(body)
                trade_rows.append(
                    {
                        "account_id": account_id,
                        "received_at": now,
                        "status": "open",
                        "closed_at": None,
                        "body_digest": _body_digest(fields),
                        **fields,
                    }
                )
        await _insert_returning_ids(connection, ExpectedTrade, trade_rows)
        step("trades")

    accounts_of: dict[int, list[int]] = {}
    for account_id, owner_id in zip(account_ids, owners, strict=True):
        accounts_of.setdefault(owner_id, []).append(account_id)
    seed = Seed(
        label=label,
        database_url=engine.url.render_as_string(hide_password=False),
        redis_url=redis_url,
        jwt_secret=jwt_secret,
        secret_key=secret_key,
        created_at=now.isoformat(),
        opened_at=opened_at.isoformat(),
        password=PASSWORD,
        positions_per_account=positions,
    )
    for index, user_id in enumerate(user_ids):
        token = issue_token(Principal(user_id, "user"), secret=jwt_secret, now=now, lifetime=token_lifetime)
        seed.users.append(
            SeededUser(user_id, user_rows[index]["email"], token, tuple(accounts_of.get(user_id, ())))
        )
    for index, user_id in enumerate(operator_ids):
        token = issue_token(Principal(user_id, "owner"), secret=jwt_secret, now=now, lifetime=token_lifetime)
        seed.operators.append(SeededUser(user_id, operator_rows[index]["email"], token, ()))
    for account_id, owner_id in zip(account_ids, owners, strict=True):
        seed.accounts.append(
            SeededAccount(
                account_id=account_id,
                owner_id=owner_id,
                device_id=f"dev_{label}_{account_id}",
                secret=device_secret[account_id],
                positions=specs[account_id],
            )
        )
    step("tokens")
    return seed


async def unprimed_accounts(engine: AsyncEngine, account_ids: list[int]) -> set[int]:
    """Accounts that have not had a snapshot yet (their positions do not exist yet)."""
    found: set[int] = set()
    async with engine.connect() as connection:
        for start in range(0, len(account_ids), 10_000):
            chunk = account_ids[start : start + 10_000]
            rows = await connection.execute(
                select(AccountState.account_id).where(
                    AccountState.account_id.in_(chunk), AccountState.total_syncs == 0
                )
            )
            found.update(rows.scalars().all())
    return found


async def count_accounts(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(Account))).scalar_one()


def new_secrets() -> tuple[str, str]:
    """A JWT secret and a Fernet key for a benchmark server."""
    from cryptography.fernet import Fernet

    return secrets.token_urlsafe(48), Fernet.generate_key().decode()


def parse_args(argv=None) -> argparse.Namespace:
    # harness builds on this module's Seed, so it is imported once this module is complete.
    from bench import harness

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=harness.DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=harness.DEFAULT_REDIS_URL)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--accounts-per-user", type=int, default=2)
    parser.add_argument(
        "--positions", type=int, default=10, help="positions (and expected trades) per account"
    )
    parser.add_argument(
        "--stale-after-seconds",
        type=int,
        default=None,
        help="the accounts' stale-feed limit instead of the default 60 s (scale and growth: 3600)",
    )
    parser.add_argument(
        "--operators",
        type=int,
        default=1,
        help="users of role owner, without accounts (the platform view's readers)",
    )
    parser.add_argument("--output", type=Path, default=harness.RESULTS / "seed.json")
    parser.add_argument("--recreate", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--append", action="store_true", help="add to an existing seed file")
    parser.add_argument("--drop", action="store_true", help="drop the database and flush Redis, then exit")
    return parser.parse_args(argv)


async def _seed_from_command_line(args: argparse.Namespace) -> None:
    from bench import harness

    if args.drop:
        await harness.drop_database(args.database_url)
        await harness.flush_redis(args.redis_url)
        args.output.unlink(missing_ok=True)
        print(f"dropped {args.database_url}, flushed {args.redis_url}")
        return
    await harness.create_database(args.database_url, recreate=args.recreate)
    previous = Seed.load(args.output) if args.append and args.output.exists() else None
    jwt_secret, secret_key = (
        (previous.jwt_secret, previous.secret_key) if previous is not None else new_secrets()
    )
    engine = create_async_engine(args.database_url)
    started = time.perf_counter()
    try:
        seed = await seed_database(
            engine,
            users=args.users,
            accounts_per_user=args.accounts_per_user,
            positions=args.positions,
            operators=args.operators,
            jwt_secret=jwt_secret,
            secret_key=secret_key,
            redis_url=args.redis_url,
            stale_after_seconds=args.stale_after_seconds,
            on_progress=lambda step: print(f"  {step} done after {time.perf_counter() - started:.1f} s"),
        )
    finally:
        await engine.dispose()
    if previous is not None:
        previous.extend(seed)
        seed = previous
    seed.save(args.output)
    print(
        f"seeded {args.users} users, {args.users * args.accounts_per_user} accounts "
        f"in {time.perf_counter() - started:.1f} s; {len(seed.accounts)} accounts in {args.output}"
    )


def main() -> int:
    asyncio.run(_seed_from_command_line(parse_args()))
    return 0
