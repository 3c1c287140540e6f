from alembic import context
from sqlmodel import SQLModel

import hub.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from hub.store.db import include_object

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from hub.store.db import make_engine

        engine = make_engine(context.config.get_main_option("sqlalchemy.url"), pool_size=1)
        with engine.begin() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
