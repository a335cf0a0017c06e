"""A first sign-in racing another creation of the same account on PostgreSQL (`users create`,
the dashboard, another box): the sign-in gets that account, never a 500 with its code used up."""

from __future__ import annotations

import threading
import time
import tomllib

import httpx
import pytest

from tests.accounts.conftest import BoxClient, ServerFactory, smtp_sections
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.pg_cluster import query_config_db, wanted_engine

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="PostgreSQL's concurrent writers"),
]
INSERT_USER = (
    'INSERT INTO "user" (uuid, email, display_name, status, balance_nanos, held_nanos, '
    "created_by_admin, created_at) VALUES (gen_random_uuid()::text, %s, '', 'active', 0, 0, "
    "1, now())"
)


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
