"""Golden results from Apache Flink itself for the SQL tests.

For each job `sql/tests/golden/NAME.sql` (placeholders `{input}`: the
committed readings.csv, `{output}`: where results go) runs the same
statements through Flink SQL (PyFlink, streaming mode, parallelism 1, the
session time zone UTC, checkpoints so the filesystem sink commits) and
writes the rows Flink produced, sorted, to `NAME.expected.csv`. The
test `sql/tests/sql_golden.rs` runs each job with Rivulet and compares.

Run through scripts/flink-golden.sh (installs Java 17 and PyFlink). Not part
of CI: the expected files are committed.
"""

import glob
import os
import sys
import tempfile

from pyflink.table import EnvironmentSettings, TableEnvironment


def run(job_path, input_path, out_dir):
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    conf.set("parallelism.default", "1")
    conf.set("table.local-time-zone", "UTC")
    # A watermark after every row (Flink's default emits one every 200 ms
    # of processing time, so which rows are late would depend on speed).
    conf.set("pipeline.auto-watermark-interval", "0 ms")
    conf.set("execution.checkpointing.interval", "200 ms")
    # A failed job fails the script instead of restarting forever.
    conf.set("restart-strategy.type", "none")
    # One aggregation phase: a local pre-aggregate flushed at times of its
    # own would make sums of DOUBLEs depend on when it flushed.
    conf.set("table.optimizer.agg-phase-strategy", "ONE_PHASE")
    text = open(job_path).read().replace("{input}", input_path).replace("{output}", out_dir)
    # A job may set Flink options of its own: `-- flink.config: key = value`.
    for line in text.splitlines():
        if line.startswith("-- flink.config:"):
            key, value = line[len("-- flink.config:"):].split("=", 1)
            conf.set(key.strip(), value.strip())
    statements = [s.strip() for s in text.split(";")]
    result = None
    for s in statements:
        lines = [l for l in s.splitlines() if not l.strip().startswith("--")]
        s = "\n".join(lines).strip()
        if not s:
            continue
        result = env.execute_sql(s)
    result.wait()


def rows(out_dir):
    out = []
    for path in glob.glob(os.path.join(out_dir, "**", "*"), recursive=True):
        name = os.path.basename(path)
        if os.path.isfile(path) and not name.startswith(".") and not name.startswith("_"):
            out.extend(l for l in open(path).read().splitlines() if l)
    return sorted(out)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sql", "tests", "golden")
    root = os.path.normpath(root)
    input_path = os.path.join(root, "readings.csv")
    names = sys.argv[1:] or sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(root, "*.sql")))
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = os.path.join(tmp, "out")
            run(os.path.join(root, name + ".sql"), input_path, out_dir)
            got = rows(out_dir)
        with open(os.path.join(root, name + ".expected.csv"), "w") as f:
            f.write("".join(l + "\n" for l in got))
        print(f"{name}: {len(got)} rows from Flink")


if __name__ == "__main__":
    main()
