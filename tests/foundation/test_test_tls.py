"""The tests' HTTP clients share one TLS context (tests.support.TLS): httpx and the SDKs
otherwise load the CA bundle for every client and every module-level httpx.get (35-50 ms of
CPU each), on a machine whose 2 cores the suite keeps busy, though the tests speak plain HTTP
on loopback. A module-level call or a client built without verify= (or, for an SDK,
http_client=) is caught here."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
HTTPX_CALLS = frozenset(
    {"get", "post", "request", "put", "patch", "delete", "stream", "head", "options"}
)
HTTPX_CLIENTS = frozenset({"Client", "AsyncClient"})
SDK_CLIENTS = {"openai": {"OpenAI", "AsyncOpenAI"}, "anthropic": {"Anthropic", "AsyncAnthropic"}}


def _needs(call: ast.Call) -> str | None:
    """The keyword `call` must pass to share the context, or None if it makes no client."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return None
    module, name = func.value.id, func.attr
    if module == "httpx" and (name in HTTPX_CALLS or name in HTTPX_CLIENTS):
        return "verify"
    if name in SDK_CLIENTS.get(module, ()):
        return "http_client"
    return None


def _passes(call: ast.Call, keyword: str) -> bool:
    """Whether `call` passes `keyword` (other than verify=True), a transport, or **kwargs."""
    for given in call.keywords:
        if given.arg is None or given.arg == "transport":
            return True
        if given.arg == keyword:
            value = given.value
            return not (isinstance(value, ast.Constant) and value.value is True)
    return False


def offending_sites(root: Path = TESTS) -> list[str]:
    """Every call under `root` that would build its own TLS context, as "path:line: call"."""
    sites = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root.parent)
        calls = [
            n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, ast.Call)
        ]
        for node in sorted(calls, key=lambda call: call.lineno):
            keyword = _needs(node)
            if keyword is None or _passes(node, keyword):
                continue
            sites.append(f"{name}:{node.lineno}: {ast.unparse(node.func)}(...) without {keyword}=")
    return sites


def test_every_test_client_shares_the_tls_context() -> None:
    sites = offending_sites()
    assert sites == [], "pass verify=TLS or http_client=sdk_http(...):\n" + "\n".join(sites)


def test_the_guard_sees_each_kind_of_site(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "httpx.get(url)\n"
        "httpx.post(url, verify=TLS)\n"
        "httpx.Client(base_url=url, verify=True)\n"
        "httpx.AsyncClient(transport=transport)\n"
        "openai.OpenAI(base_url=url)\n"
        "def f():\n    httpx.stream('GET', url)\n"
        "anthropic.AsyncAnthropic(http_client=sdk_http(anthropic, asynchronous=True))\n"
    )
    assert offending_sites(tmp_path / "tests") == [
        "tests/test_x.py:1: httpx.get(...) without verify=",
        "tests/test_x.py:3: httpx.Client(...) without verify=",
        "tests/test_x.py:5: openai.OpenAI(...) without http_client=",
        "tests/test_x.py:7: httpx.stream(...) without verify=",
    ]
