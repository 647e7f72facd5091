"""Times one SQL job in Apache Flink (PyFlink) for the README's comparison.

Usage (through scripts/flink-sql-bench.sh): flink-sql-bench.py JOB.sql INPUT
PARALLELISM. Replaces `{input}` in the job, runs it in streaming mode with
the given parallelism and default heap state, no checkpoints, and prints
one line: wall seconds from submission to the job's end, and the JVM's
peak RSS (VmHWM) in MiB.
"""

import os
import sys
import time

from pyflink.table import EnvironmentSettings, TableEnvironment


def jvm_peak_mib():
    """VmHWM of the JVM PyFlink started (a descendant of this process)."""
    me = os.getpid()
    best = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(l.split(":", 1) for l in f if ":" in l)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        ppid = int(status["PPid"])
        if b"java" in cmd and (ppid == me or ppid in children(me)):
            best = max(best, int(status["VmHWM"].split()[0]) // 1024)
    return best


def children(pid):
    out = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.add(int(p))
        except (OSError, ValueError, IndexError):
            continue
    return out


def main():
    job, input_path, parallelism = sys.argv[1], sys.argv[2], sys.argv[3]
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    conf.set("parallelism.default", parallelism)
    conf.set("table.local-time-zone", "UTC")
    text = open(job).read().replace("{input}", input_path)
    statements = []
    for s in text.split(";"):
        s = "\n".join(l for l in s.splitlines() if not l.strip().startswith("--")).strip()
        if s:
            statements.append(s)
    for s in statements[:-1]:
        env.execute_sql(s)
    start = time.monotonic()
    env.execute_sql(statements[-1]).wait()
    wall = time.monotonic() - start
    print(f"flink wall_s={wall:.2f} peak_rss_mib={jvm_peak_mib()}")


if __name__ == "__main__":
    main()
