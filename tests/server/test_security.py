"""The server's guards over real HTTP: basic authentication from a credentials file (ksqlDB's 401 with a Basic
challenge), TLS with a certificate and key (HTTP/1.1 and HTTP/2 through ALPN), the request size limit, and
secrets never echoed back."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme
from running_server import RunningServer

from ksqlpy.errors import KsqlError
from ksqlpy.server.security import load_credentials


def credentials(tmp_path: Path) -> Path:
    path = tmp_path / "users.properties"
    path.write_text("# who may call the server\nalice: s3cret, admin\nbob:hunter2\n", encoding="utf-8")
    return path


def test_without_valid_credentials_every_route_answers_ksqldb_s_401(
    server_factory: Callable[..., RunningServer], tmp_path: Path,
) -> None:
    server = server_factory(credentials_file=str(credentials(tmp_path)))
    for attempt in ({}, {"auth": ("alice", "wrong")}, {"auth": ("mallory", "s3cret")},
                    {"headers": {"authorization": "Basic not-base64!"}}):
        answer = httpx.get(f"{server.url}/info", timeout=10, **attempt)
        assert answer.status_code == 401, attempt
        assert answer.headers["www-authenticate"] == 'Basic realm="KsqlServer-Props"'
        assert answer.json()["error_code"] == 40100
        assert "s3cret" not in answer.text
    for user, password in (("alice", "s3cret"), ("bob", "hunter2")):
        assert httpx.get(f"{server.url}/info", auth=(user, password), timeout=10).status_code == 200
    listed = httpx.post(f"{server.url}/ksql", json={"ksql": "SHOW STREAMS;"}, auth=("bob", "hunter2"), timeout=10)
    assert listed.status_code == 200 and listed.json()[0]["@type"] == "streams"


def test_a_credentials_file_without_users_or_with_a_bad_line_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nobody\n", encoding="utf-8")
    bad = tmp_path / "bad"
    bad.write_text("alice\n", encoding="utf-8")
    with pytest.raises(KsqlError, match="names no user"):
        load_credentials(empty)
    with pytest.raises(KsqlError, match="bad:1"):
        load_credentials(bad)
    assert load_credentials(credentials(tmp_path)) == {"alice": "s3cret", "bob": "hunter2"}


def test_tls_serves_http1_and_http2_with_the_given_certificate(
    server_factory: Callable[..., RunningServer], tmp_path: Path,
) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    certificate.private_key_pem.write_to_path(str(key_file))
    certificate.cert_chain_pems[0].write_to_path(str(cert_file))
    server = server_factory(tls_certificate=str(cert_file), tls_key=str(key_file))
    assert server.url.startswith("https://")
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    with httpx.Client(verify=trusted, timeout=10) as http1:
        assert http1.get(f"{server.url}/info").json()["KsqlServerInfo"]["serverStatus"] == "RUNNING"
    with httpx.Client(verify=trusted, http2=True, timeout=10) as http2:
        answer = http2.get(f"{server.url}/info")
        assert answer.http_version == "HTTP/2" and answer.status_code == 200
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
        httpx.get(f"{server.url}/info", timeout=10)


def test_a_request_body_over_the_limit_is_refused(server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(max_request_bytes=2_000)
    answer = httpx.post(f"{server.url}/ksql", json={"ksql": "SHOW STREAMS; " * 400}, timeout=10)
    assert answer.status_code == 413 and answer.json()["error_code"] == 41300


def test_secret_properties_are_masked_in_what_the_server_answers(server: RunningServer) -> None:
    answer = httpx.post(f"{server.url}/ksql", json={
        "ksql": "SHOW PROPERTIES;", "streamsProperties": {"ssl.key.password": "t0p-s3cret"}}, timeout=10)
    assert answer.status_code == 200
    assert "t0p-s3cret" not in answer.text
