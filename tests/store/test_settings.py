from pathlib import Path

from hub.config.settings import load_settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key in ("SERVICEHUB_DATA_DIR", "SERVICEHUB_DATABASE_URL", "SERVICEHUB_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    s = load_settings()
    assert s.data_dir == (tmp_path / "data").resolve()
    assert s.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'servicehub.db'}"
    assert (s.host, s.port) == ("127.0.0.1", 8080)


def test_environment_wins_over_toml_file(monkeypatch, tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('data_dir = "/srv/hub"\nport = 9000\nreopen_window_days = 3\nlog_channels = ["api"]\n')
    monkeypatch.setenv("SERVICEHUB_CONFIG", str(config))
    monkeypatch.setenv("SERVICEHUB_PORT", "9100")
    monkeypatch.setenv("SERVICEHUB_DATABASE_URL", "postgresql://hub@db/hub")
    s = load_settings()
    assert s.data_dir == Path("/srv/hub")
    assert s.port == 9100
    assert s.reopen_window_days == 3
    assert s.log_channels == ["api"]
    assert s.effective_database_url == "postgresql://hub@db/hub"


def test_servicehub_toml_in_the_working_directory_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVICEHUB_CONFIG", raising=False)
    monkeypatch.delenv("SERVICEHUB_MAX_REQUEST_BYTES", raising=False)
    (tmp_path / "servicehub.toml").write_text("max_request_bytes = 2048\n")
    assert load_settings().max_request_bytes == 2048
