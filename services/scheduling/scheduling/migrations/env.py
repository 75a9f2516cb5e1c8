from werkplaats_shared.migration_env import run_migrations

from scheduling.adapters.orm import metadata

run_migrations(metadata)
