"""full-text search over transcript segments

SQLite: an FTS5 table with external content (`transcript_segments` holds the text once), kept in
sync by triggers, so every writer (the transcription worker, a future edit or delete, a cascade
from a deleted call) updates it. PostgreSQL: a GIN index on the segment's English tsvector.
Neither is in the models (they are dialect-specific); tests/records/test_migrations.py skips
names starting with `transcript_segments_fts`.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UP = [
    """CREATE VIRTUAL TABLE transcript_segments_fts USING fts5(
        text, content='transcript_segments', content_rowid='id', tokenize='porter unicode61')""",
    """CREATE TRIGGER transcript_segments_fts_ai AFTER INSERT ON transcript_segments BEGIN
        INSERT INTO transcript_segments_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER transcript_segments_fts_ad AFTER DELETE ON transcript_segments BEGIN
        INSERT INTO transcript_segments_fts(transcript_segments_fts, rowid, text)
        VALUES ('delete', old.id, old.text);
    END""",
    """CREATE TRIGGER transcript_segments_fts_au AFTER UPDATE OF text ON transcript_segments BEGIN
        INSERT INTO transcript_segments_fts(transcript_segments_fts, rowid, text)
        VALUES ('delete', old.id, old.text);
        INSERT INTO transcript_segments_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    "INSERT INTO transcript_segments_fts(transcript_segments_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS transcript_segments_fts_au",
    "DROP TRIGGER IF EXISTS transcript_segments_fts_ad",
    "DROP TRIGGER IF EXISTS transcript_segments_fts_ai",
    "DROP TABLE IF EXISTS transcript_segments_fts",
]
PG_UP = [
    """CREATE INDEX transcript_segments_fts_idx ON transcript_segments
        USING gin (to_tsvector('english'::regconfig, text))""",
]
PG_DOWN = ["DROP INDEX IF EXISTS transcript_segments_fts_idx"]


def _run(sqlite: list[str], postgresql: list[str]) -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": sqlite, "postgresql": postgresql}.get(dialect, []):
        op.execute(statement)


def upgrade() -> None:
    _run(SQLITE_UP, PG_UP)


def downgrade() -> None:
    _run(SQLITE_DOWN, PG_DOWN)
