"""The prefork pool's messages round-trip every field of a job and of an
outcome: both travel as hand-written tuples (``fields()``), and a field
left out of one would be lost between the processes without a word."""

from __future__ import annotations

import dataclasses

from leveret.client.worker.execute import Job, Outcome, RawMessage, RetryPlan
from leveret.client.worker.pools import pipes


def _round_trip(kind: int, obj: Job | Outcome) -> object:
    buffer = bytearray(pipes.job_message(obj) if isinstance(obj, Job)
                       else pipes.outcome_message(obj))
    [(got_kind, value)] = list(pipes.split(buffer))
    assert got_kind == kind and not buffer
    return value


def _distinct_values(cls: type) -> dict[str, object]:
    """A value for every field that differs from its default."""
    values: dict[str, object] = {}
    for number, f in enumerate(dataclasses.fields(cls)):
        if f.name == '_request':
            continue
        values[f.name] = {'field': f.name, 'n': number}
    return values


def test_a_job_keeps_every_field_but_its_request_cache():
    values = _distinct_values(Job)
    values['raw'] = RawMessage(b'\x00\x00\x00\x00', b'[[], {}, {}]', {'reply_to': 'r'})
    job = Job(**values)
    job.request  # noqa: B018 - fill the cache, which is not sent
    got = _round_trip(pipes.JOB, job)
    assert isinstance(got, Job)
    for name, value in values.items():
        assert getattr(got, name) == value, name
    assert got._request is None


def test_an_outcome_keeps_every_field():
    values = _distinct_values(Outcome)
    values['retry'] = RetryPlan('2026-12-02T00:00:00+00:00', [1], {'a': 2}, {'queue': 'q'},
                                republish=False)
    values['error'] = ValueError('lost')
    got = _round_trip(pipes.OUTCOME, Outcome(**values))
    assert isinstance(got, Outcome)
    for name, value in values.items():
        if name == 'error':
            assert type(got.error) is ValueError and got.error.args == ('lost',)
        else:
            assert getattr(got, name) == value, name
