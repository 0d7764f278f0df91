import json
import pathlib

import pytest
import pytest_asyncio
from scenario_models import Author, Comment, Document, Folder, Post, Setting, Tag
from sqlalchemy import select

from pytest_sqlaperf import record_of

FINDINGS = pathlib.Path("findings.json")


def pytest_runtest_logreport(report):
    record = record_of(report)
    if report.when == "call" and record is not None:
        found = json.loads(FINDINGS.read_text()) if FINDINGS.exists() else {}
        found[report.nodeid.split("::")[-1]] = {
            "kinds": sorted({finding["kind"] for finding in record["findings"]}),
            "messages": [finding["message"] for finding in record["findings"]],
            "fixes": [finding["fix"] for finding in record["findings"]],
            "outcome": report.outcome,
        }
        FINDINGS.write_text(json.dumps(found, indent=1))


def _populate(session):
    authors = [Author(name=f"author{i}") for i in range(4)]
    tags = [Tag(name=f"tag{i}") for i in range(3)]
    session.add_all([*authors, *tags, Setting(key="theme", value="dark")])
    session.add_all([Folder(documents=[Document(), Document()]) for _ in range(4)])
    for i in range(6):
        post = Post(title=f"post{i}", author=authors[i % 4], tags=tags[: 1 + i % 3], body="b" * 10)
        session.add(post)
        for j in range(3):
            session.add(Comment(text=f"c{i}{j}", post=post, author=authors[(i + j) % 4]))
    session.flush()
    # the fixture's own lazy loads and per-row work are set-up: never counted
    for post in session.scalars(select(Post)).all():
        post.author.name
    session.commit()
    session.expunge_all()


@pytest.fixture
def db(sqlaperf_session):
    _populate(sqlaperf_session)
    return sqlaperf_session


@pytest_asyncio.fixture
async def adb(sqlaperf_async_session):
    await sqlaperf_async_session.run_sync(_populate)
    return sqlaperf_async_session
