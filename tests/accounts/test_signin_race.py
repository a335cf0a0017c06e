"""A first sign-in racing another creation of the same account (`users create`, the dashboard,
another box): the sign-in gets that account, never a 500 with its code used up."""

from __future__ import annotations

import contextlib
import threading
import time
import tomllib

import httpx
import pytest

from tests.accounts.conftest import BoxClient, ServerFactory, smtp_sections
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.pg_cluster import query_config_db, wanted_engine

pytestmark = pytest.mark.timeout(180)
ONLY_POSTGRES = pytest.mark.skipif(wanted_engine() != "postgres", reason="PostgreSQL's writers")
INSERT_USER = (
    'INSERT INTO "user" (uuid, email, display_name, status, balance_nanos, held_nanos, '
    "created_by_admin, created_at) VALUES (gen_random_uuid()::text, %s, '', 'active', 0, 0, "
    "1, now())"
)


@ONLY_POSTGRES
def test_a_first_sign_in_while_another_transaction_creates_the_account_gets_it(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
) -> None:
    """Another writer (the dashboard's `create_user`, another box's sign-in) has inserted the
    account but not yet committed when the verify looks for it: the verify must wait and sign
    in to that account, not fail on the unique email with a 500 after spending the code."""
    import psycopg

    server = box_factory(email=smtp_sections(smtp))
    client = BoxClient(server, smtp)
    url = tomllib.loads(server.config.read_text())["database"]["url"]
    email = "racer@race.test"
    code = client.mailed_code(email)
    answers: list[httpx.Response] = []
    with psycopg.connect(url) as other:  # one open transaction, as a slow creator's
        other.execute(INSERT_USER, (email,))
        verify = threading.Thread(target=lambda: answers.append(client.verify(email, code)))
        verify.start()
        time.sleep(1.0)  # the verify has reached the account by now
        other.commit()
        verify.join(30)
    client.close()
    assert len(answers) == 1
    assert answers[0].status_code == 200, answers[0].text
    rows = query_config_db(server.config, 'SELECT uuid FROM "user" WHERE email = ?', (email,))
    assert len(rows) == 1
    assert answers[0].json()["user_id"] == rows[0][0]


PAIRS = 24


def _race_pair(client: BoxClient, email: str, code: str, delay: float) -> httpx.Response:
    """A verify of `email` over HTTP and the dashboard's `create_user` of it, started together
    (the creation `delay` seconds later): the verify's answer."""
    from codelace_box.accounts.users import create_user
    from codelace_box.errors import Conflict

    together = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def verify() -> None:
        together.wait(10)
        answers.append(client.verify(email, code))

    thread = threading.Thread(target=verify)
    thread.start()
    together.wait(10)
    time.sleep(delay)
    with contextlib.suppress(Conflict):  # the verify made it first: a clear 409
        create_user(email, created_by_admin=True)
    thread.join(30)
    assert answers, "the verify did not answer"
    return answers[0]


def test_first_sign_ins_racing_the_dashboards_creation_end_on_one_account(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
) -> None:
    """Two workers; per address, a verify and the dashboard's `create_user` (this process, on
    the box's database) start together: the verify signs in (200) to the one account, the
    creation makes it or says it exists (409), for every pair."""
    from codelace_box.db.core import close_database, open_database

    server = box_factory(email=smtp_sections(smtp), server={"workers": 2})
    client = BoxClient(server, smtp)
    database = tomllib.loads(server.config.read_text())["database"]
    open_database(database.get("url") or database["path"])
    emails = [f"pair{n}@race.test" for n in range(PAIRS)]
    codes = [client.mailed_code(email) for email in emails]
    try:
        for n, (email, code) in enumerate(zip(emails, codes, strict=True)):
            answer = _race_pair(client, email, code, 0.002 * (n % 6))  # a spread of orderings
            assert answer.status_code == 200, (email, answer.text)
            sql = 'SELECT uuid FROM "user" WHERE email = ?'
            rows = query_config_db(server.config, sql, (email,))
            assert [row[0] for row in rows] == [answer.json()["user_id"]]
    finally:
        close_database()
        client.close()
