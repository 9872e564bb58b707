"""Hypothesis strategies for AMQP values that pamqp accepts."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import strategies as st

# pamqp validates names against the spec's domain regex; stay inside it.
NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:'
names = st.text(alphabet=NAME_CHARS, max_size=127)
tags = st.integers(min_value=1, max_value=2**63 - 1)  # pamqp packs longlong signed
short_texts = st.text(max_size=20).filter(lambda s: len(s.encode()) <= 255)
#: Whole seconds: AMQP timestamps have no fraction.
timestamps = st.datetimes(min_value=datetime.datetime(1971, 1, 1),
                          max_value=datetime.datetime(2100, 1, 1)).map(
                              lambda d: d.replace(microsecond=0))


def property_sets(table_values: st.SearchStrategy[Any],
                  max_headers: int) -> st.SearchStrategy[dict[str, Any]]:
    """Basic properties, any of them absent, headers drawn from ``table_values``."""
    return st.fixed_dictionaries({}, optional={
        'content_type': short_texts,
        'content_encoding': short_texts,
        'headers': st.dictionaries(st.text(min_size=1, max_size=10), table_values,
                                   max_size=max_headers),
        'delivery_mode': st.sampled_from([1, 2]),
        'priority': st.integers(min_value=0, max_value=255),
        'correlation_id': short_texts,
        'reply_to': short_texts,
        'expiration': st.integers(min_value=0, max_value=10**9).map(str),
        'message_id': short_texts,
        'timestamp': timestamps,
        'message_type': short_texts,
        'user_id': short_texts,
        'app_id': short_texts,
    })
