"""bench/report.py -- the bench's results as a table, summary lines, JSON and a chart.

Medians over the rounds of each cell (peak RSS: the largest over the rounds), the
sluice/Postfix ratios, and the summary lines for issue 9's targets at 20 sessions x 10 KB.
The chart (bench/results/latest.png) shows msgs/s and CPU ms per message per cell, sluice
beside Postfix; it is drawn by Debian's python3-matplotlib without a display (Agg).

Never: measures anything; hides a missed target (each summary line says met or by how much
it was missed).
"""
import json
import statistics

TARGET_CELL = (20, 10240)
TARGETS = {
    "msgs_per_s_ratio_min": 3.0,
    "cpu_ms_per_msg_max": 0.5,
    "single_sender_p50_ratio_max": 0.5,
    "idle_rss_per_session_kb_max": 6.0,
    "large_message_rss_growth_mb_max": 16.0,
}


def size_label(size):
    return "%d KB" % (size // 1024) if size % 1024 == 0 else "%d B" % size


def cell_label(cell):
    return "%d x %s" % (cell["sessions"], size_label(cell["size"]))


def median_of(turns, key):
    values = [t[key] for t in turns if key in t]
    return round(statistics.median(values), 3) if values else None


def summarize_cell(cell):
    """Adds cell["median"][pipeline] and cell["ratio"] from the rounds."""
    cell["median"] = {}
    for name, rounds in cell["rounds"].items():
        load = [r["load"] for r in rounds]
        latency = [r["latency"] for r in rounds]
        rss = {}
        for turn in load + latency:
            for role, r in turn["peak_rss"].items():
                known = rss.setdefault(role, {"max_mb": 0.0, "processes": 0})
                known["max_mb"] = max(known["max_mb"], r["max_mb"])
                known["processes"] = max(known["processes"], r["processes"])
        cell["median"][name] = {
            "msgs_per_s": median_of(load, "msgs_per_s"),
            "cpu_ms_per_msg": median_of(load, "cpu_ms_per_msg"),
            "p50_ms": median_of(latency, "p50_ms"),
            "p99_ms": median_of(latency, "p99_ms"),
            "latency_turn_msgs_per_s": median_of(latency, "msgs_per_s"),
            "latency_turn_cpu_ms_per_msg": median_of(latency, "cpu_ms_per_msg"),
            "cpu_ms_per_msg_by_root": {role: round(statistics.median(t["cpu_ms_per_msg_by_root"].get(role, 0)
                                                                     for t in load), 3)
                                       for role in load[0]["cpu_ms_per_msg_by_root"]},
            "peak_rss_mb": rss,
            "peak_pss_total_mb": max(t["peak_pss_total_mb"] for t in load + latency),
            "peak_rss_largest_mb": max(r["max_mb"] for r in rss.values()),
        }
    s, p = cell["median"]["sluice"], cell["median"]["postfix"]
    cell["ratio"] = {k: (round(s[k] / p[k], 3) if s[k] and p[k] else None)
                     for k in ("msgs_per_s", "cpu_ms_per_msg", "p50_ms", "p99_ms", "peak_pss_total_mb")}


def fmt(v, digits=2):
    if v is None:
        return "-"
    return "%.*f" % (digits, v)


def table(cells):
    """The grid as text: one line per pipeline and one ratio line per cell."""
    head = "%-12s %-8s %9s %10s %8s %8s %11s %s" % ("cell", "pipeline", "msgs/s", "CPU ms/msg", "p50 ms",
                                                   "p99 ms", "PSS MB", "peak RSS MB per process (largest)")
    lines = [head, "-" * len(head)]
    for cell in cells:
        label = cell_label(cell)
        for name in ("sluice", "postfix"):
            m = cell["median"][name]
            roles = ", ".join("%s %.1f%s" % (role, r["max_mb"], " x%d" % r["processes"] if r["processes"] > 1 else "")
                              for role, r in sorted(m["peak_rss_mb"].items(), key=lambda kv: -kv[1]["max_mb"])[:4])
            lines.append("%-12s %-8s %9.0f %10.3f %8s %8s %11.1f %s" % (
                label, name, m["msgs_per_s"], m["cpu_ms_per_msg"], fmt(m["p50_ms"]), fmt(m["p99_ms"]),
                m["peak_pss_total_mb"], roles))
            label = ""
        r = cell["ratio"]
        lines.append("%-12s %-8s %9s %10s %8s %8s %11s" % (
            "", "ratio", fmt(r["msgs_per_s"]), fmt(r["cpu_ms_per_msg"]), fmt(r["p50_ms"]), fmt(r["p99_ms"]),
            fmt(r["peak_pss_total_mb"])))
    return "\n".join(lines)


def verdict(value, limit, at_least):
    """'met' or how far the value is from the target."""
    if value is None:
        return "not measured"
    if (value >= limit) if at_least else (value <= limit):
        return "met"
    return "MISSED (%.2fx short)" % (limit / value) if at_least else "MISSED (%.2fx over)" % (value / limit)


def summary_lines(result):
    """The ratio/result lines for issue 9's targets, plus how the run was made."""
    out = []
    cell = next((c for c in result["cells"] if (c["sessions"], c["size"]) == TARGET_CELL), None)
    if cell is None:
        cell = result["cells"][0]
        out.append("note the target cell 20 x 10 KB was not run; figures below are for %s" % cell_label(cell))
    s, p, r = cell["median"]["sluice"], cell["median"]["postfix"], cell["ratio"]
    label = cell_label(cell)
    out.append("ratio msgs_per_s sluice/postfix at %s = %s (sluice %.0f, postfix %.0f msgs/s)  target >= %.0f: %s" % (
        label, fmt(r["msgs_per_s"]), s["msgs_per_s"], p["msgs_per_s"], TARGETS["msgs_per_s_ratio_min"],
        verdict(r["msgs_per_s"], TARGETS["msgs_per_s_ratio_min"], True)))
    stages = ", ".join("%s %.3f" % kv for kv in s["cpu_ms_per_msg_by_root"].items())
    out.append("result sluice cpu_ms_per_msg at %s = %.3f (%s; postfix %.3f, ratio %s)  target <= %.1f: %s" % (
        label, s["cpu_ms_per_msg"], stages, p["cpu_ms_per_msg"], fmt(r["cpu_ms_per_msg"]),
        TARGETS["cpu_ms_per_msg_max"], verdict(s["cpu_ms_per_msg"], TARGETS["cpu_ms_per_msg_max"], False)))
    out.append("result latency at %s: sluice p50 %s p99 %s ms, postfix p50 %s p99 %s ms (sluice-bench-load, "
               "connect to final 250)" % (label, fmt(s["p50_ms"]), fmt(s["p99_ms"]), fmt(p["p50_ms"]), fmt(p["p99_ms"])))
    ss = result.get("single_sender")
    if ss:
        out.append("ratio single_sender_p50 sluice/postfix = %s (sluice p50 %.2f p99 %.2f ms, postfix p50 %.2f p99 "
                   "%.2f ms; smtplib, 1 KB, new connection each)  target <= %.1f: %s" % (
                       fmt(ss["ratio_p50"]), ss["median"]["sluice"]["p50_ms"], ss["median"]["sluice"]["p99_ms"],
                       ss["median"]["postfix"]["p50_ms"], ss["median"]["postfix"]["p99_ms"],
                       TARGETS["single_sender_p50_ratio_max"],
                       verdict(ss["ratio_p50"], TARGETS["single_sender_p50_ratio_max"], False)))
    idle = result.get("idle_sessions")
    if idle:
        kb = idle["rss_per_session_bytes"] / 1024.0
        out.append("result idle_rss_per_session = %.2f KB at %d idle frontend sessions  target <= %.0f KB: %s" % (
            kb, idle["sessions"], TARGETS["idle_rss_per_session_kb_max"],
            verdict(kb, TARGETS["idle_rss_per_session_kb_max"], False)))
    large = result.get("large_message")
    if large:
        worst = max(large["rss_growth_mb"].values())
        stages = ", ".join("%s %.1f" % kv for kv in sorted(large["rss_growth_mb"].items()))
        out.append("result large_message_rss_growth = %.1f MB in the worst stage (%s; %.0f MB message)  "
                   "target <= %.0f MB: %s" % (worst, stages, large["bytes"] / 1048576.0,
                                               TARGETS["large_message_rss_growth_mb_max"],
                                               verdict(worst, TARGETS["large_message_rss_growth_mb_max"], False)))
    sink = result.get("smtp_sink")
    if sink:
        out.append("result smtp_sink alone (one hop, no queue) at %s = %.0f msgs/s, %.3f ms CPU per message" % (
            cell_label(sink), sink["msgs_per_s"], sink["cpu_ms_per_msg"]))
    m = result["machine"]
    out.append("note sluice delivers with %s; both queues on %s (%s), not tmpfs" % (
        m["sluice_deliver"], m["queue_device"], m["queue_fstype"]))
    out.append("note CPU outside both pipelines and the bench (other work; kernel threads such as the file "
               "system's journal) averaged %.0f%% of one CPU during the measured turns (%d CPUs): msgs/s and "
               "latency are wall-clock figures and move with it, CPU per message does not" % (
                   100 * m["other_cpu_share"], m["cpus"]))
    out.append("note %d rounds per cell, pipelines alternating first; whole bench %.0f s" % (
        result["config"]["rounds"], result["duration_s"]))
    return out


def write_json(result, path):
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


def write_chart(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = result["cells"]
    labels = [cell_label(c) for c in cells]
    x = list(range(len(cells)))
    width = 0.38
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.2 * len(cells) + 3), 8), sharex=True)
    for ax, key, title in ((axes[0], "msgs_per_s", "messages per second (higher is better)"),
                           (axes[1], "cpu_ms_per_msg", "CPU ms per message, whole pipeline until delivered "
                                                      "(lower is better)")):
        for offset, name, color in ((-width / 2, "sluice", "tab:blue"), (width / 2, "postfix", "tab:gray")):
            values = [c["median"][name][key] or 0 for c in cells]
            bars = ax.bar([i + offset for i in x], values, width, label=name, color=color)
            ax.bar_label(bars, fmt="%.0f" if key == "msgs_per_s" else "%.2f", fontsize=7)
        if key == "cpu_ms_per_msg":
            ax.axhline(TARGETS["cpu_ms_per_msg_max"], color="tab:red", linestyle="--", linewidth=1,
                       label="sluice target %.1f ms" % TARGETS["cpu_ms_per_msg_max"])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    axes[1].set_xlabel("sessions x message size")
    fig.suptitle("sluice vs Postfix before-queue proxy pipeline (median of %d rounds, %s)" % (
        result["config"]["rounds"], result["started"]), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
