"""``redraft serve`` at its edges: hostile Host headers, security headers on every answer,
out-of-range and malformed parameters (never a 500), and binding beyond loopback."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

starlette = pytest.importorskip("starlette")


@pytest.fixture(scope="module")
def client(experiment):
    from starlette.testclient import TestClient

    from redraft.view import create_app

    url, exp = experiment
    return TestClient(create_app(url, per_page=4), base_url="http://127.0.0.1", raise_server_exceptions=False), exp


def test_a_foreign_host_header_is_refused(client):
    """DNS rebinding: a page on evil.example resolves its name to 127.0.0.1 and reads the server."""
    c, exp = client
    assert c.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert c.get(f"/r/{exp[:8]}", headers={"Host": "evil.example:8765"}).status_code == 400
    assert c.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_every_answer_carries_the_security_headers(client):
    from redraft.view.app import SECURITY_HEADERS

    c, exp = client
    for route in ("/", f"/r/{exp[:8]}", "/r/nosuchid", "/static/vega.min.js", "/?page=abc"):
        headers = c.get(route).headers
        assert {k: headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, route
    refused = c.get("/", headers={"Host": "evil.example"}).headers
    assert refused.get("X-Frame-Options") == "DENY"


@pytest.mark.parametrize(
    ("route", "status", "says"),
    [
        ("/example/99999999999999999999999", 404, "no example"),
        ("/example/9223372036854775808", 404, "no example"),
        ("/?page=999999999999999999999", 400, "page must be a positive integer"),
        ("/?page=-5", 400, "page must be a positive integer"),
        ("/?page=0", 400, "page must be a positive integer"),
        ("/?page=%201", 400, "page must be a positive integer"),
        ("/?page=abc", 400, "page must be a positive integer"),
        ("/?page=%C2%B2", 400, "page must be a positive integer"),  # "²": a Unicode digit int() refuses
    ],
)
def test_out_of_range_and_malformed_numbers_are_named(client, route, status, says):
    c, _ = client
    answer = c.get(route)
    assert (answer.status_code, says in answer.text) == (status, True)


PARAM = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.text(max_size=30),
    st.sampled_from(["improved", "wrong", "right", "", "0", "1", "2", "-1", "1e9", "NaN", "%00", "../.."]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(["/", "/r/{exp}", "/r/{text}", "/example/{int}", "/static/{text}"]),
    value=PARAM,
    number=st.integers(min_value=0, max_value=2**80),
    key=st.sampled_from(["page", "dataset", "critic", "change", "verdict", "other"]),
)
def test_no_parameter_answers_500(client, route, value, number, key):
    c, exp = client
    path = route.format(exp=exp[:8], text=quote(value, safe="") or "x", int=number)
    answer = c.get(path, params={key: value})
    assert answer.status_code < 500, (path, key, value, answer.text[:200])


def test_binding_beyond_loopback_needs_public(experiment, monkeypatch):
    from typer.testing import CliRunner

    from redraft import cli
    from redraft.view import serving

    url, _ = experiment
    seen: dict[str, object] = {}
    monkeypatch.setattr(serving, "serve", lambda app, host, port: seen.update(host=host, port=port, app=app))
    runner = CliRunner(env={"COLUMNS": "300"})
    refused = runner.invoke(cli.app, ["serve", "--db", url, "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "Add --public" in refused.output and not seen
    served = runner.invoke(cli.app, ["serve", "--db", url, "--host", "0.0.0.0", "--public", "--allow-host", "lab-box"])
    assert served.exit_code == 0, served.output
    assert "warning:" in served.output and "lab-box" in served.output and seen["host"] == "0.0.0.0"
