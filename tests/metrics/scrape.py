"""Reading a Prometheus endpoint in the tests: the text, and its families."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

#: Labels of the exposition format itself, not of a family.
FORMAT_LABELS = frozenset({'le', 'quantile'})


@dataclass
class Family:
    name: str
    type: str
    labels: set[str] = field(default_factory=set)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, **labels: str) -> float:
        """The one sample whose labels include ``labels``."""
        found = [v for _, sample_labels, v in self.samples
                 if labels.items() <= sample_labels.items()]
        assert len(found) == 1, (self.name, labels, self.samples[:5])
        return found[0]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(url: str) -> str:
    status, headers, body = get(url, {'Accept-Encoding': 'gzip'})
    assert status == 200, (status, body[:500])
    assert headers['Content-Type'].startswith('text/plain; version=0.0.4')
    if headers.get('Content-Encoding') == 'gzip':
        body = gzip.decompress(body)
    return body.decode()


def parse(text: str) -> dict[str, Family]:
    """Families by name (counters without ``_total``, as prometheus_client names them)."""
    families = {}
    for metric in text_string_to_metric_families(text):
        family = Family(metric.name, metric.type)
        for sample in metric.samples:
            family.labels.update(set(sample.labels) - FORMAT_LABELS)
            family.samples.append((sample.name, dict(sample.labels), sample.value))
        families[metric.name] = family
    return families


def sample_names(families: dict[str, Family]) -> dict[str, Family]:
    """Families by the names their samples carry (``x_total``, ``x_bucket``...)."""
    by_sample = {}
    for family in families.values():
        names = {name for name, _, _ in family.samples} or {
            family.name + ('_total' if family.type == 'counter' else '')}
        for name in names:
            by_sample[name] = family
    return by_sample
