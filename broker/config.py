"""Broker settings: defaults < TOML file < ``LEVERET_*`` environment < CLI flags.

pydantic-settings reads and validates every source, so a bad value from
any of them is a clear error naming the setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def default_data_dir() -> Path:
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'share')
    return Path(base) / 'leveret'


class UserSettings(BaseModel):
    """A user besides the default one (``[[users]]`` in the TOML file)."""

    model_config = {'extra': 'forbid'}

    name: str = Field(min_length=1)
    password: str = Field(min_length=1)
    #: The vhosts this user may open (created if no other setting names them).
    vhosts: list[str] = Field(default_factory=lambda: ['/'], min_length=1)
    tags: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix='LEVERET_', extra='forbid')

    host: str = Field('127.0.0.1', description='address to listen on')
    port: int = Field(5672, ge=0, le=65535, description='AMQP port (0: any free port)')
    data_dir: Path = Field(default_factory=default_data_dir,
                           description='directory for definitions and messages')
    log_level: Literal['debug', 'info', 'warning', 'error'] = 'info'
    heartbeat: int = Field(60, ge=0, le=65535, description='heartbeat offered, seconds')
    frame_max: int = Field(131072, ge=4096, description='largest frame offered, bytes')
    channel_max: int = Field(2047, ge=1, le=65535)
    default_user: str = 'guest'
    default_pass: str = 'guest'
    default_vhost: str = '/'
    #: Users that may log in from loopback addresses only (RabbitMQ's loopback_users).
    loopback_users: list[str] = Field(default_factory=lambda: ['guest'])
    #: Virtual hosts besides the default one.
    vhosts: list[str] = Field(default_factory=list)
    #: Users besides the default one.
    users: list[UserSettings] = Field(default_factory=list)
    fsync: bool = Field(True, description='fsync persistent messages before confirming')
    #: Size at which the message log starts a new segment file.
    segment_size: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    #: Message bytes held above which publishers are blocked (0: 40% of RAM).
    memory_high_watermark: int = Field(0, ge=0)
    #: Largest message body accepted, bytes (RabbitMQ's max_message_size).
    max_message_size: int = Field(128 * 1024 * 1024, ge=1, le=512 * 1024 * 1024)
    #: Prometheus metrics (``/metrics``, ``/metrics/per-object``) on a port of their own.
    prometheus_enabled: bool = Field(True, description='serve Prometheus metrics')
    prometheus_host: str = Field('127.0.0.1', description='address of the metrics listener')
    prometheus_port: int = Field(15692, ge=0, le=65535,
                                 description='metrics port (0: any free port)')
    #: The web dashboard at / of the management port (with the API).
    dashboard_enabled: bool = Field(True, description='serve the web dashboard')
    #: Count Celery tasks per name and queue from the headers of the messages.
    celery_accounting: bool = Field(True, description='Celery-aware accounting')
    #: Distinct task names counted; the rest are counted as ``other``.
    celery_task_names: int = Field(500, ge=1, le=100_000)
    #: The management HTTP API (RabbitMQ's, on its port).
    management_enabled: bool = True
    management_host: str = '127.0.0.1'
    management_port: int = Field(15672, ge=0, le=65535,
                                 description='management API port (0: any free port)')
    #: A definitions file (RabbitMQ's JSON format) applied at every start.
    load_definitions: Path | None = None

    @model_validator(mode='after')
    def _users_are_distinct(self) -> Settings:
        seen = {self.default_user}
        for user in self.users:
            if user.name in seen:
                raise ValueError(f'user {user.name!r} is defined twice')
            seen.add(user.name)
        return self

    def all_vhosts(self) -> list[str]:
        """Every vhost the settings name, the default one first."""
        names = [self.default_vhost, *self.vhosts,
                 *(vhost for user in self.users for vhost in user.vhosts)]
        return list(dict.fromkeys(names))


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (TOML), the environment and ``overrides``."""
    config_file = config_file or os.environ.get('LEVERET_CONFIG')
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f'config file not found: {config_file}')
    toml_path = Path(config_file) if config_file else None

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
            return tuple(sources)

    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings.model_validate(_FromFile(**values).model_dump())
