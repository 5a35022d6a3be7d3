import pytest

from nexus.adapters.persistence.database import async_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/nexus", "postgresql+asyncpg://u:p@db:5432/nexus"),
        ("postgres://u:p@db/nexus", "postgresql+asyncpg://u:p@db/nexus"),
        ("postgresql://u@db/nexus?sslmode=require", "postgresql+asyncpg://u@db/nexus?ssl=require"),
        ("postgresql://postgres:@/postgres?host=/tmp/pg", "postgresql+asyncpg://postgres:@/postgres?host=%2Ftmp%2Fpg"),
    ],
)
def test_libpq_style_urls_become_asyncpg_urls(given: str, expected: str) -> None:
    assert async_url(given) == expected
