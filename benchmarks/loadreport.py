"""The load benchmark's report: the table the README shows, and the failures that make the
run exit non-zero."""

from __future__ import annotations

import subprocess
from typing import Any


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "Flags")
    return {k: fields[k].strip() for k in keep if k in fields}


def render(result: dict[str, Any]) -> str:
    """Markdown: the README's "Load and faults" figures."""
    lines = []
    m = result["machine"]
    lines.append(
        f"Run of {result['when']}, commit {result['commit']}, {m['cpu']} with "
        f"{m['cpu_count']} CPUs, {result['model']}; `{result['command']}`."
    )
    load = result.get("load")
    if load:
        mem = load["memory"]
        lines.append(
            f"\n**Load**: {load['clients']} clients for {load['seconds']:.0f} s on "
            f"{load['images_at_start']:,} images: {load['requests']:,} requests "
            f"({load['requests_per_s']}/s), server cores busy {load['server_cores_busy']}, "
            f"**{load['responses_5xx']} responses 5xx**, {load['transport_errors']} dropped "
            f"connections, **{load['database_locked']} "
            f"'database is locked'** (server log: {load['server_log']}), peak server memory "
            f"**{mem['peak_vmhwm_mib']:.0f} MiB** (VmHWM; {mem['rss_before_load_mib']:.0f} MiB "
            f"before the load).\n"
        )
        lines.append("| endpoint | requests | statuses | p50 ms | p95 ms | p99 ms |")
        lines.append("|---|---|---|---|---|---|")
        for row in load["endpoints"].values():
            statuses = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
            lines.append(
                f"| `{row['endpoint']}` | {row['count']:,} | {statuses} | {row['p50_ms']:.0f} "
                f"| {row['p95_ms']:.0f} | {row['p99_ms']:.0f} |"
            )
        v = load["verify"]
        lines.append(
            f"\nUploads: {v['acknowledged_uploads']} answered 2xx, {v['deleted']} of them "
            f"deleted; of the {v['expected_present']} left, {v.get('present by id', 0)} found "
            f"by id and {v.get('top hit of its own bytes', 0)} the top hit (score >= 0.99) of "
            f"an image search with their own bytes (all checked): **{v['lost']} lost**. "
            f"Login probe: {load['login_probe']}."
        )
    kills = result.get("kills")
    if kills:
        lines.append(
            f"\n**Kills**: {kills['kills']} SIGKILLs mid-upload ({kills['uploaders']} "
            f"uploaders), {kills['acknowledged']} uploads answered 2xx, **{kills['lost']} "
            f"lost**, integrity_check ok every time: {kills['integrity_ok']}; after a last "
            f"restart {kills['present_over_http_after_restart']} found over HTTP.\n"
        )
        lines.append("| round | killed after s | acknowledged | integrity | missing | restart s |")
        lines.append("|---|---|---|---|---|---|")
        for r in kills["rounds"]:
            lines.append(
                f"| {r['round']} | {r['killed_after_s']} | {r['acknowledged']} | "
                f"{r['integrity_check']} | {r['missing'] + r['wrong_content']} | "
                f"{r['startup_s']} |"
            )
    return "\n".join(lines) + "\n"


def failures(result: dict[str, Any]) -> list[str]:
    """What the issue says must be zero, where it is not."""
    out = []
    load = result.get("load")
    if load:
        if load["responses_5xx"]:
            out.append(f"{load['responses_5xx']} responses 5xx: {load['examples_5xx'][:3]}")
        if load["transport_errors"] or load["server_log"]["tracebacks"]:
            out.append(
                f"{load['transport_errors']} connections dropped, "
                f"{load['server_log']['tracebacks']} tracebacks in the server log"
            )
        if load["database_locked"] or load["server_log"]["database_locked"]:
            out.append("'database is locked' seen")
        if load["verify"]["lost"] or load["verify"]["problems"]:
            out.append(f"uploads lost or not found: {load['verify']['problems'][:3]}")
    kills = result.get("kills")
    if kills and (kills["lost"] or not kills["integrity_ok"]):
        out.append(f"kill test: {kills['lost']} lost, integrity ok: {kills['integrity_ok']}")
    if kills and kills["present_over_http_after_restart"] != kills["acknowledged"]:
        out.append("kill test: not every acknowledged upload found over HTTP after restart")
    return out


