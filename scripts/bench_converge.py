"""Benchmark: the whole program converging N generated tenants through the provider host, on real servers.

Starts a throwaway PostgreSQL 15 and an OpenBao dev server (set up as README says, every statement of the
provisioning role logged, a file audit device on OpenBao) and the Metabase double, then runs the real
``__main__.py`` under the converge harness (``tests/harness/converge.py``): a first converge from empty
state, then the no-change pass ``pulumi up --refresh`` makes (Read, Check, Diff for every resource). For each
it prints seconds per tenant and the requests per tenant by system and method: PostgreSQL by statement (from
the server log), Vault by operation (from the audit log; requests made with the provisioning token), Metabase
by HTTP method (from the double's request log). Exits 1 if the no-change pass changed or wrote anything.

    .venv/bin/python scripts/bench_converge.py --tenants 100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.converge import Converger, EngineHost, Pass, Requests, servers_for_converge, write_tenants


def report(label: str, done: Pass, sent: Requests, tenants: int) -> None:
    refresh = f" (refresh {done.refresh_seconds:.1f} s)" if done.ops["read"] else ""
    print(
        f"{label}: {done.seconds:.1f} s{refresh}, {done.seconds / tenants * 1000:.0f} ms per tenant; "
        f"steps {dict(done.ops)}"
    )
    for system, counts in sent.by_system().items():
        total = sum(counts.values())
        detail = ", ".join(f"{method} {n / tenants:.2f}" for method, n in counts.most_common())
        print(f"  {system:<10} {total / tenants:6.2f} requests per tenant ({detail or 'none'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100, help="generated tenants to converge (default 100)")
    args = parser.parse_args(argv)

    with servers_for_converge(log_statement="all") as servers, tempfile.TemporaryDirectory() as folder:
        write_tenants(Path(folder), range(72_000_000, 72_000_000 + args.tenants))
        config = servers.config([f"{folder}/*.yaml"])
        with EngineHost() as host:
            host.configure(config)
            converger = Converger(host, config)

            mark = servers.mark()
            first = converger.up()
            first_sent = servers.requests_since(mark)
            if first.failure is not None:
                messages = [s.error.message for s in first.errors if s.error]
                print(f"the first converge failed: {first.failure}; {messages[:3]}", file=sys.stderr)
                return 1

            mark = servers.mark()
            again = converger.up(refresh=True)
            again_sent = servers.requests_since(mark)

        print(f"{args.tenants} generated tenants, {len(converger.state)} dynamic resources, one provider host")
        report("first converge", first, first_sent, args.tenants)
        report("no-change pass (refresh, then check and diff)", again, again_sent, args.tenants)
        writes = {system: found for system, found in again_sent.writes().items() if found}
        if again.failure is not None or again.changed() or writes:
            print(f"the no-change pass changed {len(again.changed())} resources and wrote {writes}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
