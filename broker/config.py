"""Broker settings: defaults < TOML file < ``LEVERET_*`` environment < CLI flags.

pydantic-settings reads and validates every source.  What cannot be used
becomes a :class:`SettingsProblem` whose text is one line per problem,
naming where the bad value came from (the file with its line and column,
the ``LEVERET_*`` variable, or the flag) and what was expected.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

ENV_PREFIX = 'LEVERET_'
#: The command-line flag of each setting that has one.
FLAGS = {'host': '--host', 'port': '--port', 'data_dir': '--data-dir',
         'log_level': '--log-level', 'management_host': '--management-host',
         'management_port': '--management-port', 'prometheus_port': '--prometheus-port'}


class SettingsProblem(ValueError):
    """Settings that cannot be used; the text says where and why."""


def default_data_dir() -> Path:
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'share')
    return Path(base) / 'leveret'


class PermissionSettings(BaseModel):
    """A user's permission entry on one vhost: RabbitMQ's three regular
    expressions, ``.*`` each unless given (as ``set_permissions`` examples)."""

    model_config = {'extra': 'forbid'}

    configure: str = '.*'
    write: str = '.*'
    read: str = '.*'

    @model_validator(mode='after')
    def _patterns_compile(self) -> PermissionSettings:
        for kind in ('configure', 'write', 'read'):
            try:
                re.compile(getattr(self, kind))
            except re.error as exc:
                raise ValueError(f'{kind}: invalid regular expression '
                                 f'{getattr(self, kind)!r}: {exc}') from None
        return self


class UserSettings(BaseModel):
    """A user besides the default one (``[[users]]`` in the TOML file)."""

    model_config = {'extra': 'forbid'}

    name: str = Field(min_length=1)
    #: The password in clear text, or ``password_hash`` (RabbitMQ's salted
    #: SHA-256, base64, as ``rabbitmqctl hash_password`` and definitions give it).
    password: str | None = Field(None, min_length=1)
    password_hash: str | None = Field(None, min_length=1)
    #: The vhosts this user may open with every permission (created if no
    #: other setting names them); ``["/"]`` unless ``permissions`` names some.
    vhosts: list[str] | None = Field(None, min_length=1)
    #: Per vhost, the permission entry (such a vhost needs not be in ``vhosts``).
    permissions: dict[str, PermissionSettings] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode='after')
    def _one_password(self) -> UserSettings:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError(f"user {self.name!r} needs a password or a password_hash "
                             f"(one of them)")
        if self.password_hash is not None and not _valid_hash(self.password_hash):
            raise ValueError(f"user {self.name!r}: password_hash is not a RabbitMQ "
                             f"salted SHA-256 hash (base64 of 36 bytes)")
        return self

    def permission_entries(self) -> dict[str, PermissionSettings]:
        """Every vhost this user may open, with its permission entry."""
        if self.vhosts is not None:
            vhosts = self.vhosts
        else:
            vhosts = [] if self.permissions else ['/']
        entries = {vhost: PermissionSettings() for vhost in vhosts}
        entries.update(self.permissions)
        return entries


def _valid_hash(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 36
    except (binascii.Error, ValueError):
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra='forbid')

    host: str = Field('127.0.0.1', description='address to listen on')
    port: int = Field(5672, ge=0, le=65535, description='AMQP port (0: any free port)')
    data_dir: Path = Field(default_factory=default_data_dir,
                           description='directory for definitions and messages')
    log_level: Literal['debug', 'info', 'warning', 'error'] = Field(
        'info', description='debug, info, warning or error')
    heartbeat: int = Field(60, ge=0, le=65535, description='heartbeat offered, seconds')
    frame_max: int = Field(131072, ge=4096, description='largest frame offered, bytes')
    channel_max: int = Field(2047, ge=1, le=65535, description='most channels per connection')
    default_user: str = Field('guest', description='the user created at start')
    default_pass: str = Field('guest', description="the default user's password")
    default_vhost: str = Field('/', description='the vhost created at start')
    loopback_users: list[str] = Field(
        default_factory=lambda: ['guest'],
        description='users that may log in from loopback addresses only')
    vhosts: list[str] = Field(default_factory=list,
                              description='virtual hosts besides the default one')
    users: list[UserSettings] = Field(
        default_factory=list,
        description='users besides the default one: name, password, vhosts, tags')
    fsync: bool = Field(True, description='fsync persistent messages before confirming')
    segment_size: int = Field(16 * 1024 * 1024, ge=64 * 1024,
                              description='size at which the message log starts a new file')
    memory_high_watermark: int = Field(
        0, ge=0, description='process memory above which publishers are blocked, bytes '
                             '(0: 40% of RAM)')
    max_message_size: int = Field(128 * 1024 * 1024, ge=1, le=512 * 1024 * 1024,
                                  description='largest message body accepted, bytes')
    # --- limits that keep one client from hurting the rest ---
    #: Most consumers on one channel (RabbitMQ's consumer_max_per_channel; 0: none).
    consumer_max_per_channel: int = Field(16384, ge=0)
    #: Most unacked deliveries on a channel whose consumers set no prefetch
    #: (0: none); the largest prefetch a client may ask for is 65535.
    unacked_max_per_channel: int = Field(65535, ge=0)
    #: Defaults of RabbitMQ's vhost and user limits where none is set at run
    #: time (-1: no limit).
    vhost_max_connections: int = Field(-1, ge=-1)
    vhost_max_queues: int = Field(-1, ge=-1)
    user_max_connections: int = Field(-1, ge=-1)
    user_max_queues: int = Field(-1, ge=-1)
    # --- TLS (amqps) ---
    #: Listen for plain AMQP on ``port`` (false: TLS only).
    plain_listener: bool = True
    #: The amqps listener: on ``tls_port`` once ``tls_certfile`` is set.
    tls_port: int = Field(5671, ge=0, le=65535, description='amqps port (0: any free port)')
    tls_certfile: Path | None = None
    #: The private key (None: it is in ``tls_certfile``).
    tls_keyfile: Path | None = None
    tls_key_password: str | None = None
    #: CA certificates that client certificates are checked against.
    tls_cafile: Path | None = None
    #: ``verify_none``: no client certificate asked for; ``verify_peer``: one
    #: sent is checked, and required when ``tls_fail_if_no_peer_cert``.
    tls_verify: Literal['verify_none', 'verify_peer'] = 'verify_none'
    tls_fail_if_no_peer_cert: bool = False
    #: Offer SASL EXTERNAL on TLS connections with a verified client certificate.
    tls_external_auth: bool = True
    #: The user EXTERNAL logs in as: the certificate subject's CN, or its whole DN.
    tls_cert_login_from: Literal['common_name', 'distinguished_name'] = 'common_name'
    #: Prometheus metrics (``/metrics``, ``/metrics/per-object``) on a port of their own.
    prometheus_enabled: bool = Field(True, description='serve Prometheus metrics')
    prometheus_host: str = Field('127.0.0.1', description='address of the metrics listener')
    prometheus_port: int = Field(15692, ge=0, le=65535,
                                 description='metrics port (0: any free port)')
    #: Serve plain HTTP on ``prometheus_port`` (false: HTTPS only).
    prometheus_plain_listener: bool = True
    #: HTTPS for the metrics on ``prometheus_tls_port`` once
    #: ``prometheus_tls_certfile`` is set (RabbitMQ's ``prometheus.ssl.*``).
    prometheus_tls_port: int = Field(15691, ge=0, le=65535)
    prometheus_tls_certfile: Path | None = None
    prometheus_tls_keyfile: Path | None = None
    prometheus_tls_key_password: str | None = None
    prometheus_tls_cafile: Path | None = None
    prometheus_tls_verify: Literal['verify_none', 'verify_peer'] = 'verify_none'
    prometheus_tls_fail_if_no_peer_cert: bool = False
    #: The web dashboard at / of the management port (with the API).
    dashboard_enabled: bool = Field(True, description='serve the web dashboard')
    #: Count Celery tasks per name and queue from the headers of the messages.
    celery_accounting: bool = Field(True, description='Celery-aware accounting')
    #: Distinct task names counted; the rest are counted as ``other``.
    celery_task_names: int = Field(500, ge=1, le=100_000)
    management_enabled: bool = Field(True, description="the management HTTP API "
                                                       "(RabbitMQ's, on its port)")
    management_host: str = Field('127.0.0.1', description='address the management API '
                                                          'listens on')
    management_port: int = Field(15672, ge=0, le=65535,
                                 description='management API port (0: any free port)')
    #: Serve plain HTTP on ``management_port`` (false: HTTPS only).
    management_plain_listener: bool = True
    #: HTTPS for the management API, on ``management_tls_port`` once
    #: ``management_tls_certfile`` is set (the same settings as the amqps ones).
    management_tls_port: int = Field(15671, ge=0, le=65535)
    management_tls_certfile: Path | None = None
    management_tls_keyfile: Path | None = None
    management_tls_key_password: str | None = None
    management_tls_cafile: Path | None = None
    management_tls_verify: Literal['verify_none', 'verify_peer'] = 'verify_none'
    management_tls_fail_if_no_peer_cert: bool = False
    load_definitions: Path | None = Field(
        None, description="a definitions file (RabbitMQ's JSON format) applied at every start")

    @model_validator(mode='after')
    def _tls_is_whole(self) -> Settings:
        for prefix in ('tls', 'management_tls', 'prometheus_tls'):
            verify = getattr(self, f'{prefix}_verify')
            if verify == 'verify_peer' and getattr(self, f'{prefix}_cafile') is None:
                raise ValueError(f'{prefix}_verify = verify_peer needs {prefix}_cafile (the CA '
                                 f'that client certificates are checked against)')
            if getattr(self, f'{prefix}_fail_if_no_peer_cert') and verify != 'verify_peer':
                raise ValueError(f'{prefix}_fail_if_no_peer_cert needs {prefix}_verify = '
                                 f'verify_peer')
        if not self.plain_listener and self.tls_certfile is None:
            raise ValueError('plain_listener is false and no tls_certfile is set: the broker '
                             'would not listen at all')
        if (self.management_enabled and not self.management_plain_listener
                and self.management_tls_certfile is None):
            raise ValueError('management_plain_listener is false and no '
                             'management_tls_certfile is set')
        if (self.prometheus_enabled and not self.prometheus_plain_listener
                and self.prometheus_tls_certfile is None):
            raise ValueError('prometheus_plain_listener is false and no '
                             'prometheus_tls_certfile is set')
        return self

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
                 *(vhost for user in self.users for vhost in user.permission_entries())]
        return list(dict.fromkeys(names))


def defaults() -> list[tuple[str, str, Any, str]]:
    """Every setting: name, environment variable, default, description."""
    out = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        out.append((name, (ENV_PREFIX + name).upper(), default, field.description or ''))
    return out


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (TOML), the environment and ``overrides``.

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`SettingsProblem` for anything else that cannot be used.
    """
    config_file = config_file or os.environ.get('LEVERET_CONFIG')
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f'config file not found: {config_file}')
    toml_path = Path(config_file) if config_file else None
    in_file = _read_toml(toml_path) if toml_path is not None else {}

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
    try:
        return Settings.model_validate(_FromFile(**values).model_dump())
    except SettingsError as exc:
        raise SettingsProblem(_environment_problem(exc)) from None
    except ValidationError as exc:
        raise SettingsProblem('\n'.join(
            _problem(error, values, in_file, toml_path) for error in exc.errors())) from None


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's settings, or one line naming the file, line and column."""
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        where = re.search(r' \(at line (\d+), column (\d+)\)$', text)
        if where is not None:
            text = text[:where.start()]
            raise SettingsProblem(f'{path}:{where[1]}:{where[2]}: {text}') from None
        raise SettingsProblem(f'{path}: {text}') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsProblem(f'{path}: cannot read it: {exc}') from None


def _source(field: str, overrides: dict[str, Any], in_file: dict[str, Any],
            toml_path: Path | None) -> str:
    """Where the value of ``field`` came from, by precedence."""
    if field in overrides:
        return FLAGS.get(field, field)
    variable = (ENV_PREFIX + field).upper()
    if any(name.upper() == variable for name in os.environ):
        return variable
    if field in in_file and toml_path is not None:
        return str(toml_path)
    return 'the defaults'


def _problem(error: Any, overrides: dict[str, Any], in_file: dict[str, Any],
             toml_path: Path | None) -> str:
    loc = error.get('loc') or ()
    if not loc:     # a check across settings (users defined twice, say)
        origin = str(toml_path) if toml_path is not None else 'the settings'
        return f'{origin}: {_message(error)}'
    field = str(loc[0])
    path = field + ''.join(f'[{part}]' if isinstance(part, int) else f'.{part}'
                           for part in loc[1:])
    if error.get('type') == 'extra_forbidden':
        return f'{_source(field, overrides, in_file, toml_path)}: unknown setting {path!r}'
    got = '' if error.get('type') == 'missing' else f" (got {error.get('input')!r})"
    return f'{_source(field, overrides, in_file, toml_path)}: {path}: {_message(error)}{got}'


def _message(error: Any) -> str:
    message = str(error.get('msg', 'invalid'))
    return message.removeprefix('Value error, ')


#: What a LEVERET_* variable of a setting that is not a plain value holds.
_JSON_EXAMPLES = {
    'users': '[{"name": "app", "password": "s3cret", "vhosts": ["/"]}]',
    'vhosts': '["reports", "billing"]',
    'loopback_users': '["guest"]',
}


def _environment_problem(exc: SettingsError) -> str:
    found = re.search(r'field "(\w+)"', str(exc))
    field = found[1] if found else '?'
    variable = (ENV_PREFIX + field).upper()
    cause = exc.__cause__ or exc.__context__
    example = _JSON_EXAMPLES.get(field, '')
    expected = f'JSON, such as {example}' if example else 'JSON'
    return f'{variable}: expected {expected}' + (f' ({cause})' if cause else '')
