"""Where the project keeps its files, so no module guesses relative to the working directory."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUPABASE = REPO / "supabase"
MIGRATIONS = SUPABASE / "migrations"
FUNCTIONS_SQL = SUPABASE / "functions-sql"
EMULATION = SUPABASE / "emulation"
SEED = SUPABASE / "seed.sql"
CONFIG_TOML = SUPABASE / "config.toml"
# EASYMO_LOCAL_DIR lets a second stack (or a test of the stack) live beside the usual one.
LOCAL = Path(os.environ.get("EASYMO_LOCAL_DIR") or REPO / ".local")
STACK_ENV = LOCAL / "stack.env"


def display(path: Path) -> str:
    """Relative to the repo when inside it: shorter in messages, and the same on every clone."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)
