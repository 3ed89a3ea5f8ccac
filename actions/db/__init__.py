"""Case database: models, engine and session factory, migrations."""
