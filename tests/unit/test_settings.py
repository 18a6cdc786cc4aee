from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

from consumers.storage.clickhouse import embedded_path, normalize_dsn
from tstore import components
from tstore.commands.common import settings as command_settings
from tstore.components import ignored_nice, may_renice
from tstore.settings import Settings


def test_default_store_is_embedded_under_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSTORE_DATA_DIR", "somewhere")
    assert Settings().dsn == f"chdb://{Path('somewhere').resolve() / 'clickhouse'}"


def test_settings_come_from_tstore_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSTORE_TOPIC_PREFIX", "prod.")
    monkeypatch.setenv("TSTORE_CLICKHOUSE_DSN", "http://default:@clickhouse:8123")
    settings = Settings()
    assert settings.topics.turn_events == "prod.turn-events"
    assert settings.dsn == "http://default:@clickhouse:8123"


_UNKNOWN_SCHEME = "unknown scheme in {!r}: use chdb://, http://, https://"
_NOT_HOST_PORT = "not host:port[,host:port...] with ports 1-65535"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        *(
            ("TSTORE_CLICKHOUSE_DSN", dsn, _UNKNOWN_SCHEME.format(shown))
            for dsn, shown in [
                ("foo://x", "foo://x"),
                ("CHDB:///data/ch", "CHDB:///data/ch"),
                ("clickhouse://host:9000", "clickhouse://host:9000"),
                ("tcp://default:s3cret@host", "tcp://default:***@host"),
            ]
        ),
        # taken, a bootstrap like these stopped `tstore create-topics` with 137 lines
        ("TSTORE_KAFKA_BOOTSTRAP", "kafka:notaport", _NOT_HOST_PORT),
        ("TSTORE_KAFKA_BOOTSTRAP", "127.0.0.1:99999", _NOT_HOST_PORT),
        ("TSTORE_KAFKA_BOOTSTRAP", "http://k:9092", "give host:port, not a URL"),
    ],
)
def test_a_setting_no_client_can_take_is_refused_in_one_line_saying_why(
    variable: str,
    value: str,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(typer.Exit):
        command_settings()
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"bad setting: {variable}: {reason}")
    assert len(said.splitlines()) == 1
    assert "s3cret" not in said


def test_chunks_go_under_the_data_dir_unless_a_chunk_store_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TSTORE_CHUNK_STORE", raising=False)
    monkeypatch.setenv("TSTORE_DATA_DIR", str(tmp_path / "data"))
    assert Settings().chunks == (tmp_path / "data" / "chunks").as_uri()
    monkeypatch.setenv("TSTORE_CHUNK_STORE", "s3://bucket/calls")
    assert Settings().chunks == "s3://bucket/calls"


def test_a_bad_database_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSTORE_CLICKHOUSE_DATABASE", "x; DROP TABLE y")
    with pytest.raises(ValueError, match="clickhouse_database"):
        Settings()


def test_embedded_dsn_paths_are_made_absolute() -> None:
    assert normalize_dsn("chdb://data/ch") == f"chdb://{Path('data/ch').resolve()}"
    assert normalize_dsn("chdb:///abs/ch") == "chdb:///abs/ch"
    assert normalize_dsn("http://host:8123") == "http://host:8123"
    with pytest.raises(ValueError, match="needs a data path"):
        normalize_dsn("chdb://")


def test_only_an_embedded_dsn_has_a_data_path() -> None:
    assert embedded_path("chdb:///abs/ch") == Path("/abs/ch")
    assert embedded_path("http://user:pw@host:8123") is None
    assert embedded_path("https://host:8443") is None


def test_docker_compose_parses_and_only_sets_settings_that_exist() -> None:
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    used = {
        name.removeprefix("TSTORE_").lower()
        for service in compose["services"].values()
        for name in service.get("environment", {})
        if name.startswith("TSTORE_")
    }
    assert used, "docker-compose.yml configures no TSTORE_ settings"
    assert used <= set(Settings.model_fields), used - set(Settings.model_fields)


@pytest.mark.parametrize(
    ("field", "default", "taken", "refused"),
    [("projector_nice", 19, 0, -5), ("projector_nice_lag_s", 2.0, 0.5, 0)],
)
def test_the_projectors_priority_settings_are_bounded(
    monkeypatch: pytest.MonkeyPatch, field: str, default: float, taken: float, refused: float
) -> None:
    assert getattr(Settings(), field) == default
    monkeypatch.setenv(f"TSTORE_{field.upper()}", str(taken))
    assert getattr(Settings(), field) == taken
    monkeypatch.setenv(f"TSTORE_{field.upper()}", str(refused))
    with pytest.raises(ValueError, match=field):
        Settings()


@pytest.mark.parametrize(
    ("line", "holds"),
    [
        ("CapEff:\t000001ffffffffff", True),
        ("CapEff:\t000001fffe7fffff", False),  # root under setpriv --bounding-set=-sys_nice
        ("CapEff:\t0000000000000000", False),  # a user's process
        ("CapEff:\t0000000000800000", True),  # CAP_SYS_NICE alone
        ("CapPrm:\t0000000000800000", None),  # no effective set named
    ],
)
def test_cap_sys_nice_is_read_from_the_effective_set(line: str, holds: bool | None) -> None:
    assert may_renice(f"Name:\tpython\n{line}\nCapBnd:\t000001ffffffffff\n") is holds


def test_only_an_embedded_store_without_the_capability_ignores_the_nice_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(components, "may_renice", lambda status: False)
    assert ignored_nice(0, "chdb:///tmp/x") is None
    assert ignored_nice(19, "http://clickhouse:8123") is None
    said = ignored_nice(19, "chdb:///tmp/x")
    assert said is not None
    assert "TSTORE_PROJECTOR_NICE (19) has no effect" in said
    assert "CAP_SYS_NICE" in said
    assert "--cap-add=SYS_NICE" in said
    for holds in (True, None):
        monkeypatch.setattr(components, "may_renice", lambda status, holds=holds: holds)
        assert ignored_nice(19, "chdb:///tmp/x") is None
    monkeypatch.setattr(sys, "platform", "darwin")
    said = ignored_nice(19, "chdb:///tmp/x")
    assert said is not None
    assert "off Linux" in said
    assert "TSTORE_PROJECTOR_NICE=0" in said


def test_the_image_holds_every_package_the_wheel_does() -> None:
    """``pip install .`` in the Dockerfile fails on a package folder it was not given."""
    root = Path(__file__).parents[2]
    wheel = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    copied = re.findall(r"^COPY (\w+) \1$", (root / "Dockerfile").read_text(), re.MULTILINE)
    assert sorted(copied) == sorted(wheel["targets"]["wheel"]["packages"])
