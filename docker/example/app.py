"""The example app: sends tasks the way a web application would.

``python app.py`` sends a few tasks every second, some with a countdown
(they show on the dashboard's ETA-held page while the worker holds them),
and waits for one result per round; ``--rounds N`` stops after N rounds.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time

from tasks import add, resize_image, send_reminder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--rounds', type=int, default=0, help='stop after N rounds (0: never)')
    parser.add_argument('--interval', type=float, default=1.0, help='seconds between rounds')
    args = parser.parse_args()
    rounds = itertools.count(1) if not args.rounds else range(1, args.rounds + 1)
    for n in rounds:
        result = add.delay(n, n)
        resize_image.delay(f'photo-{n}.jpg')
        if n % 5 == 1:
            send_reminder.apply_async((f'user-{n}',), countdown=random.randint(60, 600))
        print(f'round {n}: add({n}, {n}) = {result.get(timeout=30)}', flush=True)
        if args.interval:
            time.sleep(args.interval)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
