"""Users and vhosts besides the default ones, from the settings."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from leveret.broker.config import load_settings

CONFIG = '''
vhosts = ["shared"]

[[users]]
name = "app"
password = "s3cret"
vhosts = ["apps", "shared"]

[[users]]
name = "reports"
password = "r3ports"
'''


def url(broker, user: str, password: str, vhost: str) -> str:
    return f'amqp://{user}:{password}@127.0.0.1:{broker.port}/{vhost.replace("/", "%2F")}'


def test_configured_users_open_their_vhosts_and_only_those(broker_factory, tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text(CONFIG)
    broker = broker_factory(args=['--config', str(config)]).start()
    for vhost in ('apps', 'shared'):
        with pika.BlockingConnection(pika.URLParameters(url(broker, 'app', 's3cret', vhost))) \
                as conn:
            ch = conn.channel()
            ch.queue_declare('q')
            ch.basic_publish('', 'q', vhost.encode())
    with pika.BlockingConnection(pika.URLParameters(url(broker, 'reports', 'r3ports', '/'))) \
            as conn:
        # Vhosts are separate: the default vhost has no queue 'q'.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare('q', passive=True)
        assert info.value.reply_code == 404
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(url(broker, 'reports', 'r3ports', 'apps')))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(url(broker, 'app', 'wrong', 'apps')))
    assert "access to vhost 'apps' refused for user 'reports'" in broker.log()


def test_after_the_first_start_the_saved_users_win_over_the_settings(broker_factory, tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text(CONFIG)
    broker = broker_factory(args=['--config', str(config)]).start()
    with pika.BlockingConnection(pika.URLParameters(url(broker, 'reports', 'r3ports', '/'))):
        pass
    with pika.BlockingConnection(pika.URLParameters(url(broker, 'app', 's3cret', 'shared'))) \
            as conn:
        conn.channel().queue_declare('kept', durable=True)
    assert broker.stop() == 0
    # 'reports' removed from the settings, 'app' given another password.
    config.write_text(CONFIG.split('[[users]]\nname = "reports"')[0].replace('s3cret', 'n3w'))
    broker.start(port=broker.port)
    with pika.BlockingConnection(pika.URLParameters(url(broker, 'reports', 'r3ports', '/'))):
        pass
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(url(broker, 'app', 'n3w', 'shared')))
    with pika.BlockingConnection(pika.URLParameters(url(broker, 'app', 's3cret', 'shared'))) \
            as conn:
        conn.channel().queue_declare('kept', passive=True)    # the rest remains
    assert "settings user 'app' differs from the saved one" in broker.log()


def test_a_user_defined_twice_is_refused(tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text(CONFIG + '\n[[users]]\nname = "app"\npassword = "x"\n')
    with pytest.raises(ValueError, match="user 'app' is defined twice"):
        load_settings(config)


def test_a_user_without_a_password_is_refused(tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text('[[users]]\nname = "app"\n')
    with pytest.raises(ValueError, match='password'):
        load_settings(config)
