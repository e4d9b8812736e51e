"""load_config: defaults, file, environment, flags (README.md, "Configuration"); its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandcat.config import ENVIRONMENT, Config, ServerConfig, load_config
from sandcat.errors import ConfigError


def write(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "sandcat.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def config_error(**kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(**kwargs)  # type: ignore[arg-type]
    return caught.value


def test_defaults_match_the_operations_contract() -> None:
    config = load_config()
    assert config == Config()
    assert config.server.host == "127.0.0.1"
    assert config.server.ws_port == 50000
    assert config.server.http_port == 50001
    assert config.server.data_dir == "./sandcat-data"
    assert config.data_path == Path("./sandcat-data")
    assert config.backends.database_url == ""
    assert config.backends.sqlite_synchronous == "FULL"
    assert config.chat.dm_policy == "friends"
    assert config.ws_url == "ws://127.0.0.1:50000/ws"


def test_the_environment_mapping_covers_every_documented_variable() -> None:
    documented = {
        "SANDCAT_DATA_DIR",
        "SANDCAT_HOST",
        "SANDCAT_WS_PORT",
        "SANDCAT_HTTP_PORT",
        "SANDCAT_DATABASE_URL",
        "SANDCAT_REDIS_URL",
        "SANDCAT_KAFKA_BOOTSTRAP",
        "SANDCAT_MONGO_URL",
        "SANDCAT_S3_URL",
    }
    assert documented <= set(ENVIRONMENT)


def test_file_values_are_read_and_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [server]
        host = "10.0.0.1"
        ws_port = 6000
        drain_timeout_s = 2
        [backends]
        sqlite_synchronous = "NORMAL"
        [auth]
        email_verification = true
        [pipeline]
        batch_window_ms = 1.5
        [chat]
        dm_policy = "anyone"
        """,
    )
    config = load_config(file=path)
    assert config.server.host == "10.0.0.1"
    assert config.server.ws_port == 6000
    # An integer in the file is fine where a float is expected, and becomes one.
    assert config.server.drain_timeout_s == 2.0
    assert isinstance(config.server.drain_timeout_s, float)
    assert config.backends.sqlite_synchronous == "NORMAL"
    assert config.auth.email_verification is True
    assert config.pipeline.batch_window_ms == 1.5
    assert config.chat.dm_policy == "anyone"
    # Untouched keys keep their defaults.
    assert config.server.http_port == 50001


def test_every_environment_variable_lands_on_its_key() -> None:
    env = {
        "SANDCAT_DATA_DIR": "/srv/sandcat",
        "SANDCAT_HOST": "::1",
        "SANDCAT_WS_PORT": "7000",
        "SANDCAT_HTTP_PORT": "7001",
        "SANDCAT_DATABASE_URL": "sqlite:///tmp/x.db",
        "SANDCAT_REDIS_URL": "redis://r:6379",
        "SANDCAT_KAFKA_BOOTSTRAP": "k:9092",
        "SANDCAT_MONGO_URL": "mongodb://m",
        "SANDCAT_S3_URL": "s3://KEY:SECRET@h:9000/b",
        "UNRELATED": "ignored",
    }
    config = load_config(env=env)
    assert config.server.data_dir == "/srv/sandcat"
    assert config.server.host == "::1"
    assert (config.server.ws_port, config.server.http_port) == (7000, 7001)
    assert config.backends.database_url == "sqlite:///tmp/x.db"
    assert config.backends.redis_url == "redis://r:6379"
    assert config.backends.kafka_bootstrap == "k:9092"
    assert config.backends.mongo_url == "mongodb://m"
    assert config.backends.s3_url == "s3://KEY:SECRET@h:9000/b"


def test_sandcat_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nws_port = 6100\n")
    assert load_config(env={"SANDCAT_CONFIG": path}).server.ws_port == 6100
    # An explicit file (the --config flag) wins over $SANDCAT_CONFIG.
    other = tmp_path / "other.toml"
    other.write_text("[server]\nws_port = 6200\n")
    assert load_config(file=str(other), env={"SANDCAT_CONFIG": path}).server.ws_port == 6200


def test_precedence_is_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nws_port = 1\nhttp_port = 2\nhost = 'file-host'\n")
    env = {"SANDCAT_CONFIG": path, "SANDCAT_WS_PORT": "10", "SANDCAT_HTTP_PORT": "20"}
    config = load_config(env=env, overrides={"server.ws_port": 100})
    assert config.server.ws_port == 100  # flag
    assert config.server.http_port == 20  # environment over file
    assert config.server.host == "file-host"  # file over default
    assert config.server.data_dir == "./sandcat-data"  # default


def test_environment_values_are_parsed_from_strings() -> None:
    # Only a few keys have variables; overrides given as strings go through the same parser.
    config = load_config(
        overrides={
            "auth.email_verification": "Yes",
            "server.drain_timeout_s": "0.5",
            "pipeline.max_batch": " 64 ",
        }
    )
    assert config.auth.email_verification is True
    assert config.server.drain_timeout_s == 0.5
    assert config.pipeline.max_batch == 64
    assert (
        load_config(overrides={"auth.email_verification": "off"}).auth.email_verification is False
    )


@pytest.mark.parametrize(
    ("kwargs", "key", "value"),
    [
        ({"env": {"SANDCAT_WS_PORT": "abc"}}, "server.ws_port", "abc"),
        ({"env": {"SANDCAT_WS_PORT": "65536"}}, "server.ws_port", "65536"),
        ({"env": {"SANDCAT_HTTP_PORT": "-1"}}, "server.http_port", "-1"),
        ({"env": {"SANDCAT_HTTP_PORT": "80.5"}}, "server.http_port", "80.5"),
        ({"overrides": {"server.ws_port": True}}, "server.ws_port", True),
        ({"overrides": {"server.ws_port": 1.0}}, "server.ws_port", 1.0),
        ({"overrides": {"server.host": 5}}, "server.host", 5),
        ({"overrides": {"server.drain_timeout_s": False}}, "server.drain_timeout_s", False),
        ({"overrides": {"server.drain_timeout_s": "soon"}}, "server.drain_timeout_s", "soon"),
        ({"overrides": {"server.drain_timeout_s": "nan"}}, "server.drain_timeout_s", "nan"),
        ({"overrides": {"server.drain_timeout_s": "inf"}}, "server.drain_timeout_s", "inf"),
        ({"overrides": {"auth.access_ttl_s": 29}}, "auth.access_ttl_s", 29),
        ({"overrides": {"auth.email_verification": "maybe"}}, "auth.email_verification", "maybe"),
        ({"overrides": {"auth.email_verification": 1}}, "auth.email_verification", 1),
        ({"overrides": {"chat.dm_policy": "everyone"}}, "chat.dm_policy", "everyone"),
        (
            {"overrides": {"backends.sqlite_synchronous": "full"}},
            "backends.sqlite_synchronous",
            "full",
        ),
        ({"overrides": {"server.colour": "red"}}, "server.colour", "red"),
        ({"overrides": {"nosuch.key": 1}}, "nosuch", None),
        ({"overrides": {"server": 1}}, "server", 1),
    ],
)
def test_a_bad_value_names_the_key_and_the_value(
    kwargs: dict[str, object], key: str, value: object
) -> None:
    error = config_error(**kwargs)
    assert error.key == key
    assert error.value == value or (error.value is value)
    assert key in str(error)
    assert repr(value) in str(error)


def test_out_of_range_says_the_range() -> None:
    error = config_error(overrides={"gateway.max_frame_bytes": 10})
    assert "between 1024" in error.reason


def test_literal_error_lists_the_choices() -> None:
    error = config_error(overrides={"chat.dm_policy": "everyone"})
    assert "friends" in error.reason
    assert "anyone" in error.reason


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[sever]\nhost = 'x'\n", "sever"),
        ("[server]\nhots = 'x'\n", "server.hots"),
        ("[server]\nws_port = [80]\n", "server.ws_port"),
        ("[server]\nws_port = true\n", "server.ws_port"),
        ("[server]\nws_port = 70000\n", "server.ws_port"),
        ("[server]\nws_port = 1.5\n", "server.ws_port"),
        ("[server]\ndrain_timeout_s = nan\n", "server.drain_timeout_s"),
        ("[auth]\nemail_verification = 'perhaps'\n", "auth.email_verification"),
        ("[chat]\ndm_policy = 'all'\n", "chat.dm_policy"),
        ("server = 1\n", "server"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    error = config_error(file=write(tmp_path, text))
    assert error.key == key
    assert key in str(error)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    error = config_error(file=missing)
    assert error.key == "config"
    assert error.value == missing
    assert "cannot read" in error.reason
    error = config_error(env={"SANDCAT_CONFIG": str(tmp_path)})
    assert "cannot read" in error.reason


def test_invalid_toml_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nhost = \n")
    error = config_error(file=path)
    assert (error.key, error.value) == ("config", path)
    assert "invalid TOML" in error.reason


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xff\xfe[server]\n")
    error = config_error(file=path)
    assert (error.key, error.value) == ("config", path)
    assert "invalid TOML" in error.reason


def test_config_is_frozen() -> None:
    config = load_config()
    with pytest.raises(AttributeError):
        config.server.host = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "ws://127.0.0.1:5000/ws"),
        ("example.org", "ws://example.org:5000/ws"),
        ("::1", "ws://[::1]:5000/ws"),
        ("fe80::1", "ws://[fe80::1]:5000/ws"),
    ],
)
def test_ws_url_from_host_and_port(host: str, url: str) -> None:
    assert Config(server=ServerConfig(host=host, ws_port=5000)).ws_url == url


def test_public_ws_url_wins() -> None:
    config = load_config(
        overrides={"server.public_ws_url": "wss://chat.example.org/ws", "server.host": "::"}
    )
    assert config.ws_url == "wss://chat.example.org/ws"
