"""Load on `rnnedge serve` over loopback: N concurrent clients streaming words, batched against --max-batch 1.

    python benchmarks/serve_load.py ptb-small.onnx --text $RNNEDGE_DATA/ptb/ptb.test.txt \
        [--clients 1 8 64 256] [--seconds 8] [--window-ms MS] [--soak 300] [--json [PATH]] \
        [--baseline-python OTHER/.venv/bin/python] [--server-flags="--switch-interval-ms 0.5"]
        [--variant="--half-batch-from 0"] [--client picows|websockets]

``--baseline-python`` adds a third server, the same command run by another interpreter (another
install of rnnedge, e.g. the previous release; ``--baseline-model`` gives it the same checkpoint as its
own export when the file format changed between them), measured level by level beside this one in the
same run: each level runs every server in turn, so a machine's load drifts over all of them alike.

Bounded: every level runs for --seconds (after a warm-up of a fifth of that), every client sends one
word per request and waits for its reply (top-5), on 127.0.0.1 only. In the same run, without the
network, a ``StreamBatch`` of N streams stepping one token each gives the ceiling (tokens/s) and the
median batch step each level's client latency is compared with. Each server mode is a fresh process
(``rnnedge serve``) stopped with SIGTERM at the end (its exit status is checked). ``--soak S`` then runs
clients coming and going (sessions of 20-200 words) for S seconds and samples the server's resident
memory every 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from results import Results, add_json_option
from websockets.asyncio.client import connect

from rnnedge.runtime import LanguageModel, load


# -- the server -------------------------------------------------------------------------------------
class Served:
    def __init__(self, model: str, *args: str, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        cmd = [python, "-m", "rnnedge.cli.main", "serve", model, "--port", "0", "--max-sessions", "4096", *args]
        env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "listening on ws://" in line:
                self.port = int(line.split("ws://")[1].split(":")[1].split(" ")[0])
                break
        else:
            raise RuntimeError(f"server did not start (status {self.proc.wait()})")
        self.url = f"ws://127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("rnnedge_serve_") and "_bucket" not in line and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                out[name.split("{")[0]] = out.get(name.split("{")[0], 0.0) + float(value)
        return out

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def loop_cpu_s(self) -> float:
        """CPU seconds of the event loop's thread (the main thread); the rest is the model workers'."""
        fields = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


# -- clients ----------------------------------------------------------------------------------------
class _LightClient:
    """A load-generator connection on picows (when installed): a quarter of the CPU of ``websockets``' client
    per request, so less of the two cores goes to the generator. Same interface as ``connect(...)``'s."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.replies: deque[str] = deque()
        self.waiter: asyncio.Future[None] | None = None

    async def __aenter__(self) -> _LightClient:
        from picows import WSListener, WSMsgType, ws_connect

        client = self

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.TEXT:
                    client.replies.append(frame.get_payload_as_utf8_text())
                    if client.waiter is not None and not client.waiter.done():
                        client.waiter.set_result(None)
                elif frame.msg_type == WSMsgType.CLOSE:
                    transport.disconnect()

            def on_ws_disconnected(self, transport: Any) -> None:
                if client.waiter is not None and not client.waiter.done():
                    client.waiter.set_exception(ConnectionError("the server closed the connection"))

        self.text = WSMsgType.TEXT
        self.transport, _ = await ws_connect(Listener, self.url, max_frame_size=2**22)
        return self

    async def send(self, text: str) -> None:
        self.transport.send(self.text, text.encode())

    async def recv(self) -> str:
        while not self.replies:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.replies.popleft()

    async def __aexit__(self, *exc: object) -> None:
        self.transport.send_close()
        self.transport.disconnect()
        await self.transport.wait_disconnected()


def _connect(url: str, light: bool) -> Any:
    return _LightClient(url) if light else connect(url, compression=None, max_size=2**22, open_timeout=60)


def light_client_available() -> bool:
    try:
        import picows  # noqa: F401
    except ImportError:
        return False
    return True


async def _level(url: str, words: list[str], n: int, seconds: float, light: bool = False) -> dict[str, Any]:
    """N clients, each streaming words one per request for `seconds` after a warm-up; latencies in seconds."""
    warmup = seconds / 5
    latencies: list[float] = []
    counts = {"tokens": 0, "errors": 0}
    start = asyncio.Event()
    feeds = [json.dumps({"op": "feed", "input": w}) for w in words]

    async def client(i: int) -> None:
        async with _connect(url, light) as ws:
            await ws.send(json.dumps({"op": "open"}))
            assert json.loads(await ws.recv())["op"] == "opened"
            await start.wait()
            t_begin = time.perf_counter()
            measure_from, end = t_begin + warmup, t_begin + warmup + seconds
            j = (i * 7919) % len(words)
            while (now := time.perf_counter()) < end:
                await ws.send(feeds[j])
                reply = await ws.recv()
                done = time.perf_counter()
                j = (j + 1) % len(words)
                if now >= measure_from:
                    latencies.append(done - now)
                    counts["tokens"] += 1
                    if not reply.startswith('{"op":"result"'):  # no JSON parsing: keep the load generator light
                        counts["errors"] += 1
            await ws.send(json.dumps({"op": "close"}))
            await ws.recv()

    tasks = [asyncio.create_task(client(i)) for i in range(n)]
    await asyncio.sleep(0.2 + n * 0.005)  # every connection opened
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    lat = np.array(latencies)
    return {
        "clients": n,
        "tokens_per_s": counts["tokens"] / seconds,
        "p50_ms": float(np.percentile(lat, 50) * 1e3) if lat.size else float("nan"),
        "p99_ms": float(np.percentile(lat, 99) * 1e3) if lat.size else float("nan"),
        "errors": counts["errors"] + len(failures),
        "failures": [repr(f)[:200] for f in failures[:3]],
    }


async def _soak(url: str, words: list[str], clients: int, seconds: float, served: Served) -> dict[str, Any]:
    """Clients coming and going for `seconds`: each loops over sessions of 20-200 words; RSS every 10 s."""
    end = time.perf_counter() + seconds
    counts = {"sessions": 0, "tokens": 0, "errors": 0}
    rss: list[tuple[float, float]] = []

    async def client(i: int) -> None:
        rng = random.Random(i)
        while time.perf_counter() < end:
            async with connect(url, compression=None, max_size=2**22, open_timeout=60) as ws:
                await ws.send(json.dumps({"op": "open"}))
                await ws.recv()
                counts["sessions"] += 1
                j = rng.randrange(len(words))
                for _ in range(rng.randint(20, 200)):
                    await ws.send(json.dumps({"op": "feed", "input": words[j % len(words)]}))
                    if json.loads(await ws.recv()).get("op") != "result":
                        counts["errors"] += 1
                    counts["tokens"] += 1
                    j += 1
                if rng.random() < 0.5:  # half close politely, half just go
                    await ws.send(json.dumps({"op": "close"}))
                    await ws.recv()

    async def sampler() -> None:
        t0 = time.perf_counter()
        while time.perf_counter() < end:
            rss.append((time.perf_counter() - t0, served.rss_mb()))
            await asyncio.sleep(10)
        rss.append((time.perf_counter() - t0, served.rss_mb()))

    results = await asyncio.gather(sampler(), *(client(i) for i in range(clients)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    return {**counts, "failures": len(failures), "rss_mb": rss}


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the ceiling without the network ----------------------------------------------------------------
def stream_batch_steps(
    model_path: str, sizes: list[int], rounds: int = 30
) -> tuple[dict[int, float], dict[int, float]]:
    """Median seconds of one StreamBatch step of N streams, one token each, in this process: wall and CPU."""
    out, cpu = {}, {}
    with load(model_path, threads=1) as model:
        assert isinstance(model, LanguageModel)
        rng = np.random.default_rng(0)
        for n in sizes:
            batch = model.stream_batch()
            for key in range(n):
                batch.add(key)
            times, cpu_times = [], []
            for _ in range(rounds + 3):
                feeds = {k: [int(rng.integers(model.vocab_size))] for k in range(n)}
                t0, c0 = time.perf_counter(), time.process_time()
                batch.feed(feeds)
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            out[n] = statistics.median(times[3:])
            cpu[n] = statistics.median(cpu_times[3:])
    return out, cpu


def _run_level(
    served: Served, mode: str, n: int, args: argparse.Namespace, words: list[str], ceiling: dict[int, float]
) -> dict[str, Any]:
    before, cpu0, loop0 = served.metrics(), served.cpu_s(), served.loop_cpu_s()
    own0, t0 = _own_cpu_s(), time.perf_counter()
    row = asyncio.run(_level(served.url, words, n, args.seconds, light=args.client == "picows"))
    after, cpu1, loop1 = served.metrics(), served.cpu_s(), served.loop_cpu_s()
    own1, t1 = _own_cpu_s(), time.perf_counter()
    steps = after.get("rnnedge_serve_steps_total", 0) - before.get("rnnedge_serve_steps_total", 0)
    step_s = after.get("rnnedge_serve_step_seconds_sum", 0) - before.get("rnnedge_serve_step_seconds_sum", 0)
    tokens = after.get("rnnedge_serve_tokens_total", 0) - before.get("rnnedge_serve_tokens_total", 0)
    row.update(
        mean_batch=tokens / steps if steps else 0.0,
        server_step_ms=step_s / steps * 1e3 if steps else 0.0,
        rss_mb=served.rss_mb(),
        stream_batch_step_ms=ceiling[n] * 1e3,
        server_cpu_share=(cpu1 - cpu0) / (t1 - t0),  # cores' worth used by the server over the level
        server_cpu_us_per_token=(cpu1 - cpu0) / tokens * 1e6 if tokens else 0.0,
        loop_cpu_us_per_token=(loop1 - loop0) / tokens * 1e6 if tokens else 0.0,  # the rest: model workers
        client_cpu_share=(own1 - own0) / (t1 - t0),
        client_cpu_us_per_token=(own1 - own0) / row["tokens_per_s"] / args.seconds * 1e6
        if row["tokens_per_s"]
        else 0.0,
    )
    worker_us = row["server_cpu_us_per_token"] - row["loop_cpu_us_per_token"]
    print(
        f"{mode:>18} N={n:>3}: {row['tokens_per_s']:>8,.0f} tokens/s  p50 {row['p50_ms']:6.2f} ms  "
        f"p99 {row['p99_ms']:6.2f} ms  mean batch {row['mean_batch']:5.1f}  server step "
        f"{row['server_step_ms']:5.2f} ms  errors {row['errors']}  RSS {row['rss_mb']:.0f} MB  "
        f"server CPU {row['server_cpu_share']:.0%} ({row['server_cpu_us_per_token']:.0f} us/token: event loop "
        f"{row['loop_cpu_us_per_token']:.0f}, worker {worker_us:.0f}), "
        f"load generator {row['client_cpu_share']:.0%} ({row['client_cpu_us_per_token']:.0f} us/token)",
        flush=True,
    )
    return row


def _targets(rows: dict[int, dict[str, Any]], ceiling: dict[int, float], cpu: dict[int, float]) -> dict[str, Any]:
    """The issue's targets at N=64 and N=256 for one server's rows."""
    out: dict[str, Any] = {}
    if 64 in rows:
        r = rows[64]
        out["share_of_stream_batch_64"] = r["tokens_per_s"] / (64 / ceiling[64])  # target >= 0.5
        out["p99_over_step_64"] = r["p99_ms"] / (ceiling[64] * 1e3)  # target <= 3
        out["cpu_per_token_over_engine_64"] = r["server_cpu_us_per_token"] / (cpu[64] / 64 * 1e6)  # target <= 2
    if 256 in rows:
        out["errors_256"] = rows[256]["errors"]  # target 0
    return out


def _print_targets(targets: dict[str, dict[str, Any]], rows: dict[str, dict[int, dict[str, Any]]]) -> None:
    """The targets side by side, one column per server (this code, and the baseline when measured beside)."""
    modes = [m for m in targets if targets[m]]
    if not modes:
        return
    lines = [
        ("tokens/s at N=64 / StreamBatch's (target >= 0.50)", "share_of_stream_batch_64", "{:.2f}"),
        ("p99 at N=64 / StreamBatch step (target <= 3)", "p99_over_step_64", "{:.2f}"),
        ("server CPU per token at N=64 / engine's (target <= 2)", "cpu_per_token_over_engine_64", "{:.2f}"),
        ("errors at N=256 (target 0)", "errors_256", "{}"),
    ]
    print("targets" + "".join(f" | {m:>18}" for m in modes))
    for label, key, fmt in lines:
        cells = [fmt.format(targets[m][key]) if key in targets[m] else "-" for m in modes]
        print(f"  {label:<55}" + "".join(f" | {c:>18}" for c in cells))
    # The load generator runs on the same cores: what the CPU alone would allow with it and without it.
    for m in modes:
        r = rows[m].get(64)
        if r is None or not r["tokens_per_s"]:
            continue
        server, gen = r["server_cpu_us_per_token"], r["client_cpu_us_per_token"]
        worker = server - r["loop_cpu_us_per_token"]
        cores = os.cpu_count() or 1
        one_worker = 1e6 / worker if worker > 0 else float("inf")  # one thread steps the model: one core at most
        with_gen = min(cores * 1e6 / (server + gen), one_worker)
        without = min(cores * 1e6 / server, one_worker)
        print(
            f"  {m} N=64: the load generator used {r['client_cpu_share']:.0%} of a core ({gen:.0f} us/token, "
            f"{gen / (server + gen):.0%} of the CPU per token); CPU ceiling on {cores} cores {with_gen:,.0f} tokens/s "
            f"with it, {without:,.0f} without it (the worker thread's {worker:.0f} us/token, on one core, allow "
            f"{one_worker:,.0f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--text", required=True, help="words to stream (e.g. ptb.test.txt)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--window-ms", default=None, help="--batch-window-ms for every batched server (default: each its own default)"
    )
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of clients coming and going (0: none)")
    parser.add_argument("--soak-clients", type=int, default=64)
    parser.add_argument("--baseline-python", default=None, help="another interpreter's rnnedge, measured beside")
    parser.add_argument(
        "--baseline-model",
        default=None,
        help="the model file the baseline serves (the same checkpoint exported by the baseline's rnnedge, "
        "when its file format differs); default: MODEL",
    )
    parser.add_argument("--server-flags", default="", help="more `rnnedge serve` options for this code's servers")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="FLAGS",
        help='another server of this code with these options too (e.g. --variant="--half-batch-from 0"); repeatable',
    )
    parser.add_argument("--no-unbatched", action="store_true", help="skip the --max-batch 1 server")
    parser.add_argument(
        "--plain-too", action="store_true", help="also a server without uvloop and orjson (RNNEDGE_SERVE_PLAIN=1)"
    )
    parser.add_argument(
        "--client",
        choices=["picows", "websockets"],
        default="picows" if light_client_available() else "websockets",
        help="the load generator's WebSocket client (default: picows when installed: less CPU on the shared cores)",
    )
    add_json_option(parser)
    args = parser.parse_args()
    words = Path(args.text).read_text().split()[:50_000]

    results = Results("serve_load", __doc__, models=[args.model])
    report: dict[str, Any] = {"modes": {}}
    ceiling, engine_cpu = stream_batch_steps(args.model, sorted(set(args.clients) | {64}))
    load_start = tuple(round(x, 2) for x in os.getloadavg())
    print(
        f"{args.model}; {os.cpu_count()} CPUs; {args.seconds:g} s per level; loopback; load {load_start}; "
        f"load generator: {args.client}"
    )
    print(
        "StreamBatch without the network: "
        + ", ".join(
            f"N={n}: {s * 1e3:.2f} ms/step ({n / s:,.0f} tokens/s, {engine_cpu[n] / n * 1e6:.0f} us CPU/token)"
            for n, s in ceiling.items()
        )
    )
    extra = args.server_flags.split()
    batched = ["--max-batch", "256", *(["--batch-window-ms", args.window_ms] if args.window_ms else [])]
    plain = {"RNNEDGE_SERVE_PLAIN": "1"}
    modes: dict[str, tuple[str, list[str], dict[str, str]]] = {"batched": (sys.executable, batched + extra, {})}
    if args.plain_too:
        modes["batched (plain)"] = (sys.executable, batched + extra, plain)
    for flags in args.variant:
        modes[f"batched {flags}"] = (sys.executable, batched + extra + flags.split(), {})
    if args.baseline_python:
        modes["batched (baseline)"] = (args.baseline_python, batched, {})
    if not args.no_unbatched:
        modes["max-batch 1"] = (sys.executable, ["--max-batch", "1", "--batch-window-ms", "0", *extra], {})
    model_of = {"batched (baseline)": args.baseline_model or args.model}
    servers = {
        mode: Served(model_of.get(mode, args.model), *flags, python=py, env=env)
        for mode, (py, flags, env) in modes.items()
    }
    rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    try:
        for n in args.clients:  # each level on every server in turn: the machine's load drifts over all alike
            for mode, served in servers.items():
                rows[mode].append(_run_level(served, mode, n, args, words, ceiling))
        if args.soak > 0:
            soak = asyncio.run(_soak(servers["batched"].url, words, args.soak_clients, args.soak, servers["batched"]))
            report["soak"] = soak
            print(
                f"soak {args.soak:g} s, {args.soak_clients} clients coming and going: {soak['sessions']} sessions, "
                f"{soak['tokens']:,} tokens, errors {soak['errors']}, failures {soak['failures']}; RSS (MB) "
                + " ".join(f"{m:.0f}" for _, m in soak["rss_mb"]),
                flush=True,
            )
    finally:
        statuses = {mode: served.stop() for mode, served in servers.items()}
    engine = results.table("StreamBatch without the network", ["N", "step (ms)", "tokens/s", "CPU per token (µs)"])
    for n, step in ceiling.items():
        engine.add(n, step * 1e3, n / step, engine_cpu[n] / n * 1e6)
    columns = ["server", "N", "tokens/s", "p50 (ms)", "p99 (ms)", "mean batch", "step (ms)", "errors"]
    columns += ["server CPU per token (µs)", "of which the event loop's (µs)", "load generator CPU per token (µs)"]
    levels = results.table("Clients over loopback, one word per request", columns)
    target_table = results.table(
        "Targets at N=64 (256 for errors)",
        [
            "server",
            "tokens/s ÷ StreamBatch's (≥ 0.5)",
            "p99 ÷ StreamBatch step (≤ 3)",
            "CPU per token ÷ engine's (≤ 2)",
            "errors at N=256 (0)",
        ],
    )
    for mode in modes:
        for r in rows[mode]:
            levels.add(
                mode, r["clients"], r["tokens_per_s"], r["p50_ms"], r["p99_ms"], r["mean_batch"], r["server_step_ms"],
                r["errors"], r["server_cpu_us_per_token"], r["loop_cpu_us_per_token"], r["client_cpu_us_per_token"],
            )  # fmt: skip
        by_n = {r["clients"]: r for r in rows[mode]}
        t = _targets(by_n, ceiling, engine_cpu)
        if t:
            target_table.add(
                mode,
                t.get("share_of_stream_batch_64"),
                t.get("p99_over_step_64"),
                t.get("cpu_per_token_over_engine_64"),
                t.get("errors_256"),
            )
        if statuses[mode] != 0:
            results.note(f"{mode}: the server's exit status after SIGTERM was {statuses[mode]}")
    if "soak" in report:
        soak = report["soak"]
        results.note(
            f"soak {args.soak:g} s, {args.soak_clients} clients coming and going: {soak['sessions']} sessions, "
            f"{soak['tokens']} tokens, {soak['errors']} errors, {soak['failures']} failures; server RSS (MB) "
            + " ".join(f"{m:.0f}" for _, m in soak["rss_mb"])
        )
    load_end = tuple(round(x, 2) for x in os.getloadavg())
    results.note(f"load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end")
    results.note(
        "Every level runs each server in turn (the machine's load drifts over all alike); CPU per token is the "
        "server process's user + system time from /proc over the level, divided by the tokens answered."
    )
    all_targets = {}
    for mode in modes:
        by_n = {r["clients"]: r for r in rows[mode]}
        all_targets[mode] = targets = _targets(by_n, ceiling, engine_cpu)
        report["modes"][mode] = {"rows": rows[mode], "exit_status": statuses[mode], "targets": targets}
        print(f"{mode}: server exit status after SIGTERM: {statuses[mode]}")
    _print_targets(all_targets, {mode: {r["clients"]: r for r in rows[mode]} for mode in modes})
    b = {r["clients"]: r for r in rows["batched"]}
    u = {r["clients"]: r for r in rows.get("max-batch 1", [])}
    if 64 in b and 64 in u:
        print(f"N=64: batched / max-batch 1 = {b[64]['tokens_per_s'] / u[64]['tokens_per_s']:.2f}x (target >= 3)")
    results.write(args.json)


if __name__ == "__main__":
    main()
