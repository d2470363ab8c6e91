"""Alembic environment: runs migrations against the URL the project's config carries."""

from alembic import context

from storage.db import make_engine
from storage.models import Base
from storage.search import is_search_object

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, kind: str, _parents: object) -> bool:
    """Leave the search indexes (see storage/search.py) out of autogenerate's comparison."""
    return not (kind in ("table", "index") and is_search_object(name))


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations over a connection."""
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
