"""Chunk store URLs: what each names, and a clear refusal of what names no store."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from audio.stores import ChunkStoreUrlError, chunk_store_url, open_chunk_store
from tstore.commands.common import settings as command_settings
from tstore.logging import Redactor
from tstore.settings import Settings


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("file:///srv/chunks", "file:///srv/chunks"),
        ("file://localhost/srv/chunks/", "file:///srv/chunks"),
        ("file:///srv/a%20b", "file:///srv/a%20b"),
        ("s3://bucket", "s3://bucket/"),
        ("s3://bucket/calls/", "s3://bucket/calls"),
        ("S3://bucket/calls", "s3://bucket/calls"),
        ("gs://bucket/a/b", "gs://bucket/a/b"),
        ("az://container/calls", "az://container/calls"),
    ],
)
def test_urls_name_folders_and_buckets(url: str, canonical: str) -> None:
    assert chunk_store_url(url) == canonical


def test_a_plain_path_is_a_local_folder_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert chunk_store_url("chunks dir") == (tmp_path / "chunks dir").as_uri()
    assert chunk_store_url(str(tmp_path)) == tmp_path.as_uri()


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1))
def test_a_canonical_url_names_the_same_store_again(name: str) -> None:
    for url in (Path("/srv", name.replace("/", "_")).as_uri(), f"s3://bucket/{name}"):
        try:
            canonical = chunk_store_url(url)
        except ChunkStoreUrlError:
            continue
        assert chunk_store_url(canonical) == canonical


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://host/chunks", "unknown scheme 'ftp'"),
        ("http://host/chunks", "unknown scheme 'http'"),
        ("", "empty chunk store URL"),
        ("s3://", "names no bucket"),
        ("s3://bucket/calls?region=eu", "not from the URL"),
        ("file://otherhost/srv", "absolute local path"),
    ],
)
def test_urls_that_name_no_store_are_refused_saying_why(url: str, says: str) -> None:
    with pytest.raises(ChunkStoreUrlError, match=says):
        chunk_store_url(url)


def test_credentials_in_a_url_are_refused_without_being_repeated() -> None:
    with pytest.raises(ChunkStoreUrlError, match="from the environment") as caught:
        chunk_store_url("s3://AKIDEXAMPLE:wJalrXUtnFEMI@bucket/calls")
    assert "wJalrXUtnFEMI" not in str(caught.value)
    assert "s3://bucket/calls" in str(caught.value)


@pytest.mark.parametrize("key", ["", "/abs/x.wav", "a//b.wav", "a/../b.wav", "./a.wav", "a\\b"])
def test_a_chunk_key_must_be_a_plain_relative_path(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk key"):
        open_chunk_store(tmp_path.as_uri()).put(key, b"x")


def test_cloud_stores_open_without_reaching_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_chunk_store("s3://bucket/calls").url == "s3://bucket/calls"
    assert open_chunk_store("gs://bucket/calls").url == "gs://bucket/calls"
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "devaccount")
    assert open_chunk_store("az://container/calls").url == "az://container/calls"


def test_an_azure_store_without_its_account_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    with pytest.raises(ChunkStoreUrlError, match="Account must be specified"):
        open_chunk_store("az://container/calls")


def test_the_setting_defaults_to_the_data_dir_and_is_held_canonical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TSTORE_CHUNK_STORE", raising=False)
    monkeypatch.delenv("TSTORE_DATA_DIR", raising=False)
    assert Settings().chunks == (tmp_path / "data" / "chunks").as_uri()
    monkeypatch.setenv("TSTORE_CHUNK_STORE", "s3://bucket/calls/")
    assert Settings().chunks == "s3://bucket/calls"


def test_a_bad_setting_is_one_line_naming_tstore_chunk_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSTORE_CHUNK_STORE", "ftp://host/chunks")
    with pytest.raises(typer.Exit):
        command_settings()
    error = capsys.readouterr().err
    assert "TSTORE_CHUNK_STORE" in error
    assert "unknown scheme 'ftp'" in error
    assert "Traceback" not in error


def test_store_credentials_in_the_environment_never_reach_a_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "bWFkZS11cC1henVyZS1rZXk=")
    redact = Redactor(Settings().secrets)
    line = redact.mask("signing with wJalrXUtnFEMI/K7MDENG and bWFkZS11cC1henVyZS1rZXk=")
    assert "wJalrXUtnFEMI" not in line
    assert "bWFkZS11" not in line
