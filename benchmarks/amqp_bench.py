#!/usr/bin/env python3
"""amqp_bench.py - side-by-side performance yardstick for AMQP 0-9-1 brokers.

One invocation = one scenario against one broker, printed as ONE JSON line on
stdout (diagnostics go to stderr).  compare.sh alternates two brokers A,B,A,B..
and `--summarize FILE.jsonl` turns the collected lines into a table of medians
and per-pair B/A ratios.

Load generator design (so that it is not the bottleneck):
  * raw asyncio (uvloop) protocol, no client library on the hot path;
  * publish frames (method + header + body) are encoded ONCE with pamqp and the
    concatenation of BATCH copies is written with a single transport.write();
    TCP back-pressure (pause_writing/resume_writing) throttles the publisher;
  * deliveries are counted by walking frame headers only (7-byte header, class/
    method id, delivery tag); acks are basic.ack(multiple=True) every N tags;
  * publisher(s) and consumer(s) run in separate (forked) processes; the parent
    only orchestrates and samples /proc (broker CPU/RSS, host CPU) at the window
    edges, so the steady-state window excludes warm-up and shutdown.
  * `--null-broker` starts a built-in fake broker (discards publishes, streams
    pre-encoded deliveries honouring prefetch, acks confirms) and runs the same
    scenario against it: this measures the generator's own ceiling.

Scenarios: pubsub, pubsub-autoack, confirms, fanout, latency, fill-drain,
connections, celery.  See --help and rabbitmq-baseline.md.

This is a copy of ../shared/bench/amqp_bench.py with two additions:
amqps:// URLs (TLS, the certificate checked against ?cafile=), for
benchmarking brokers over TLS; and a headers table on every published
message, for the cost of checking headers at the door:
``AMQP_BENCH_HEADERS=celery`` (or ``--headers celery``) sends the headers a
Celery 5 task message carries (17 entries: strings, integers, None, an
array, a table); unset or ``none``, the messages are as in the original.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional
    uvloop = None

HARNESS_VERSION = 1
VERBOSE = False

HDR = struct.Struct('>BHI')           # frame type, channel, payload size
U32 = struct.Struct('>I')
U64 = struct.Struct('>Q')
ACKF = struct.Struct('>BHIHHQBB')     # complete basic.ack frame incl. frame-end
CM_PUBLISH = (60 << 16) | 40
CM_DELIVER = (60 << 16) | 60
CM_ACK = (60 << 16) | 80
CM_NACK = (60 << 16) | 120
FRAME_END = 0xCE
PROTOCOL_HEADER = b'AMQP\x00\x00\x09\x01'
CLK_TCK = os.sysconf('SC_CLK_TCK')
CLOSE_FRAME = pframe.marshal(
    C.Connection.Close(reply_code=200, reply_text='bye', class_id=0, method_id=0), 0)
CLOSE_OK_FRAME = pframe.marshal(C.Connection.CloseOk(), 0)


def log(*args):
    if VERBOSE:
        print(f'[{time.monotonic():.3f} {os.getpid()}]', *args, file=sys.stderr, flush=True)


def warn(*args):
    print('[amqp_bench]', *args, file=sys.stderr, flush=True)


def run_async(coro):
    if uvloop is not None and not os.environ.get('BENCH_NO_UVLOOP'):
        return uvloop.run(coro)
    return asyncio.run(coro)


def parse_url(url):
    u = urllib.parse.urlparse(url)
    if u.scheme not in ('amqp', 'amqps', ''):
        raise SystemExit(f'unsupported URL scheme {u.scheme!r} (amqp:// or amqps://)')
    path = u.path or ''
    vhost = '/' if path in ('', '/') else urllib.parse.unquote(path[1:])
    tls = u.scheme == 'amqps'
    query = urllib.parse.parse_qs(u.query)
    return dict(host=u.hostname or '127.0.0.1', port=u.port or (5671 if tls else 5672),
                user=urllib.parse.unquote(u.username or 'guest'),
                password=urllib.parse.unquote(u.password or 'guest'), vhost=vhost,
                tls=tls, cafile=(query.get('cafile') or [None])[0],
                server_hostname=(query.get('server_hostname') or [None])[0])


def tls_context(ui):
    """amqps:// (Leveret's addition to this harness): the broker's certificate
    checked against ?cafile= (and its name against ?server_hostname=, else the host)."""
    if not ui.get('tls'):
        return None, None
    import ssl
    ctx = ssl.create_default_context(cafile=ui.get('cafile'))
    return ctx, ui.get('server_hostname') or ui['host']


def redact(url):
    u = urllib.parse.urlparse(url)
    if u.password:
        netloc = f'{u.username}:***@{u.hostname}' + (f':{u.port}' if u.port else '')
        u = u._replace(netloc=netloc)
    return urllib.parse.urlunparse(u)


def client_props(name):
    return {'product': 'amqp-bench', 'version': str(HARNESS_VERSION),
            'connection_name': name, 'platform': 'Python ' + sys.version.split()[0],
            'capabilities': {'publisher_confirms': True, 'consumer_cancel_notify': True,
                             'basic.nack': True, 'connection.blocked': True,
                             'authentication_failure_close': True,
                             'per_consumer_qos': True, 'exchange_exchange_bindings': True}}


def encode_content(ch, method, body, props, frame_max):
    out = [pframe.marshal(method, ch),
           pframe.marshal(pheader.ContentHeader(0, len(body), props), ch)]
    maxb = frame_max - 8
    for i in range(0, len(body), maxb):
        out.append(pframe.marshal(pbody.ContentBody(body[i:i + maxb]), ch))
    return b''.join(out)


#: The headers of a Celery 5 task message (protocol 2), as Celery sends them.
CELERY_HEADERS = {
    'lang': 'py', 'task': 'proj.tasks.add', 'id': '6f1c9e52-3b0d-4c8e-9b1a-2f5d7c3e8a41',
    'shadow': None, 'eta': None, 'expires': None, 'group': None, 'group_index': None,
    'retries': 0, 'timelimit': [None, None], 'root_id': '6f1c9e52-3b0d-4c8e-9b1a-2f5d7c3e8a41',
    'parent_id': None, 'argsrepr': '(2, 3)', 'kwargsrepr': '{}',
    'origin': 'gen4242@host', 'ignore_result': False,
    'stamps': {'stamped_headers': None},
}


def bench_headers():
    """The headers table to publish with (``AMQP_BENCH_HEADERS``), or None."""
    kind = os.environ.get('AMQP_BENCH_HEADERS', 'none')
    if kind == 'none':
        return None
    if kind == 'celery':
        return dict(CELERY_HEADERS)
    raise SystemExit(f'AMQP_BENCH_HEADERS={kind!r}: expected none or celery')


def make_body(size):
    return b'x' * size


# --------------------------------------------------------------------------
# /proc probes (broker CPU + RSS, host CPU) - all best effort
# --------------------------------------------------------------------------

def find_listener_pids(port):
    """pids of processes holding the LISTEN socket for `port` (needs root for
    other users' processes).  Works for beam.smp and for a Python broker."""
    inodes = set()
    for fn in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(fn) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            parts = ln.split()
            if len(parts) > 9 and parts[3] == '0A' and int(parts[1].rsplit(':', 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return []
    targets = {f'socket:[{i}]' for i in inodes}
    pids = []
    me = os.getpid()
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            fds = os.listdir(f'/proc/{d}/fd')
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f'/proc/{d}/fd/{fd}') in targets:
                    pids.append(int(d))
                    break
            except OSError:
                pass
    return sorted(pids)


def descendants(pid):
    children = collections.defaultdict(list)
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/stat') as f:
                s = f.read()
            ppid = int(s[s.rindex(')') + 2:].split()[1])
            children[ppid].append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_cpu_s(pids):
    tot, ok = 0.0, False
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                s = f.read()
            fields = s[s.rindex(')') + 2:].split()
            tot += (int(fields[11]) + int(fields[12])) / CLK_TCK
            ok = True
        except (OSError, ValueError, IndexError):
            pass
    return tot if ok else None


def proc_rss_mb(pids):
    tot, ok = 0.0, False
    for pid in pids:
        try:
            with open(f'/proc/{pid}/status') as f:
                for ln in f:
                    if ln.startswith('VmRSS:'):
                        tot += int(ln.split()[1]) / 1024.0
                        ok = True
                        break
        except (OSError, ValueError):
            pass
    return round(tot, 1) if ok else None


def fd_headroom(pids):
    """(limit, used, safe_extra_fds) summed over pids, or None if unreadable.
    safe = free fds minus a reserve of max(100, 20% of the limit): a broker that
    runs out of fds can break in ugly ways (RabbitMQ 3.10 with ulimit 1024 lost
    its memory monitors to EMFILE when 1000 connections were opened)."""
    lim_t = used_t = safe_t = 0
    try:
        for pid in pids:
            lim = None
            with open(f'/proc/{pid}/limits') as f:
                for ln in f:
                    if ln.startswith('Max open files'):
                        lim = int(ln.split()[3])
            used = len(os.listdir(f'/proc/{pid}/fd'))
            lim_t += lim
            used_t += used
            safe_t += (lim - used) - max(100, int(0.2 * lim))
    except (OSError, ValueError, TypeError):
        return None
    return (lim_t, used_t, safe_t) if pids else None


def all_proc_ticks():
    out = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/stat') as f:
                s = f.read()
            fields = s[s.rindex(')') + 2:].split()
            out[int(d)] = int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return out


def host_cpu_ticks():
    with open('/proc/stat') as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


class Probe:
    def __init__(self, pids):
        self.pids = pids or []

    def snap(self, procs=False):
        busy, _total = host_cpu_ticks()
        d = dict(t=time.monotonic(), cpu=proc_cpu_s(self.pids) if self.pids else None,
                 rss=proc_rss_mb(self.pids) if self.pids else None, host=busy / CLK_TCK)
        if procs:
            d['procs'] = all_proc_ticks()
        return d

    @staticmethod
    def other_procs_cores(s0, s1, exclude):
        """CPU of processes alive at both snapshots that are neither the broker
        nor this harness: the noise from other work on the machine."""
        p0, p1 = s0.get('procs'), s1.get('procs')
        if not p0 or not p1 or s1['t'] <= s0['t']:
            return None
        ex = set(exclude)
        tot = sum(p1[p] - p0[p] for p in p1 if p in p0 and p not in ex and p1[p] >= p0[p])
        return round(tot / CLK_TCK / (s1['t'] - s0['t']), 3)

    def rss(self):
        return proc_rss_mb(self.pids) if self.pids else None

    @staticmethod
    def cores(s0, s1, key='cpu'):
        if s0.get(key) is None or s1.get(key) is None or s1['t'] <= s0['t']:
            return None
        return round((s1[key] - s0[key]) / (s1['t'] - s0['t']), 3)


# --------------------------------------------------------------------------
# Minimal raw AMQP 0-9-1 client protocol with a frame-header-scanning hot path
# --------------------------------------------------------------------------

class AMQPError(Exception):
    def __init__(self, code, text, where=''):
        super().__init__(f'{where}{code} {text}')
        self.code = code


class Conn(asyncio.Protocol):
    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.transport = None
        self.tail = b''
        self.waiters = collections.defaultdict(list)
        self.lost = self.loop.create_future()
        self.paused = False
        self.resume_fut = None
        self.error = None
        self.blocked_events = 0
        self.frame_max = 131072
        self.channel_max = 2047
        self.server_props = {}
        self.next_channel = 1
        # consumer state
        self.delivered = 0
        self.last_tag = 0
        self.ack_every = 0
        self.next_ack = 0
        self.lat_ts = None
        self.lat_val = None
        self.want_ts = False
        self.target = 0
        self.target_fut = None
        self.t_target = None
        # publisher-confirm state
        self.cfloor = 0
        self.csingles = set()
        self.nacks = 0
        self.cwaiter = None

    # ---- asyncio callbacks ----
    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)
        self._fail_all(ConnectionError(f'connection lost: {exc!r}' if exc else 'connection closed'))
        self.wake()
        if self.target_fut is not None and not self.target_fut.done():
            self.target_fut.set_result(None)

    def pause_writing(self):
        self.paused = True
        self.resume_fut = self.loop.create_future()

    def resume_writing(self):
        self.paused = False
        f = self.resume_fut
        if f is not None and not f.done():
            f.set_result(None)

    def wake(self):
        for f in (self.resume_fut, self.cwaiter):
            if f is not None and not f.done():
                f.set_result(None)

    def data_received(self, data):
        if self.tail:
            data = self.tail + data
        n = len(data)
        p = 0
        hdr = HDR.unpack_from
        u32 = U32.unpack_from
        u64 = U64.unpack_from
        delivered = self.delivered
        tag = self.last_tag
        ack_every = self.ack_every
        next_ack = self.next_ack
        acks = None
        lat_ts = self.lat_ts
        want_ts = self.want_ts
        now_ns = time.monotonic_ns() if lat_ts is not None else 0
        while n - p >= 8:
            ft, ch, size = hdr(data, p)
            end = p + size + 8
            if end > n:
                break
            if data[end - 1] != FRAME_END:
                self._protocol_error(f'bad frame-end byte (type {ft} ch {ch} size {size})')
                return
            if ft == 1:
                cm = u32(data, p + 7)[0]
                if cm == CM_DELIVER:
                    tag = u64(data, p + 12 + data[p + 11])[0]
                    delivered += 1
                    if ack_every and tag >= next_ack:
                        if acks is None:
                            acks = []
                        acks.append(ACKF.pack(1, ch, 13, 60, 80, tag, 1, FRAME_END))
                        next_ack = tag + ack_every
                    if lat_ts is not None:
                        want_ts = True
                elif cm == CM_ACK or cm == CM_NACK:
                    self._on_confirm(cm, data, p)
                else:
                    self._slow(data[p:end])
            elif ft == 3:
                if want_ts:
                    ts = u64(data, p + 7)[0]
                    lat_ts.append(ts)
                    self.lat_val.append(now_ns - ts)
                    want_ts = False
            elif ft not in (2, 8):
                self._protocol_error(f'unknown frame type {ft}')
                return
            p = end
        self.tail = data[p:] if p < n else b''
        self.delivered = delivered
        self.last_tag = tag
        self.next_ack = next_ack
        self.want_ts = want_ts
        if acks:
            self.transport.write(b''.join(acks))
        if self.target and delivered >= self.target:
            f = self.target_fut
            if f is not None and not f.done():
                self.t_target = time.monotonic()
                f.set_result(None)

    # ---- slow path ----
    def _protocol_error(self, msg):
        self.error = self.error or msg
        self._fail_all(ConnectionError(msg))
        self.transport.abort()

    def _on_confirm(self, cm, data, p):
        tag = U64.unpack_from(data, p + 11)[0]
        multiple = data[p + 19] & 1
        if cm == CM_NACK:
            self.nacks += 1
        if multiple:
            if tag > self.cfloor:
                self.cfloor = tag
                if self.csingles:
                    self.csingles = {t for t in self.csingles if t > tag}
        elif tag > self.cfloor:
            self.csingles.add(tag)
            while (self.cfloor + 1) in self.csingles:
                self.cfloor += 1
                self.csingles.discard(self.cfloor)
        w = self.cwaiter
        if w is not None and not w.done():
            w.set_result(None)

    def confirmed(self):
        return self.cfloor + len(self.csingles)

    def _fail_all(self, exc):
        ws, self.waiters = self.waiters, collections.defaultdict(list)
        for lst in ws.values():
            for _types, fut in lst:
                if not fut.done():
                    fut.set_exception(exc)

    def _write_method(self, ch, method):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(pframe.marshal(method, ch))

    def _slow(self, fb):
        try:
            _n, ch, f = pframe.unmarshal(fb)
        except Exception as e:  # noqa: BLE001
            self._protocol_error(f'cannot decode frame {fb[:32].hex()}: {e!r}')
            return
        if isinstance(f, C.Connection.Close):
            msg = f'connection closed by broker: {f.reply_code} {f.reply_text}'
            self.error = self.error or msg
            self._write_method(0, C.Connection.CloseOk())
            self._fail_all(AMQPError(f.reply_code, f.reply_text, 'connection: '))
            self.transport.close()
            return
        if isinstance(f, C.Channel.Close):
            self._write_method(ch, C.Channel.CloseOk())
            err = AMQPError(f.reply_code, f.reply_text, f'channel {ch}: ')
            ws = self.waiters.pop(ch, [])
            if not ws:
                self.error = self.error or str(err)
            for _types, fut in ws:
                if not fut.done():
                    fut.set_exception(err)
            return
        if isinstance(f, C.Connection.Blocked):
            self.blocked_events += 1
            return
        if isinstance(f, C.Basic.Cancel):
            self.error = self.error or 'consumer cancelled by broker'
            return
        ws = self.waiters.get(ch)
        if ws:
            for i, (types, fut) in enumerate(ws):
                if isinstance(f, types):
                    del ws[i]
                    if not fut.done():
                        fut.set_result(f)
                    return
        log('ignored frame', ch, type(f).__name__)

    # ---- RPC helpers ----
    def expect(self, ch, types):
        fut = self.loop.create_future()
        if self.lost.done():
            fut.set_exception(ConnectionError(self.error or 'connection closed'))
        else:
            self.waiters[ch].append((types, fut))
        return fut

    async def rpc(self, ch, method, types, timeout=30.0):
        fut = self.expect(ch, types)
        if method is not None:
            self._write_method(ch, method)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f'timeout ({timeout}s) waiting for {[t.name for t in types]} '
                               f'on ch {ch}') from None

    async def handshake(self, ui, timeout, name):
        t_end = time.monotonic() + timeout
        rem = lambda: max(0.05, t_end - time.monotonic())  # noqa: E731
        f_start = self.expect(0, (C.Connection.Start,))
        self.transport.write(PROTOCOL_HEADER)
        start = await asyncio.wait_for(f_start, rem())
        self.server_props = start.server_properties or {}
        f_tune = self.expect(0, (C.Connection.Tune,))
        self._write_method(0, C.Connection.StartOk(
            client_properties=client_props(name), mechanism='PLAIN',
            response=f'\0{ui["user"]}\0{ui["password"]}', locale='en_US'))
        tune = await asyncio.wait_for(f_tune, rem())
        self.frame_max = tune.frame_max or 131072
        self.channel_max = tune.channel_max or 2047
        self._write_method(0, C.Connection.TuneOk(channel_max=self.channel_max,
                                                  frame_max=self.frame_max, heartbeat=0))
        await self.rpc(0, C.Connection.Open(virtual_host=ui['vhost']), (C.Connection.OpenOk,),
                       rem())

    async def open_channel(self, ch=None, timeout=30.0):
        if ch is None:
            ch = self.next_channel
        self.next_channel = max(self.next_channel, ch + 1)
        await self.rpc(ch, C.Channel.Open(), (C.Channel.OpenOk,), timeout)
        return ch

    async def close(self, timeout=3.0):
        if self.transport is None or self.transport.is_closing():
            return
        fut = self.expect(0, (C.Connection.CloseOk,))
        self.transport.write(CLOSE_FRAME)
        try:
            await asyncio.wait_for(fut, timeout)
        except BaseException:  # noqa: BLE001 - timeout/lost: just drop it
            pass
        if not self.transport.is_closing():
            (self.transport.abort() if self.transport.get_write_buffer_size()
             else self.transport.close())


async def connect(ui, timeout=15.0, name='amqp-bench'):
    loop = asyncio.get_running_loop()
    t_end = time.monotonic() + timeout
    ctx, hostname = tls_context(ui)
    tr, c = await asyncio.wait_for(loop.create_connection(
        Conn, ui['host'], ui['port'], ssl=ctx, server_hostname=hostname), timeout)
    try:
        await c.handshake(ui, max(0.05, t_end - time.monotonic()), name)
    except BaseException:
        tr.abort()
        raise
    return c


async def safe_rpc(c, ch, method, types, timeout=30.0):
    """rpc that tolerates a channel error (reopens the channel); returns
    (result_or_None, channel, error_or_None)."""
    try:
        return await c.rpc(ch, method, types, timeout), ch, None
    except AMQPError as e:
        ch = await c.open_channel()
        return None, ch, e


# --------------------------------------------------------------------------
# Child process roles
# --------------------------------------------------------------------------

class St:
    def __init__(self):
        self.count = 0
        self.stop = False
        self.done = False
        self.samples = []


async def sampler(S, fn, interval):
    while not S.done:
        S.samples.append((time.monotonic(), time.process_time()) + fn())
        await asyncio.sleep(interval)


async def sleep_until(t):
    d = t - time.monotonic()
    if d > 0:
        await asyncio.sleep(d)


async def role_publisher(P, pipe):
    loop = asyncio.get_running_loop()
    ui = P['ui']
    c = await connect(ui, name='bench-pub')
    ch = await c.open_channel(1)
    if P['confirm']:
        await c.rpc(ch, C.Confirm.Select(), (C.Confirm.SelectOk,))
    size = P['size']
    props = C.Basic.Properties(delivery_mode=2 if P['persistent'] else 1,
                               headers=bench_headers())
    body = make_body(size)
    msg = encode_content(ch, C.Basic.Publish(exchange=P['exchange'], routing_key=P['routing_key']),
                         body, props, c.frame_max)
    batch = P['batch'] or max(1, min(1000, 131072 // len(msg)))
    if P['confirm']:
        batch = max(1, min(batch, P['window'] // 10))
    pipe.send(('ready', dict(frame_max=c.frame_max, batch=batch, msg_bytes=len(msg))))
    go = await loop.run_in_executor(None, pipe.recv)
    t0 = go['t0']
    P['t_stop'] = go.get('t_stop')
    S = St()
    S.t_first = S.t_last = None
    fn = (lambda: (S.count, c.confirmed())) if P['confirm'] else (lambda: (S.count, 0))
    samp = asyncio.ensure_future(sampler(S, fn, P['sample_interval']))
    await sleep_until(t0)
    n_total = P.get('count') or 0
    if P.get('t_stop') is not None:
        def stop_cb():
            S.stop = True
            c.wake()
        loop.call_later(max(0.0, P['t_stop'] - time.monotonic()), stop_cb)
    write = c.transport.write
    S.t_first = time.monotonic()
    if P['mode'] == 'rate':
        rate = float(P['rate'])
        tick = min(0.01, max(0.001, 1.0 / rate))
        start = time.monotonic()
        if P['latency']:
            pre_len = len(msg) - size - 1   # everything before the body bytes
            prefix, suffix = msg[:pre_len], msg[pre_len + 8:]
            assert len(body) + 8 <= c.frame_max, 'latency body must fit one frame'
            pack = U64.pack
            mono = time.monotonic_ns
        while not S.stop and c.error is None and not c.lost.done():
            due = int((time.monotonic() - start) * rate) - S.count
            if due > 0:
                if P['latency']:
                    write(b''.join([prefix + pack(mono()) + suffix for _ in range(due)]))
                else:
                    write(msg * due)
                S.count += due
            await asyncio.sleep(tick)
    else:
        blob = msg * batch
        c.transport.set_write_buffer_limits(high=max(4 * len(blob), 262144), low=len(blob))
        confirm, window = P['confirm'], P['window']
        i = 0
        while not S.stop and c.error is None and not c.lost.done():
            if confirm:
                while S.count - c.confirmed() + batch > window and not S.stop and not c.lost.done():
                    c.cwaiter = loop.create_future()
                    await c.cwaiter
                if S.stop:
                    break
            if c.paused:
                await c.resume_fut
                continue
            if n_total:
                left = n_total - S.count
                if left <= 0:
                    break
                if left < batch:
                    write(msg * left)
                    S.count += left
                    continue
            write(blob)
            S.count += batch
            i += 1
            if i & 7 == 0:
                await asyncio.sleep(0)
    S.t_last = time.monotonic()
    if n_total and c.error is None:
        while c.transport.get_write_buffer_size() and not c.lost.done():
            await asyncio.sleep(0.002)
        S.t_flushed = time.monotonic()
        if P['confirm']:
            t_end = time.monotonic() + 60
            while c.confirmed() < S.count and time.monotonic() < t_end and not c.lost.done():
                c.cwaiter = loop.create_future()
                try:
                    await asyncio.wait_for(c.cwaiter, 1.0)
                except TimeoutError:
                    pass
    S.done = True
    S.samples.append((time.monotonic(), time.process_time()) + fn())
    await samp
    err = c.error
    await c.close()
    return dict(samples=S.samples, published=S.count, confirmed=c.confirmed(), nacks=c.nacks,
                blocked=c.blocked_events, error=err, t_first=S.t_first, t_last=S.t_last,
                t_flushed=getattr(S, 't_flushed', None), batch=batch)


async def role_consumer(P, pipe):
    loop = asyncio.get_running_loop()
    ui = P['ui']
    conns = []
    for i, q in enumerate(P['queues']):
        c = await connect(ui, name=f'bench-cons-{i}')
        await c.open_channel(1)
        if not P['no_ack'] and P['prefetch']:
            await c.rpc(1, C.Basic.Qos(prefetch_count=P['prefetch']), (C.Basic.QosOk,))
        c.ack_every = 0 if P['no_ack'] else P['ack_every']
        c.next_ack = c.ack_every
        if P['latency']:
            c.lat_ts, c.lat_val = [], []
        conns.append((c, q))

    async def consume(c, q):
        await c.rpc(1, C.Basic.Consume(queue=q, consumer_tag='bench', no_ack=P['no_ack']),
                    (C.Basic.ConsumeOk,))

    if not P['consume_on_go']:
        for c, q in conns:
            await consume(c, q)
    pipe.send(('ready', None))
    go = await loop.run_in_executor(None, pipe.recv)
    t0 = go['t0']
    P['t_stop'] = go.get('t_stop')
    S = St()
    res = {}
    if P['consume_on_go']:               # fill-drain: consume until target
        c, q = conns[0]
        c.target = P['target']
        c.target_fut = loop.create_future()
        await sleep_until(t0)
        cpu0 = time.process_time()
        t_consume = time.monotonic()
        await consume(c, q)
        try:
            await asyncio.wait_for(c.target_fut, P['timeout'])
        except TimeoutError:
            c.error = c.error or f'drain timeout: got {c.delivered}/{c.target}'
        if not P['no_ack'] and c.last_tag and not c.transport.is_closing():
            c.transport.write(ACKF.pack(1, 1, 13, 60, 80, c.last_tag, 1, FRAME_END))
        res = dict(t_consume=t_consume, t_done=c.t_target, delivered=c.delivered,
                   cpu_s=time.process_time() - cpu0)
    else:
        samp = asyncio.ensure_future(sampler(S, lambda: (sum(c.delivered for c, _ in conns), 0),
                                             P['sample_interval']))
        await sleep_until(P['t_stop'])
        S.done = True
        S.samples.append((time.monotonic(), time.process_time(),
                          sum(c.delivered for c, _ in conns), 0))
        await samp
        res = dict(samples=S.samples, per_queue=[c.delivered for c, _ in conns])
        if P['latency']:
            ts, lv = [], []
            for c, _ in conns:
                ts.extend(c.lat_ts)
                lv.extend(c.lat_val)
            res['lat_ts'], res['lat_val'] = ts, lv
    errs = [c.error for c, _ in conns if c.error]
    res['error'] = '; '.join(errs) if errs else None
    res['blocked'] = sum(c.blocked_events for c, _ in conns)
    await asyncio.gather(*(c.close() for c, _ in conns), return_exceptions=True)
    return res


ROLES = {'publisher': role_publisher, 'consumer': role_consumer}


def child_entry(role, P, pipe):
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        res = run_async(ROLES[role](P, pipe))
        pipe.send(('result', res))
    except BaseException as e:  # noqa: BLE001
        code = 1
        try:
            pipe.send(('error', f'{role}: {e!r}\n{traceback.format_exc()}'))
        except Exception:  # noqa: BLE001
            pass
    finally:
        try:
            pipe.close()
        finally:
            os._exit(code)


class Children:
    def __init__(self):
        self.ctx = mp.get_context('fork')
        self.items = []

    def spawn(self, role, P):
        parent_end, child_end = self.ctx.Pipe()
        proc = self.ctx.Process(target=child_entry, args=(role, P, child_end), daemon=True)
        proc.start()
        child_end.close()
        self.items.append(dict(role=role, proc=proc, pipe=parent_end, P=P))
        return len(self.items) - 1

    def recv(self, idx, expect, timeout):
        it = self.items[idx]
        if not it['pipe'].poll(timeout):
            raise TimeoutError(f'{it["role"]} child did not answer "{expect}" '
                               f'within {timeout:.0f}s')
        kind, payload = it['pipe'].recv()
        if kind == 'error':
            raise RuntimeError(payload)
        if kind != expect:
            raise RuntimeError(f'{it["role"]}: expected {expect}, got {kind}')
        return payload

    def send(self, idx, obj):
        self.items[idx]['pipe'].send(obj)

    def reap(self, timeout=5.0):
        for it in self.items:
            it['proc'].join(timeout)
            if it['proc'].is_alive():
                it['proc'].terminate()
                it['proc'].join(2)


# --------------------------------------------------------------------------
# helpers for metrics
# --------------------------------------------------------------------------

def interp(samples, t, k):
    if not samples:
        return None
    if t <= samples[0][0]:
        return samples[0][k]
    for i in range(1, len(samples)):
        if samples[i][0] >= t:
            t0, v0 = samples[i - 1][0], samples[i - 1][k]
            t1, v1 = samples[i][0], samples[i][k]
            return v0 + (v1 - v0) * ((t - t0) / (t1 - t0)) if t1 > t0 else v1
    return samples[-1][k]


def window_rate(samples, w0, w1, k):
    a, b = interp(samples, w0, k), interp(samples, w1, k)
    if a is None or b is None:
        return None
    return (b - a) / (w1 - w0)


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(math.ceil(q * len(sorted_vals))) - 1))
    return sorted_vals[i]


def r1(x, nd=1):
    return None if x is None else round(x, nd)


async def with_control(ui, fn, timeout=60.0):
    c = await connect(ui, name='bench-control')
    try:
        ch = await c.open_channel(1)
        return await asyncio.wait_for(fn(c, ch), timeout)
    finally:
        await c.close()


async def delete_objects(c, ch, queues=(), exchanges=()):
    for q in queues:
        _r, ch, _e = await safe_rpc(c, ch, C.Queue.Delete(queue=q), (C.Queue.DeleteOk,))
    for x in exchanges:
        _r, ch, _e = await safe_rpc(c, ch, C.Exchange.Delete(exchange=x), (C.Exchange.DeleteOk,))
    return ch


def teardown(ui, queues=(), exchanges=()):
    try:
        run_async(with_control(ui, lambda c, ch: delete_objects(c, ch, queues, exchanges), 30))
    except Exception as e:  # noqa: BLE001
        warn(f'teardown failed ({e!r}); leftover objects: {list(queues) + list(exchanges)}')


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

def run_flow(a, ui, probe, out):
    """pubsub, pubsub-autoack, confirms, fanout, latency."""
    scen = a.scenario
    base = f'bench.{scen}.{os.getpid()}'
    exchange, exchanges = '', []
    if scen == 'fanout':
        exchange = base
        exchanges = [base]
        queues = [f'{base}.q{i}' for i in range(a.fanout_queues)]
        rk = ''
    else:
        queues = [base]
        rk = base
    durable = scen == 'confirms'
    auto_delete = not durable
    persistent = scen == 'confirms' and not a.transient
    confirm = scen == 'confirms' or a.confirm
    no_ack = scen == 'pubsub-autoack' or a.no_ack
    latency = scen == 'latency'
    n_cons = a.consumers
    if n_cons is None:
        n_cons = len(queues) if scen == 'fanout' else (0 if scen == 'confirms' else 1)
    n_pub = a.publishers
    rate = a.rate if a.rate else (1000 if latency else 0)
    size = a.size
    if latency and size < 8:
        size = 8
    out['params'] = dict(size=size, publishers=n_pub, consumers=n_cons, queues=len(queues),
                         durable=durable, persistent=persistent, confirm=confirm,
                         window=a.window if confirm else None, no_ack=no_ack,
                         prefetch=None if no_ack else a.prefetch,
                         ack_every=None if no_ack else a.ack_every, rate=rate or None)

    async def setup(c, ch):
        ch = await delete_objects(c, ch, queues, exchanges)
        if scen == 'fanout':
            await c.rpc(ch, C.Exchange.Declare(exchange=exchange, exchange_type='fanout'),
                        (C.Exchange.DeclareOk,))
        for q in queues:
            await c.rpc(ch, C.Queue.Declare(queue=q, durable=durable, auto_delete=auto_delete),
                        (C.Queue.DeclareOk,))
            if scen == 'fanout':
                await c.rpc(ch, C.Queue.Bind(queue=q, exchange=exchange, routing_key=''),
                            (C.Queue.BindOk,))
    run_async(with_control(ui, setup))
    kids = Children()
    try:
        t_plan = dict(ui=ui, sample_interval=0.1)
        cons_idx, pub_idx = [], []
        if n_cons:
            groups = [[] for _ in range(max(1, min(a.consumer_procs, n_cons)))]
            for i in range(n_cons):
                groups[i % len(groups)].append(queues[i % len(queues)])
            for g in groups:
                cons_idx.append(kids.spawn('consumer', dict(
                    t_plan, queues=g, no_ack=no_ack, prefetch=a.prefetch, ack_every=a.ack_every,
                    latency=latency, consume_on_go=False, t_stop=None)))
        for _ in range(n_pub):
            pub_idx.append(kids.spawn('publisher', dict(
                t_plan, exchange=exchange, routing_key=rk, size=size, persistent=persistent,
                confirm=confirm, window=a.window, batch=a.batch, mode='rate' if rate else 'flood',
                rate=rate / max(1, n_pub) if rate else 0, latency=latency, t_stop=None)))
        ready = {}
        for idx in cons_idx + pub_idx:
            ready[idx] = kids.recv(idx, 'ready', 60)
        t0 = time.monotonic() + 0.3
        w0 = t0 + a.warmup
        w1 = w0 + a.seconds
        t_stop = w1 + 0.3
        for idx in cons_idx + pub_idx:
            kids.send(idx, dict(t0=t0, t_stop=t_stop))
        time.sleep(max(0.0, w0 - time.monotonic()))
        s0 = probe.snap(procs=True)
        time.sleep(max(0.0, w1 - time.monotonic()))
        s1 = probe.snap(procs=True)
        mine = [os.getpid()] + [it['proc'].pid for it in kids.items] + probe.pids
        res = {idx: kids.recv(idx, 'result', a.seconds + a.warmup + 60)
               for idx in cons_idx + pub_idx}
    finally:
        kids.reap()
        teardown(ui, queues, exchanges)

    pubs = [res[i] for i in pub_idx]
    conss = [res[i] for i in cons_idx]
    errors = [r['error'] for r in pubs + conss if r.get('error')]
    m = {}
    pub_rate = sum(window_rate(r['samples'], w0, w1, 2) or 0 for r in pubs)
    cons_rate = sum(window_rate(r['samples'], w0, w1, 2) or 0 for r in conss)
    gen_cpu = sum(window_rate(r['samples'], w0, w1, 1) or 0 for r in pubs + conss)
    if scen in ('pubsub', 'pubsub-autoack'):
        m['consume_rate'] = r1(cons_rate)
        m['publish_rate'] = r1(pub_rate)
        m['backlog_growth_rate'] = r1(pub_rate - cons_rate) if n_cons else None
        primary = 'consume_rate' if n_cons else 'publish_rate'
    elif scen == 'confirms':
        m['confirm_rate'] = r1(sum(window_rate(r['samples'], w0, w1, 3) or 0 for r in pubs))
        m['publish_rate'] = r1(pub_rate)
        if n_cons:
            m['consume_rate'] = r1(cons_rate)
        m['nacks'] = sum(r['nacks'] for r in pubs)
        primary = 'confirm_rate'
    elif scen == 'fanout':
        m['delivery_rate'] = r1(cons_rate)
        m['publish_rate'] = r1(pub_rate)
        m['fanout_factor'] = r1(cons_rate / pub_rate, 3) if pub_rate else None
        primary = 'delivery_rate'
    elif scen == 'latency':
        lo, hi = int(w0 * 1e9), int(w1 * 1e9)
        lat = sorted(v for r in conss
                     for ts, v in zip(r['lat_ts'], r['lat_val'], strict=False) if lo <= ts < hi)
        ms = lambda ns: r1(ns / 1e6, 3) if ns is not None else None  # noqa: E731
        m['p50_ms'] = ms(pct(lat, 0.50))
        m['p90_ms'] = ms(pct(lat, 0.90))
        m['p99_ms'] = ms(pct(lat, 0.99))
        m['p999_ms'] = ms(pct(lat, 0.999))
        m['max_ms'] = ms(lat[-1] if lat else None)
        m['mean_ms'] = ms(statistics.fmean(lat) if lat else None)
        m['samples'] = len(lat)
        m['publish_rate'] = r1(pub_rate)
        primary = 'p99_ms'
        out['better'] = 'lower'
    m['publish_batch'] = ready[pub_idx[0]]['batch'] if pub_idx and not rate else None
    out['metrics'] = m
    out['primary'] = primary
    out['totals'] = dict(published=sum(r['published'] for r in pubs),
                         consumed=sum(r['samples'][-1][2] for r in conss) if conss else 0)
    out['cpu'] = dict(broker_cores=Probe.cores(s0, s1), generator_cores=r1(gen_cpu, 3),
                      host_busy_cores=Probe.cores(s0, s1, 'host'))
    if out['cpu']['host_busy_cores'] is not None:
        out['cpu']['others_cores'] = r1(out['cpu']['host_busy_cores']
                                        - (out['cpu']['broker_cores'] or 0) - gen_cpu, 3)
    out['cpu']['other_procs_cores'] = Probe.other_procs_cores(s0, s1, mine)
    out['broker_rss_mb'] = s1['rss']
    out['blocked_events'] = sum(r.get('blocked', 0) for r in pubs + conss)
    if errors:
        out['error'] = '; '.join(errors)


def run_fill_drain(a, ui, probe, out):
    q = f'bench.fill-drain.{os.getpid()}'
    N = a.messages
    out['params'] = dict(size=a.size, messages=N, no_ack=a.no_ack, prefetch=a.prefetch,
                         ack_every=a.ack_every, persistent=False)

    async def setup(c, ch):
        ch = await delete_objects(c, ch, [q])
        await c.rpc(ch, C.Queue.Declare(queue=q, durable=False, auto_delete=False),
                    (C.Queue.DeclareOk,))
    run_async(with_control(ui, setup))
    kids = Children()
    m = {}
    try:
        ci = kids.spawn('consumer', dict(ui=ui, queues=[q], no_ack=a.no_ack, prefetch=a.prefetch,
                                         ack_every=a.ack_every, latency=False, consume_on_go=True,
                                         target=N, timeout=a.phase_timeout, sample_interval=0.1,
                                         t_stop=None))
        pi = kids.spawn('publisher', dict(ui=ui, exchange='', routing_key=q, size=a.size,
                                          persistent=False, confirm=False, window=0, batch=a.batch,
                                          mode='flood', rate=0, latency=False, count=N, t_stop=None,
                                          sample_interval=0.1))
        kids.recv(ci, 'ready', 60)
        kids.recv(pi, 'ready', 60)
        s0 = probe.snap()
        t0 = time.monotonic() + 0.2
        kids.send(pi, dict(t0=t0))

        async def wait_fill():
            c = await connect(ui, name='bench-fill-monitor')
            ch = await c.open_channel(1)
            peak = s0['rss'] or 0
            t_end = time.monotonic() + a.phase_timeout
            try:
                while True:
                    ok = await c.rpc(ch, C.Queue.Declare(queue=q, passive=True),
                                     (C.Queue.DeclareOk,))
                    now = time.monotonic()
                    rss = probe.rss()
                    if rss:
                        peak = max(peak, rss)
                    if ok.message_count >= N:
                        return now, peak, ok.message_count
                    if now > t_end:
                        raise TimeoutError(f'fill timeout: queue has {ok.message_count}/{N}')
                    await asyncio.sleep(0.02)
            finally:
                await c.close()
        t_filled, peak, depth = run_async(wait_fill())
        s1 = probe.snap()
        pres = kids.recv(pi, 'result', 60)
        t_go = time.monotonic() + 0.1
        kids.send(ci, dict(t0=t_go))
        it = kids.items[ci]['pipe']
        t_end = time.monotonic() + a.phase_timeout + 30
        while not it.poll(0.05):
            rss = probe.rss()
            if rss:
                peak = max(peak, rss)
            if time.monotonic() > t_end:
                raise TimeoutError('drain: consumer did not finish')
        cres = kids.recv(ci, 'result', 5)
        s2 = probe.snap()
    finally:
        kids.reap()
        teardown(ui, [q])
    fill_s = t_filled - t0
    m['fill_rate'] = r1(N / fill_s)
    m['publish_write_rate'] = (r1(N / (pres['t_last'] - pres['t_first']))
                               if pres['t_last'] > pres['t_first'] else None)
    if cres.get('t_done'):
        drain_s = cres['t_done'] - cres['t_consume']
        m['drain_rate'] = r1(N / drain_s)
    else:
        m['drain_rate'] = None
    m['fill_s'] = r1(fill_s, 3)
    m['drain_s'] = r1(drain_s, 3) if cres.get('t_done') else None
    m['rss_before_mb'] = s0['rss']
    m['rss_after_fill_mb'] = s1['rss']
    m['rss_peak_mb'] = r1(peak) if peak else None
    m['rss_after_drain_mb'] = s2['rss']
    if s1['rss'] is not None and s0['rss'] is not None:
        m['rss_per_msg_bytes'] = r1((s1['rss'] - s0['rss']) * 1048576 / N, 0)
    out['metrics'] = m
    out['primary'] = 'drain_rate'
    out['cpu'] = dict(broker_cores_fill=Probe.cores(s0, s1), broker_cores_drain=Probe.cores(s1, s2),
                      host_busy_cores_fill=Probe.cores(s0, s1, 'host'),
                      host_busy_cores_drain=Probe.cores(s1, s2, 'host'),
                      consumer_cpu_s=r1(cres.get('cpu_s'), 3))
    out['queue_depth_at_fill'] = depth
    errors = [r['error'] for r in (pres, cres) if r.get('error')]
    if errors:
        out['error'] = '; '.join(errors)


def run_connections(a, ui, probe, out):
    N = a.conns
    pid = os.getpid()
    out['params'] = dict(conns=N, concurrency=a.conn_concurrency, timeout_s=a.conn_timeout)
    fds = fd_headroom(probe.pids)
    if fds:
        out['broker_fds'] = dict(limit=fds[0], used_before=fds[1], safe_extra=fds[2])
        if N > fds[2] and not a.unsafe_conns:
            raise RuntimeError(
                f'refusing to open {N} connections: broker fd limit {fds[0]}, {fds[1]} in use, '
                f'safe headroom {fds[2]} (exhausting a broker\'s fds can crash it; '
                '--unsafe-conns overrides)')
    elif not a.unsafe_conns and N > 500:
        raise RuntimeError(f'refusing to open {N} connections: cannot read the broker fd limit '
                           f'(give --broker-pid, or --unsafe-conns)')

    async def main():
        sem = asyncio.Semaphore(a.conn_concurrency)
        conns, errors = [], collections.Counter()
        state = dict(t_last_ok=None)

        async def open_one(i):
            c = await connect(ui, timeout=a.conn_timeout, name=f'bench-conn-{i}')
            try:
                await c.open_channel(1)
                await c.rpc(1, C.Queue.Declare(queue=f'bench.conn.{pid}.{i}', exclusive=True,
                                               auto_delete=True), (C.Queue.DeclareOk,))
            except BaseException:
                c.transport.abort()
                raise
            return c

        async def one(i):
            async with sem:
                try:
                    c = await asyncio.wait_for(open_one(i), a.conn_timeout)
                    conns.append(c)
                    state['t_last_ok'] = time.monotonic()
                except TimeoutError:
                    errors['timeout'] += 1
                except Exception as e:  # noqa: BLE001
                    errors[f'{type(e).__name__}: {str(e)[:80]}'] += 1
        s0 = probe.snap()
        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(N)))
        t1 = time.monotonic()
        s1 = probe.snap()
        await asyncio.gather(*(c.close(timeout=a.conn_timeout) for c in conns),
                             return_exceptions=True)
        t2 = time.monotonic()
        return dict(ok=len(conns), errors=dict(errors), open_s=t1 - t0,
                    last_ok_s=(state['t_last_ok'] - t0) if state['t_last_ok'] else None,
                    close_s=t2 - t1, s0=s0, s1=s1)
    r = run_async(main())
    time.sleep(0.5)
    s2 = probe.snap()
    m = dict(ok=r['ok'], failed=N - r['ok'], all_ok=r['ok'] == N,
             open_s=r1(r['open_s'], 3), last_ok_s=r1(r['last_ok_s'], 3),
             conns_per_s=r1(r['ok'] / r['last_ok_s']) if r['last_ok_s'] else None,
             close_s=r1(r['close_s'], 3))
    if r['s0']['rss'] is not None and r['s1']['rss'] is not None and r['ok']:
        m['rss_per_conn_kb'] = r1((r['s1']['rss'] - r['s0']['rss']) * 1024 / r['ok'])
    m['rss_before_mb'] = r['s0']['rss']
    m['rss_with_conns_mb'] = r['s1']['rss']
    m['rss_after_close_mb'] = s2['rss']
    out['metrics'] = m
    out['primary'] = 'open_s'
    out['better'] = 'lower'
    out['cpu'] = dict(broker_cores_open=Probe.cores(r['s0'], r['s1']))
    if r['errors']:
        out['connect_errors'] = r['errors']
        out['warning'] = f'{N - r["ok"]} of {N} connections failed'


CELERY_MODULE = r'''
import os
from celery import Celery

Q = os.environ['BENCH_CELERY_QUEUE']
RESULTS = os.environ.get('BENCH_CELERY_RESULTS', 'none')
app = Celery('bench_celery_tasks', broker=os.environ['BENCH_BROKER_URL'])
conf = dict(
    task_default_queue=Q, task_default_exchange=Q, task_default_routing_key=Q,
    event_exchange=Q + '.ev', control_exchange=Q + '.ctl',
    worker_enable_remote_control=False, worker_send_task_events=False,
    task_send_sent_event=False, broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False, task_ignore_result=(RESULTS == 'none'),
    accept_content=['json'], task_serializer='json', result_serializer='json',
)
if RESULTS == 'rpc':
    conf['result_backend'] = 'rpc://'
if os.environ.get('BENCH_CELERY_PREFETCH'):
    conf['worker_prefetch_multiplier'] = int(os.environ['BENCH_CELERY_PREFETCH'])
app.conf.update(conf)

_COUNTER = os.environ.get('BENCH_COUNTER_FILE')
_fd = None


@app.task(name='bench.add')
def add(x, y):
    global _fd
    if _COUNTER:
        if _fd is None:
            _fd = os.open(_COUNTER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(_fd, b'.')
    return x + y
'''


def run_celery(a, ui, probe, out):
    try:
        import celery  # noqa: F401
    except ImportError:
        raise SystemExit('celery scenario needs celery installed in this python') from None
    pid = os.getpid()
    q = f'bench.celery.{pid}'
    tmp = tempfile.mkdtemp(prefix='bench-celery-')
    counter = os.path.join(tmp, 'counter')
    open(counter, 'wb').close()
    with open(os.path.join(tmp, 'bench_celery_tasks.py'), 'w') as f:
        f.write(CELERY_MODULE)
    env = dict(BENCH_BROKER_URL=a.url, BENCH_CELERY_QUEUE=q, BENCH_CELERY_RESULTS=a.celery_results,
               BENCH_COUNTER_FILE=counter)
    if a.celery_prefetch:
        env['BENCH_CELERY_PREFETCH'] = str(a.celery_prefetch)
    wenv = os.environ.copy()
    wenv.update(env)
    wenv['PYTHONPATH'] = tmp + (os.pathsep + wenv['PYTHONPATH'] if wenv.get('PYTHONPATH') else '')
    cmd = [sys.executable, '-m', 'celery', '-A', 'bench_celery_tasks', 'worker',
           f'--pool={a.celery_pool}', '-Q', q, '--without-gossip', '--without-mingle',
           '--without-heartbeat', '-l', 'WARNING', '-n', f'bench{pid}@localhost']
    if a.celery_pool == 'prefork':
        cmd.append(f'--concurrency={a.celery_concurrency}')
    N = a.tasks
    out['params'] = dict(pool=a.celery_pool,
                         concurrency=a.celery_concurrency if a.celery_pool == 'prefork' else 1,
                         results=a.celery_results, tasks=N, celery=celery.__version__,
                         prefetch_multiplier=a.celery_prefetch or None)
    logf = open(os.path.join(tmp, 'worker.log'), 'w+')
    worker = subprocess.Popen(cmd, cwd=tmp, env=wenv, stdout=logf, stderr=subprocess.STDOUT,
                              start_new_session=True)
    m = {}
    try:
        async def wait_ready():
            c = await connect(ui, name='bench-celery-monitor')
            ch = await c.open_channel(1)
            t_end = time.monotonic() + 90
            try:
                while time.monotonic() < t_end:
                    if worker.poll() is not None:
                        raise RuntimeError('celery worker exited early')
                    ok, ch, _err = await safe_rpc(c, ch, C.Queue.Declare(queue=q, passive=True),
                                                  (C.Queue.DeclareOk,), 10.0)
                    if ok is not None and ok.consumer_count >= 1:
                        return
                    await asyncio.sleep(0.1)
                raise TimeoutError('celery worker not consuming after 90s')
            finally:
                await c.close()
        t_start_worker = time.monotonic()
        run_async(wait_ready())
        m['worker_start_s'] = r1(time.monotonic() - t_start_worker, 2)
        os.environ.update(env)
        sys.path.insert(0, tmp)
        import bench_celery_tasks as bt  # noqa: E402

        def count():
            return os.path.getsize(counter)

        def batch(n, off):
            """send n tasks and wait until all are done; returns timings."""
            t_a = time.monotonic()
            base = count()
            if a.celery_results == 'rpc':
                rs = [bt.add.delay(i, off) for i in range(n)]
                t_b = time.monotonic()
                for i, r in enumerate(rs):
                    v = r.get(timeout=max(1.0, a.phase_timeout - (time.monotonic() - t_a)))
                    if v != i + off:
                        raise RuntimeError(f'wrong result {v} != {i + off}')
            else:
                for i in range(n):
                    bt.add.apply_async((i, off), ignore_result=True)
                t_b = time.monotonic()
                t_end = t_a + a.phase_timeout
                while count() < base + n:
                    if time.monotonic() > t_end:
                        raise TimeoutError(f'celery: {count() - base}/{n} tasks done '
                                           f'after {a.phase_timeout}s')
                    if worker.poll() is not None:
                        raise RuntimeError('celery worker died')
                    time.sleep(0.002)
            return t_a, t_b, time.monotonic()
        batch(min(200, N), 1000000)                 # warm-up (connections, pool, imports)
        wpids = descendants(worker.pid)
        wcpu0 = proc_cpu_s(wpids)
        s0 = probe.snap()
        t_a, t_b, t_c = batch(N, 0)
        s1 = probe.snap()
        wcpu1 = proc_cpu_s(wpids)
        m['tasks_per_s'] = r1(N / (t_c - t_a))
        m['send_rate'] = r1(N / (t_b - t_a))
        m['total_s'] = r1(t_c - t_a, 3)
        out['cpu'] = dict(broker_cores=Probe.cores(s0, s1),
                          host_busy_cores=Probe.cores(s0, s1, 'host'),
                          worker_cores=r1((wcpu1 - wcpu0) / (t_c - t_a), 3)
                          if wcpu0 is not None and wcpu1 is not None else None)
        out['broker_rss_mb'] = s1['rss']
    except BaseException as e:
        logf.seek(0)
        tail = logf.read()[-2000:]
        out['worker_log_tail'] = tail
        raise e
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(5)
        logf.close()
        try:
            bt.app.pool.force_close_all()  # noqa: F821
        except Exception:  # noqa: BLE001
            pass
        teardown(ui, [q], [q, q + '.ev'])
        shutil.rmtree(tmp, ignore_errors=True)
    out['metrics'] = m
    out['primary'] = 'tasks_per_s'


# --------------------------------------------------------------------------
# Null broker: generator ceiling
# --------------------------------------------------------------------------

class NullBroker(asyncio.Protocol):
    """Just enough AMQP server to exercise the load generator:
    publishes on non-confirm channels are discarded without parsing (after the
    first one), confirm channels get basic.ack(multiple) per read, consumers get
    an endless stream of pre-encoded deliveries honouring basic.qos prefetch."""

    body_size = 16

    def connection_made(self, tr):
        self.loop = asyncio.get_running_loop()
        self.tr = tr
        self.tail = b''
        self.hdr_ok = False
        self.discard = False
        self.closed = False
        self.confirm = set()
        self.pub = collections.Counter()
        self.prefetch = {}
        self.acked = collections.Counter()
        self.credit = {}
        self.streams = {}
        self.paused = False
        self.resume = None

    def connection_lost(self, exc):
        self.closed = True
        for f in list(self.credit.values()) + [self.resume]:
            if f is not None and not f.done():
                f.set_result(None)

    def pause_writing(self):
        self.paused = True
        self.resume = self.loop.create_future()

    def resume_writing(self):
        self.paused = False
        if self.resume is not None and not self.resume.done():
            self.resume.set_result(None)

    def w(self, ch, m):
        self.tr.write(pframe.marshal(m, ch))

    def data_received(self, data):
        if self.discard:
            if data.endswith(CLOSE_FRAME):
                self.tr.write(CLOSE_OK_FRAME)
                self.tr.close()
            return
        if self.tail:
            data = self.tail + data
        p, n = 0, len(data)
        if not self.hdr_ok:
            if n < 8:
                self.tail = data
                return
            p = 8
            self.hdr_ok = True
            self.w(0, C.Connection.Start(
                server_properties={'product': 'amqp-bench null broker',
                                   'capabilities': {'publisher_confirms': True, 'basic.nack': True,
                                                    'consumer_cancel_notify': True,
                                                    'per_consumer_qos': True}},
                mechanisms='PLAIN', locales='en_US'))
        need_ack = set()
        plain_pub = False
        while n - p >= 8:
            ft, ch, size = HDR.unpack_from(data, p)
            end = p + size + 8
            if end > n:
                break
            if ft == 1:
                cm = U32.unpack_from(data, p + 7)[0]
                if cm == CM_PUBLISH:
                    self.pub[ch] += 1
                    if ch in self.confirm:
                        need_ack.add(ch)
                    else:
                        plain_pub = True
                elif cm == CM_ACK:
                    tag = U64.unpack_from(data, p + 11)[0]
                    if tag > self.acked[ch]:
                        self.acked[ch] = tag
                    f = self.credit.get(ch)
                    if f is not None and not f.done():
                        f.set_result(None)
                else:
                    _x, _c, f = pframe.unmarshal(data[p:end])
                    self.method(ch, f)
                    if self.closed:
                        return
            p = end
        self.tail = data[p:]
        for ch in need_ack:
            self.tr.write(ACKF.pack(1, ch, 13, 60, 80, self.pub[ch], 1, FRAME_END))
        if plain_pub and not self.streams and not self.confirm:
            self.discard = True

    def method(self, ch, f):
        w = lambda m: self.w(ch, m)  # noqa: E731
        if isinstance(f, C.Connection.StartOk):
            w(C.Connection.Tune(channel_max=2047, frame_max=131072, heartbeat=0))
        elif isinstance(f, C.Connection.Open):
            w(C.Connection.OpenOk())
        elif isinstance(f, (C.Connection.Close, C.Connection.CloseOk)):
            if isinstance(f, C.Connection.Close):
                w(C.Connection.CloseOk())
            self.closed = True
            self.tr.close()
        elif isinstance(f, C.Channel.Open):
            w(C.Channel.OpenOk())
        elif isinstance(f, C.Channel.Close):
            self.streams.pop(ch, None)
            w(C.Channel.CloseOk())
        elif isinstance(f, C.Exchange.Declare):
            w(C.Exchange.DeclareOk())
        elif isinstance(f, C.Exchange.Delete):
            w(C.Exchange.DeleteOk())
        elif isinstance(f, C.Queue.Declare):
            w(C.Queue.DeclareOk(queue=f.queue or 'null.q', message_count=0, consumer_count=0))
        elif isinstance(f, C.Queue.Bind):
            w(C.Queue.BindOk())
        elif isinstance(f, C.Queue.Purge):
            w(C.Queue.PurgeOk(message_count=0))
        elif isinstance(f, C.Queue.Delete):
            w(C.Queue.DeleteOk(message_count=0))
        elif isinstance(f, C.Basic.Qos):
            self.prefetch[ch] = f.prefetch_count
            w(C.Basic.QosOk())
        elif isinstance(f, C.Confirm.Select):
            self.confirm.add(ch)
            w(C.Confirm.SelectOk())
        elif isinstance(f, C.Basic.Consume):
            ctag = f.consumer_tag or 'null-ctag'
            w(C.Basic.ConsumeOk(consumer_tag=ctag))
            self.streams[ch] = asyncio.ensure_future(self.stream(ch, ctag, f.no_ack))
        elif isinstance(f, C.Basic.Cancel):
            self.streams.pop(ch, None)
            w(C.Basic.CancelOk(consumer_tag=f.consumer_tag))

    async def stream(self, ch, ctag, no_ack):
        pf = 0 if no_ack else self.prefetch.get(ch, 0)
        B = max(1, min(100, pf)) if pf else 100
        one = encode_content(ch, C.Basic.Deliver(consumer_tag=ctag, delivery_tag=1, exchange='',
                                                 routing_key='null'),
                             make_body(self.body_size), C.Basic.Properties(delivery_mode=1), 131072)
        L = len(one)
        off = 12 + len(ctag.encode())
        buf = bytearray(one * B)
        offs = [i * L + off for i in range(B)]
        tag, k = 0, 0
        while not self.closed and ch in self.streams:
            if pf:
                while tag + B - self.acked[ch] > pf and not self.closed:
                    fut = self.loop.create_future()
                    self.credit[ch] = fut
                    await fut
                if self.closed:
                    break
            for i, o in enumerate(offs):
                U64.pack_into(buf, o, tag + 1 + i)
            self.tr.write(bytes(buf))
            tag += B
            if self.paused:
                await self.resume
            else:
                k += 1
                if k & 7 == 0:
                    await asyncio.sleep(0)


def serve_null(port, size):
    NullBroker.body_size = size

    async def main():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(NullBroker, '127.0.0.1', port, backlog=2048)
        print(f'PORT {srv.sockets[0].getsockname()[1]}', flush=True)
        await asyncio.Event().wait()
    run_async(main())


def start_null_broker(size):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--serve-null',
                             '--port', '0', '--size', str(size)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith('PORT '):
        proc.kill()
        raise RuntimeError('null broker failed to start')
    return proc, int(line.split()[1])


# --------------------------------------------------------------------------
# Summaries of JSONL files written by compare.sh
# --------------------------------------------------------------------------

LOWER_BETTER = ('_ms', 'open_s', 'close_s', 'last_ok_s', 'fill_s', 'drain_s', 'total_s', 'failed',
                'rss', 'worker_start_s', 'backlog_growth_rate', 'nacks')
SKIP_METRICS = ('publish_batch', 'samples', 'all_ok', 'rss_before_mb')


def better_of(metric):
    return ('lower' if any(metric.endswith(s) or metric.startswith(s) for s in LOWER_BETTER)
            else 'higher')


def fmt(v):
    if v is None:
        return '-'
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        if abs(v) >= 1000:
            return f'{v:,.0f}'
        if abs(v) >= 10:
            return f'{v:.1f}'
        return f'{v:.3g}'
    return str(v)


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def summarize(files):
    """Tables from JSONL result files.  Variants run against both tag A and tag B
    get a pairwise table (medians + per-pair B/A ratios); everything else (a
    single broker, the null-broker ceiling) gets median/min/max."""
    rows = []
    for fn in files:
        with open(fn) as f:
            for ln in f:
                ln = ln.strip()
                if ln.startswith('{'):
                    try:
                        rows.append(json.loads(ln))
                    except json.JSONDecodeError:
                        pass
    order, groups = [], collections.defaultdict(list)
    for r in rows:
        # derived, noise-robust efficiency: primary rate per broker CPU core-second
        m, p = r.get('metrics') or {}, r.get('primary')
        bc = (r.get('cpu') or {}).get('broker_cores')
        if p and _num(m.get(p)) and better_of(p) == 'higher' and _num(bc) and bc > 0.05 \
                and r.get('tag') != 'null':
            m[f'{p}_per_broker_core'] = round(m[p] / bc, 1)
        lab = r.get('label') or f"{r.get('scenario')}-{(r.get('params') or {}).get('size', '')}"
        key = (lab, r.get('tag') or 'A') if (r.get('tag') or 'A') not in ('A', 'B') else (lab, 'AB')
        if key not in groups:
            order.append(key)
        groups[key].append(r)
    pair_lines, single_lines, noise = [], [], []
    for key in order:
        lab, kind = key
        rs = groups[key]
        tags = {r.get('tag') or 'A' for r in rs}
        two = kind == 'AB' and tags >= {'A', 'B'}
        shown = lab if kind == 'AB' else f'{lab} [{kind}]'
        metrics = []
        for r in rs:
            for k in (r.get('metrics') or {}):
                if k not in metrics and k not in SKIP_METRICS:
                    metrics.append(k)
        primary = next((r.get('primary') for r in rs if r.get('primary')), '')
        for k in metrics:
            kname = f'**{k}**' if k == primary else k
            better = better_of(k)
            if two:
                byt = {'A': {}, 'B': {}}
                for r in rs:
                    v = (r.get('metrics') or {}).get(k)
                    if _num(v):
                        byt[r.get('tag') or 'A'][r.get('pair') or 0] = v
                va, vb = list(byt['A'].values()), list(byt['B'].values())
                ma = statistics.median(va) if va else None
                mb = statistics.median(vb) if vb else None
                ratios = [byt['B'][p] / byt['A'][p]
                          for p in byt['A'] if p in byt['B'] and byt['A'][p]]
                rmed = statistics.median(ratios) if ratios else None
                pair_lines.append(f'| {shown} | {kname} | {better} | {fmt(ma)} | {fmt(mb)} | '
                                  f'{fmt(rmed)} | {" ".join(f"{x:.2f}" for x in ratios)} | '
                                  f'{len(va)}/{len(vb)} |')
            else:
                vals = [(r.get('metrics') or {}).get(k) for r in rs]
                vals = [v for v in vals if _num(v)]
                if not vals:
                    continue
                single_lines.append(f'| {shown} | {kname} | {better} | '
                                    f'{fmt(statistics.median(vals))} | '
                                    f'{fmt(min(vals))} | {fmt(max(vals))} | {len(vals)} | '
                                    f'{" / ".join(fmt(v) for v in vals)} |')
        for r in rs:
            if r.get('error'):
                (pair_lines if two else single_lines).append(
                    f'| {shown} | ERROR ({r.get("tag") or "A"} pair {r.get("pair")}) | | | | | '
                    f'{r["error"][:150].replace("|", "/")} | |')
        cpu = [r.get('cpu') or {} for r in rs]
        vals = {}
        for name in ('broker_cores', 'generator_cores', 'others_cores', 'other_procs_cores'):
            v = [c.get(name) for c in cpu if _num(c.get(name))]
            vals[name] = v
        if vals['broker_cores'] or vals['other_procs_cores']:
            med = lambda v: fmt(statistics.median(v)) if v else '-'  # noqa: E731
            other_max = fmt(max(vals['other_procs_cores'])) if vals['other_procs_cores'] else '-'
            noise.append(f'| {shown} | {med(vals["broker_cores"])} | '
                         f'{med(vals["generator_cores"])} | '
                         f'{med(vals["others_cores"])} | {med(vals["other_procs_cores"])} | '
                         f'{other_max} |')
    if pair_lines:
        print('| variant | metric | better | A median | B median | B/A (median of per-pair ratios) '
              '| per-pair B/A | n A/B |')
        print('|---|---|---|---:|---:|---:|---|---|')
        print('\n'.join(pair_lines))
        print()
    if single_lines:
        print('| variant | metric | better | median | min | max | n | all runs |')
        print('|---|---|---|---:|---:|---:|---:|---|')
        print('\n'.join(single_lines))
        print()
    if noise:
        print('CPU during the steady-state window (cores, medians over all runs of the variant; '
              '"residual" = host busy - broker - generator, includes loopback softirq; '
              '"other procs" = CPU of processes that are neither broker nor harness = noise):\n')
        print('| variant | broker | generator | residual | other procs (median) '
              '| other procs (max) |')
        print('|---|---:|---:|---:|---:|---:|')
        print('\n'.join(noise))


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

SCENARIOS = ('pubsub', 'pubsub-autoack', 'confirms', 'fanout', 'latency', 'fill-drain',
             'connections', 'celery')


def main(argv=None):
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--url', default='amqp://guest:guest@127.0.0.1:5672/')
    ap.add_argument('--scenario', choices=SCENARIOS)
    ap.add_argument('--seconds', type=float, default=10.0, help='steady-state measurement window')
    ap.add_argument('--warmup', type=float, default=2.0, help='excluded warm-up before the window')
    ap.add_argument('--size', type=int, default=16, help='message body bytes')
    ap.add_argument('--publishers', type=int, default=1)
    ap.add_argument('--consumers', type=int, default=None,
                    help='consumer connections (default: 1; fanout: one per queue; confirms: 0)')
    ap.add_argument('--consumer-procs', type=int, default=1,
                    help='processes the consumers are spread over')
    ap.add_argument('--prefetch', type=int, default=1000)
    ap.add_argument('--ack-every', type=int, default=100,
                    help='basic.ack multiple=True every N tags')
    ap.add_argument('--no-ack', action='store_true',
                    help='consume with no_ack (implied by pubsub-autoack)')
    ap.add_argument('--confirm', action='store_true',
                    help='publisher confirms in any flow scenario')
    ap.add_argument('--transient', action='store_true',
                    help='confirms: delivery_mode 1 instead of 2')
    ap.add_argument('--window', type=int, default=1000,
                    help='max outstanding unconfirmed publishes')
    ap.add_argument('--batch', type=int, default=0,
                    help='messages per write (0 = auto, ~128 KiB)')
    ap.add_argument('--rate', type=float, default=0,
                    help='paced publish rate msg/s (latency default 1000)')
    ap.add_argument('--fanout-queues', type=int, default=4)
    ap.add_argument('--messages', type=int, default=200000, help='fill-drain message count')
    ap.add_argument('--phase-timeout', type=float, default=240.0,
                    help='fill/drain/celery phase timeout')
    ap.add_argument('--conns', type=int, default=1000,
                    help='connections to open (guarded by the broker fd headroom)')
    ap.add_argument('--conn-concurrency', type=int, default=200)
    ap.add_argument('--conn-timeout', type=float, default=5.0)
    ap.add_argument('--unsafe-conns', action='store_true',
                    help='skip the broker fd-headroom guard of the connections scenario')
    ap.add_argument('--tasks', type=int, default=5000)
    ap.add_argument('--celery-pool', choices=('prefork', 'solo'), default='prefork')
    ap.add_argument('--celery-concurrency', type=int, default=2)
    ap.add_argument('--celery-results', choices=('none', 'rpc'), default='none')
    ap.add_argument('--celery-prefetch', type=int, default=0,
                    help='worker_prefetch_multiplier (0 = Celery default, 4)')
    ap.add_argument('--broker-pid', default='',
                    help='comma-separated pids to sample (default: auto, '
                         'processes holding the LISTEN socket of the URL port)')
    ap.add_argument('--null-broker', action='store_true',
                    help='run the scenario against the built-in null broker (generator ceiling)')
    ap.add_argument('--headers', choices=('none', 'celery'), default=None,
                    help='headers table on every published message (default: '
                         '$AMQP_BENCH_HEADERS, else none)')
    ap.add_argument('--label', default='')
    ap.add_argument('--tag', default='')
    ap.add_argument('--pair', type=int, default=0)
    ap.add_argument('--max-time', type=float, default=0, help='watchdog (s); 0 = automatic')
    ap.add_argument('--verbose', action='store_true')
    ap.add_argument('--summarize', nargs='+', metavar='JSONL',
                    help='print tables for result files')
    ap.add_argument('--serve-null', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--port', type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.headers is not None:      # the publisher processes read it from the environment
        os.environ['AMQP_BENCH_HEADERS'] = a.headers
    bench_headers()                 # a bad value stops here, not in a child
    VERBOSE = a.verbose
    if a.summarize:
        summarize(a.summarize)
        return 0
    if a.serve_null:
        serve_null(a.port, a.size)
        return 0
    if not a.scenario:
        ap.error('--scenario is required')

    out = dict(scenario=a.scenario, label=a.label or None, tag=a.tag or None, pair=a.pair or None,
               url=redact(a.url), seconds=a.seconds, warmup=a.warmup,
               harness_version=HARNESS_VERSION,
               started=datetime.datetime.now().isoformat(timespec='seconds'),
               loadavg=os.getloadavg()[0], better='higher')
    null_proc = None
    rc = 0
    max_time = a.max_time or {'fill-drain': 2 * a.phase_timeout + 120,
                              'celery': 3 * a.phase_timeout + 150,
                              'connections': 3 * a.conn_timeout + 240,
                              }.get(a.scenario, a.seconds + a.warmup + 150)

    def on_alarm(_s, _f):
        raise TimeoutError(f'watchdog: scenario exceeded {max_time:.0f}s')
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(max_time))
    try:
        if a.null_broker:
            if a.scenario not in ('pubsub', 'pubsub-autoack', 'confirms', 'fanout'):
                raise SystemExit('--null-broker supports pubsub, pubsub-autoack, confirms, fanout')
            null_proc, port = start_null_broker(a.size)
            a.url = f'amqp://guest:guest@127.0.0.1:{port}/'
            out['url'] = 'null-broker'
            pids = [null_proc.pid]
        elif a.broker_pid:
            pids = [int(x) for x in a.broker_pid.split(',') if x]
        else:
            ui0 = parse_url(a.url)
            pids = (find_listener_pids(ui0['port'])
                    if ui0['host'] in ('127.0.0.1', 'localhost', '::1') else [])
        ui = parse_url(a.url)
        out['broker_pids'] = pids
        probe = Probe(pids)
        if a.scenario in ('pubsub', 'pubsub-autoack', 'confirms', 'fanout', 'latency'):
            run_flow(a, ui, probe, out)
        elif a.scenario == 'fill-drain':
            run_fill_drain(a, ui, probe, out)
        elif a.scenario == 'connections':
            run_connections(a, ui, probe, out)
        elif a.scenario == 'celery':
            run_celery(a, ui, probe, out)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, SystemExit) and not isinstance(e.code, str):
            raise
        out['error'] = ((out.get('error') + '; ' if out.get('error') else '')
                        + f'{type(e).__name__}: {e}')
        if VERBOSE:
            traceback.print_exc()
        rc = 2
    finally:
        signal.alarm(0)
        if null_proc is not None:
            null_proc.terminate()
            try:
                null_proc.wait(5)
            except subprocess.TimeoutExpired:
                null_proc.kill()
    out['finished'] = datetime.datetime.now().isoformat(timespec='seconds')
    if out.get('error'):
        rc = rc or 1
    print(json.dumps(out), flush=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
