"""Alembic environment: runs doctune's migrations on the registry URL passed in by ``registry.migrate``."""

from alembic import context
from sqlalchemy import create_engine, pool

from doctune.registry import VERSION_TABLE, Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "registry.migrate sets sqlalchemy.url"
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
