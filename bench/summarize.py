#!/usr/bin/env python3
"""summarize.py OUTDIR [REFERENCE=postfix]: the medians of bench/run's results as markdown tables,
each figure of the other servers also as a ratio to the reference server's."""
import csv
import statistics
import sys
from collections import defaultdict

out = sys.argv[1]
reference = sys.argv[2] if len(sys.argv) > 2 else "postfix"


def median(values):
    numbers = [float(v) for v in values if v not in ("", "-")]
    return statistics.median(numbers) if numbers else None


rows = defaultdict(list)
with open(f"{out}/results.csv") as f:
    for row in csv.DictReader(f):
        rows[(row["server"], int(row["conc"]))].append(row)

columns = [
    ("accepted_per_s", "accepted msg/s", "higher"),
    ("delivered_per_s", "delivered msg/s", "higher"),
    ("p50_ms", "p50 ms", "lower"),
    ("p99_ms", "p99 ms", "lower"),
    ("cpu_s_per_1000", "CPU s / 1000 msgs", "lower"),
    ("peak_rss_kb", "peak RSS MB", "lower"),
]
medians = {key: {c: median(r[c] for r in runs) for c, _, _ in columns} for key, runs in rows.items()}

print(f"Medians of each figure over the repetitions; ratios are against {reference} at the same concurrency.")
print()
header = ["server", "conc", "runs"] + [title for _, title, _ in columns] + ["not delivered"]
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for server, conc in sorted(rows, key=lambda k: (k[1], k[0] != "petrel", k[0])):
    figures = medians[(server, conc)]
    base = medians.get((reference, conc), {})
    cells = [server, str(conc), str(len(rows[(server, conc)]))]
    for column, _, _ in columns:
        value = figures[column]
        if value is None:
            cells.append("-")
            continue
        shown = f"{value / 1024:.1f}" if column == "peak_rss_kb" else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
        if server != reference and base.get(column):
            shown += f" ({value / base[column]:.2f}×)"
        cells.append(shown)
    cells.append(str(sum(int(r["not_delivered"]) for r in rows[(server, conc)])))
    print("| " + " | ".join(cells) + " |")

extra = []
with open(f"{out}/extra.csv") as f:
    for line in f.read().splitlines()[1:]:
        server, test, figures = line.split(",", 2)
        extra.append((server, test, figures.split(",")))
idle = [(s, f) for s, t, f in extra if t == "idle" and len(f) >= 8]
if idle:
    print()
    print("| server | idle connections held | greeted | RSS before MB | RSS held MB | RSS per connection KiB | PSS per connection KiB | new client's 220 ms | its message accepted ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for server, f in idle:
        print(f"| {server} | {f[0]} | {f[1]} | {int(f[2]) / 1024:.1f} | {int(f[3]) / 1024:.1f} | {f[4]} | {f[5]} | {f[6]} | {f[7]} |")
big = [(s, f) for s, t, f in extra if t == "big" and len(f) >= 5]
if big:
    print()
    print("| server | message octets | reply | RSS idle MB | peak RSS MB | peak above idle MB |")
    print("|---|---|---|---|---|---|")
    for server, f in big:
        print(f"| {server} | {f[0]} | {f[1]} | {int(f[2]) / 1024:.1f} | {int(f[3]) / 1024:.1f} | {int(f[4]) / 1024:.1f} |")
