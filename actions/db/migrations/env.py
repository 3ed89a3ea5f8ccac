"""Alembic environment: runs online against the engine handed over in the config.

SQLite alters a table by copying it (batch mode); foreign keys are switched off meanwhile, so that dropping the old
copy of a referenced table does not fail, and checked with `PRAGMA foreign_key_check` before commit.
"""

from alembic import context
from sqlalchemy import text

from actions.db.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} rows with broken foreign keys")
        connection.commit()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
