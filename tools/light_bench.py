#!/usr/bin/env python3
"""A light serving benchmark client: closed loop, streamed completions, Python's standard library only.

Why it exists: on a machine with few cores the client shares the CPUs with the server it measures.
`blockserve bench` is a JVM and used 3.0-3.8 s of CPU during a 7-9 s one-client run on a 2-core VM
(its JIT compiling while it measures); this client uses about 2-3% of one core there. Use
`blockserve bench` anywhere the client runs on other cores; use this where it cannot.

Each request: a prompt of random token ids (seeded, distinct per request so no prefix is shared; request i
uses seed + i, so give every run of a series its own range: a run that repeats another's seeds repeats its
prompts, and a server with a prefix cache, blockserve and llama-server alike, answers them from it),
--output-len tokens with ignore_eos, temperature 0, streamed (asking for the usage chunk, whose
completion_tokens is then counted; a server that sends none is taken at --output-len); the stream must
end with [DONE], else the request counts as failed. Prints one line: requests completed, output tokens/s
over the wall time, TTFT p50 and TPOT p50 (ms); with --json a JSON object instead. Exits 1 when a
request failed.

  python3 tools/light_bench.py --port 8080 --model NAME --clients 8 --requests 32
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="first request's prompt seed; request i uses seed + i")
    ap.add_argument("--vocab", type=int, default=40000, help="prompt ids are drawn from [3, vocab)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of the line")
    a = ap.parse_args()

    lock = threading.Lock()
    next_index = [0]
    results = []  # (ttft s, tpot s, tokens) of completed requests
    failures = []

    def body(i):
        r = random.Random(a.seed + i)
        return json.dumps({"model": a.model, "prompt": [r.randrange(3, a.vocab) for _ in range(a.input_len)],
                           "max_tokens": a.output_len, "ignore_eos": True, "temperature": 0, "stream": True,
                           "stream_options": {"include_usage": True}})

    def one(i):
        conn = http.client.HTTPConnection(a.host, a.port, timeout=a.timeout)
        try:
            t0 = time.perf_counter()
            conn.request("POST", "/v1/completions", body(i), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:200]!r}")
            first = last = None
            chunks = 0
            tokens = a.output_len
            done = False
            for line in resp:
                line = line.strip()
                if line == b"data: [DONE]":
                    done = True
                    break
                if line.startswith(b"data: "):
                    now = time.perf_counter()
                    event = json.loads(line[6:])
                    if event.get("usage"):
                        tokens = event["usage"]["completion_tokens"]
                    if event.get("choices"):
                        first = first or now
                        last = now
                        chunks += 1
            if not done:
                raise RuntimeError(f"stream ended without [DONE] after {chunks} chunks")
            if first is None:
                raise RuntimeError("stream had no tokens")
            return first - t0, (last - first) / max(1, tokens - 1), tokens
        finally:
            conn.close()

    def worker():
        while True:
            with lock:
                if next_index[0] >= a.requests:
                    return
                i = next_index[0]
                next_index[0] += 1
            try:
                r = one(i)
                with lock:
                    results.append(r)
            except Exception as e:  # counted, and the run goes on
                with lock:
                    failures.append(str(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(r[2] for r in results)
    ttft = statistics.median(r[0] for r in results) * 1e3 if results else None  # JSON null, not NaN
    tpot = statistics.median(r[1] for r in results) * 1e3 if results else None
    if a.json:
        print(json.dumps({"completed": len(results), "failed": len(failures), "output_tokens": tokens,
                          "output_throughput": tokens / wall, "median_ttft_ms": ttft, "median_tpot_ms": tpot,
                          "duration": wall, "errors": failures[:3]}), flush=True)
    else:
        ms = lambda v, d: "-" if v is None else f"{v:.{d}f}"
        print(f"completed {len(results)}/{a.requests}  output {tokens / wall:.1f} tok/s  TTFT p50 {ms(ttft, 0)} ms  "
              f"TPOT p50 {ms(tpot, 2)} ms  wall {wall:.2f} s" + (f"  failures: {failures[:3]}" if failures else ""),
              flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
