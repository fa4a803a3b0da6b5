"""The command a stopped search prints to resume it runs as printed and never shows a secret."""

from __future__ import annotations

import shlex

from nas.commands.search import resume_command
from nas.config import SearchConfig
from nas.storage.urls import without_password


def test_a_postgresql_password_is_left_to_pgpassword() -> None:
    config = SearchConfig(
        budget_mflops=150, storage="postgresql+psycopg://nas:s3cret@db.example:5432/nas"
    )
    command = resume_command(config)
    assert "s3cret" not in command and "***" not in command
    assert "PGPASSWORD" in command
    words = shlex.split(command.split(" (with PGPASSWORD")[0])
    assert words[words.index("--storage") + 1] == "postgresql+psycopg://nas@db.example:5432/nas"


def test_a_url_without_a_password_is_printed_as_given() -> None:
    config = SearchConfig(budget_mflops=150, storage="sqlite:///runs/nas.db", epochs=3)
    command = resume_command(config)
    assert "PGPASSWORD" not in command
    words = shlex.split(command)
    assert words[:3] == ["nas", "search", "--resume"]
    assert words[words.index("--storage") + 1] == "sqlite:///runs/nas.db"
    assert words[words.index("--epochs") + 1] == "3"


def test_a_password_in_the_query_is_removed_too() -> None:
    url, had = without_password("postgresql+psycopg://nas@db/nas?password=s3cret&sslmode=require")
    assert had and "s3cret" not in url and "sslmode=require" in url
