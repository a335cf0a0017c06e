"""probe (not committed)."""
import httpx, json
from tests.messages.conftest import MODEL, MessagesBox
from tests.support import TLS

BODY = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}

def test_probe(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    out = []
    for name, headers, path in [
        ("xapikey ff", [("x-api-key", key.encode() + b"\xff")], "/v1/messages"),
        ("bearer ff", [("authorization", b"Bearer " + key.encode() + b"\xff")], "/v1/messages"),
        ("bearer ff chat", [("authorization", b"Bearer " + key.encode() + b"\xff")], "/v1/chat/completions"),
        ("bearer ff resp", [("authorization", b"Bearer cl_\xff")], "/v1/responses"),
        ("version ff", [("x-api-key", key.encode()), ("anthropic-version", b"2023-06-01\xff")], "/v1/messages"),
    ]:
        fresh.fake.reset()
        r = httpx.post(f"{fresh.server.base_url}{path}", content=json.dumps(BODY).encode(), headers=[("content-type","application/json"), *headers], timeout=30, verify=TLS)
        out.append((name, r.status_code, r.text[:200]))
    for o in out: print(o)
    assert False
