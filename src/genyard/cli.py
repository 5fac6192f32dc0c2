"""The ``genyard`` command: serve, migrate, users, keys, models. Reads the same settings
(``GENYARD_*``) as the server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from genyard.config import Settings, load_settings
from genyard.db.billing_repo import LedgerRow
from genyard.db.engine import Database
from genyard.db.migrate import migrate
from genyard.domain.accounts import parse_scopes
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, MODEL_TYPES, Catalog
from genyard.domain.pricing import credits
from genyard.errors import GenyardError
from genyard.providers.registry import ProviderRegistry
from genyard.providers.runtime import warm_model
from genyard.services.accounts import AccountService
from genyard.services.container import DataDirInUse, lock_data_dir
from genyard.services.credits import CreditService, amount_of, grant_type

T = TypeVar("T")
app = typer.Typer(help="genyard: a self-hostable AI generation platform.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Manage credits.", no_args_is_help=True)
models_app = typer.Typer(help="Inspect the model catalog.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")
app.add_typer(models_app, name="models")
console = Console(stderr=True)


def _print_rows(header: tuple[str, ...], rows: Sequence[Sequence[str]]) -> None:
    """Tab-separated lines, header first: whole ids, never cut to the terminal's width."""
    for row in (header, *rows):
        typer.echo("\t".join(row))


def _run_with_accounts(fn: Callable[[AccountService], Awaitable[T]]) -> T:
    return _run_with_db(lambda db, settings: fn(AccountService.from_settings(db, settings)))


def _run_with_db(fn: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run ``fn`` on the migrated database; a GenyardError is printed, exit status 1."""
    settings = load_settings()

    async def main() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        try:
            await migrate(db)
            return await fn(db, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except GenyardError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _http_settings(host: str | None, port: int | None) -> Settings:
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    return load_settings(**overrides)


def _serve_http(settings: Settings, *, run_workers: bool) -> None:
    """Run the app under uvicorn, logging as configured (the one way HTTP is served)."""
    import uvicorn

    from genyard.app import create_app
    from genyard.services.container import Services

    services = Services.build(settings, run_workers=run_workers)
    uvicorn.run(
        create_app(settings, services),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GENYARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GENYARD_PORT).")] = None,
) -> None:
    """Run the API, workers and reaper in one process (migrates first). SQLite or PostgreSQL."""
    from genyard.logs import configure_logging

    settings = _http_settings(host, port)
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_sqlite:
        # Say it plainly before uvicorn starts (the app takes the lock for real).
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            lock_data_dir(settings.data_dir).close()
        except DataDirInUse as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    _serve_http(settings, run_workers=True)


def _require_postgres(settings: Settings, command: str) -> None:
    if settings.is_sqlite:
        console.print(
            f"[red]error:[/red] `genyard {command}` runs API and workers as separate processes, "
            "which needs PostgreSQL (GENYARD_DATABASE_URL=postgresql+asyncpg://...). "
            "With SQLite, run `genyard serve`: one process with the API and the workers."
        )
        raise typer.Exit(2)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (GENYARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GENYARD_PORT).")] = None,
) -> None:
    """Run the API only (PostgreSQL): workers run in `genyard worker` processes."""
    from genyard.logs import configure_logging

    settings = _http_settings(host, port)
    _require_postgres(settings, "api")
    configure_logging(settings.log_level, settings.log_format)
    _serve_http(settings, run_workers=False)


@app.command()
def worker(
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model ids to serve (default: all).")
    ] = None,
    types: Annotated[
        str | None, typer.Option(help="Comma-separated model types to serve, e.g. embedding.")
    ] = None,
) -> None:
    """Run workers and the reaper only (PostgreSQL), for the models this machine serves."""
    from genyard.logs import configure_logging
    from genyard.services.container import Services

    settings = load_settings()
    _require_postgres(settings, "worker")
    configure_logging(settings.log_level, settings.log_format)
    services = Services.build(settings, bootstrap=False)
    chosen = _chosen_models(services.catalog, models, types)
    services.worker_models = chosen

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await services.start()
        assert services.workers is not None
        pools = {p.name: sorted(p.models) for p in services.workers.pools}
        logging.getLogger("genyard.worker").info("worker started: %s", pools)
        await stop.wait()
        await services.stop()

    asyncio.run(main())


def _chosen_models(catalog: Catalog, models: str | None, types: str | None) -> set[str] | None:
    """The model ids named by --models and --types; None (all) when neither is given."""
    if models is None and types is None:
        return None
    chosen: set[str] = set()
    for model_id in filter(None, (m.strip() for m in (models or "").split(","))):
        if catalog.get(model_id) is None:
            console.print(f"[red]error:[/red] --models: unknown model {model_id!r}")
            raise typer.Exit(2)
        chosen.add(model_id)
    for model_type in filter(None, (t.strip() for t in (types or "").split(","))):
        if model_type not in MODEL_TYPES:
            console.print(f"[red]error:[/red] --types: unknown model type {model_type!r}")
            raise typer.Exit(2)
        chosen.update(e.id for e in catalog.all(model_type))
    return chosen


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    settings = load_settings()

    async def main() -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        try:
            await migrate(db)
        finally:
            await db.dispose()

    asyncio.run(main())
    console.print("database is up to date")


@users_app.command("create")
def users_create(
    name: str,
    tier: Annotated[str, typer.Option(help="Rate-limit tier.")] = "free",
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
) -> None:
    """Create a user (with its own account)."""
    user = _run_with_accounts(lambda svc: svc.create_user(name, tier=tier, admin=admin))
    typer.echo(
        f"{user.id}\t{user.name}\t{user.account_id}\ttier={user.tier}\tadmin={user.is_admin}"
    )


@users_app.command("list")
def users_list() -> None:
    """List users."""
    users = _run_with_accounts(lambda svc: svc.users())
    _print_rows(
        ("id", "name", "account", "tier", "admin"),
        [(u.id, u.name, u.account_id, u.tier, str(u.is_admin)) for u in users],
    )


@credits_app.command("grant")
def credits_grant(
    user: Annotated[str, typer.Option("--user", help="The user's name.")],
    amount: Annotated[str, typer.Option(help="Credits, at most 6 decimals.")],
    type: Annotated[
        str, typer.Option("--type", help="purchase, daily_bonus, weekly_bonus or signup_bonus.")
    ] = "purchase",
    note: Annotated[str | None, typer.Option(help="Shown in the transaction history.")] = None,
) -> None:
    """Add credits to a user's account; prints the transaction and the new balance."""

    async def grant(db: Database, settings: Settings) -> LedgerRow:
        return await CreditService(db).grant(user, amount_of(amount), grant_type(type), note)

    row = _run_with_db(grant)
    typer.echo(
        f"{row.id}	{row.type}	+{credits(row.amount):g}	balance={credits(row.balance_after):g}"
    )


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", help="The user's name.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read,write,generate.")] = "",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
) -> None:
    """Create an API key; the key is printed alone on the last line, once."""
    try:
        parsed = parse_scopes(scopes)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    async def create(svc: AccountService) -> str:
        issued = await svc.create_key(await svc.user(user), name=name, scopes=parsed)
        console.print(f"created key {issued.row.id} ({issued.row.prefix}…) for {user}")
        return issued.secret

    typer.echo(_run_with_accounts(create))


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
) -> None:
    """List keys (prefixes only: keys are stored hashed)."""

    async def list_(svc: AccountService) -> list[tuple[str, ...]]:
        user_id = (await svc.user(user)).id if user else None
        names = {u.id: u.name for u in await svc.users()}
        return [
            (k.id, names.get(k.user_id, k.user_id), k.name, k.prefix + "…", k.scopes or "(all)",
             "revoked" if k.revoked_at else "active")
            for k in await svc.keys(user_id)
        ]  # fmt: skip

    _print_rows(("id", "user", "name", "prefix", "scopes", "state"), _run_with_accounts(list_))


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id."""
    key = _run_with_accounts(lambda svc: svc.revoke_key(key_id))
    typer.echo(f"revoked {key.id} ({key.prefix}…)")


def _catalog_and_registry() -> tuple[Catalog, ProviderRegistry]:
    settings: Settings = load_settings()
    dirs = [BUNDLED_CATALOG_DIR, *([settings.catalog_dir] if settings.catalog_dir else [])]
    catalog = Catalog.load(dirs, include_diagnostic=settings.diagnostic_models)
    return catalog, ProviderRegistry.from_entry_points()


@models_app.command("list")
def models_list() -> None:
    """List catalog models, whether each can run here, and for those that cannot, why
    and the command that fixes it."""
    catalog, registry = _catalog_and_registry()
    rows = []
    for entry in sorted(catalog.all(), key=lambda e: (e.type, e.id)):
        availability = registry.availability(entry.provider, entry)
        rows.append(
            (
                entry.id,
                entry.type,
                "yes" if availability.available else "no",
                availability.reason or "",
                availability.fix or "",
            )
        )
    _print_rows(("id", "type", "available", "reason", "fix"), rows)


@models_app.command("warm")
def models_warm(
    model_ids: Annotated[list[str], typer.Argument(help="Model ids to load.")],
) -> None:
    """Load models now and report how long each took: checks that a model loads here
    and warms the OS file cache. To keep models loaded in a server, set
    GENYARD_WARM_MODELS (the server then loads them when it starts)."""
    catalog, registry = _catalog_and_registry()
    failed = False
    for model_id in model_ids:
        entry = catalog.get(model_id)
        if entry is None:
            typer.echo(f"{model_id}: unknown model (genyard models list)", err=True)
            failed = True
            continue
        try:
            seconds = warm_model(registry, entry)
        except Exception as exc:
            typer.echo(f"{model_id}: failed to load: {exc}", err=True)
            failed = True
            continue
        if seconds is None:
            typer.echo(f"{model_id}: loads on its first run (its provider has nothing to warm)")
        else:
            typer.echo(f"{model_id}: loaded in {seconds:.2f} s")
    if failed:
        raise typer.Exit(1)


def main() -> None:
    app()
