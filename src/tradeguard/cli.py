"""The `tradeguard` command: serve, migrate, users, demo."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from sqlalchemy import select

from tradeguard.accounts.service import create_account
from tradeguard.auth.passwords import hash_password
from tradeguard.auth.tokens import ROLES, Principal
from tradeguard.auth.users import create_user
from tradeguard.errors import TradeguardError
from tradeguard.settings import Settings, get_settings
from tradeguard.store import migrate
from tradeguard.store.db import create_engine, session_factory
from tradeguard.store.models import User

app = typer.Typer(help="Account reconciliation and risk guards for signal and copy-trading platforms.")
users_app = typer.Typer(help="Manage users.")
app.add_typer(users_app, name="users")
console = Console(stderr=True)

DEMO_EMAIL = "demo@tradeguard.local"
DEMO_ACCOUNTS = (("Follower EURUSD", "DemoBroker", "1001"), ("Follower Gold", "DemoBroker", "1002"))


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run_server(settings: Settings, host: str, port: int) -> None:
    from tradeguard.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API (migrating the database first unless TRADEGUARD_AUTO_MIGRATE=false)."""
    settings = get_settings()
    _configure_logging(settings)
    _run_server(settings, host, port)


@app.command("migrate")
def migrate_command(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision instead.")] = False,
) -> None:
    """Upgrade (or downgrade) the database schema."""
    settings = get_settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            with console.status(f"migrating {engine.url.render_as_string(hide_password=True)}"):
                if down:
                    await migrate.downgrade(engine, revision)
                else:
                    await migrate.upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(run())
    console.print(f"[green]database {'downgraded' if down else 'migrated'} to {revision}[/green]")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's email, their login name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "user",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user; the password is prompted for, or read from standard input."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = get_settings()

    async def run() -> int:
        engine = create_engine(settings)
        try:
            await migrate.upgrade(engine)
            async with session_factory(engine)() as session:
                user = await create_user(
                    session, email=email, password=password, role=role, now=datetime.now(UTC)
                )
                await session.commit()
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(run())
    except TradeguardError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]created user {user_id} ({role})[/green]")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve with a demo login and seeded accounts, and print how to sign in."""
    settings = get_settings()
    _configure_logging(settings)
    password = asyncio.run(_seed_demo(settings))
    base = f"http://{host}:{port}"
    console.print(f"tradeguard demo at [bold]{base}[/bold]  (API docs: {base}/docs)")
    console.print(f"login: [bold]{DEMO_EMAIL}[/bold]  password: [bold]{password}[/bold]")
    _run_server(settings, host, port)


async def _seed_demo(settings: Settings) -> str:
    """A fresh password every run, so a demo left listening never has a guessable login."""
    password = secrets.token_urlsafe(9)
    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            now = datetime.now(UTC)
            user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
            if user is None:
                user = await create_user(session, email=DEMO_EMAIL, password=password, role="user", now=now)
                for name, broker, login in DEMO_ACCOUNTS:
                    await create_account(
                        session,
                        Principal(user.id, user.role),
                        name=name,
                        broker=broker,
                        login=login,
                        currency="USD",
                        now=now,
                    )
            else:
                user.password_hash = hash_password(password)
            await session.commit()
    finally:
        await engine.dispose()
    return password


if __name__ == "__main__":
    app()
