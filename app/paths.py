"""Where the project keeps its files, so no module guesses relative to the working directory."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUPABASE = REPO / "supabase"
MIGRATIONS = SUPABASE / "migrations"
FUNCTIONS_SQL = SUPABASE / "functions-sql"
EMULATION = SUPABASE / "emulation"
SEED = SUPABASE / "seed.sql"
CONFIG_TOML = SUPABASE / "config.toml"
LOCAL = REPO / ".local"
STACK_ENV = LOCAL / "stack.env"
