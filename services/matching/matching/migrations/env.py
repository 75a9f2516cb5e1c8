from werkplaats_shared.migration_env import run_migrations

from matching.adapters.orm import metadata

run_migrations(metadata)
