#!/usr/bin/env python3
"""Writes vm-overview.json and host.json for Prometheus from the InfluxDB dashboards beside
them: the same panels, layout, units and legends, with each InfluxQL target replaced by
the PromQL below (/metrics' families, README "Prometheus"), and `host` (the scrape's
`instance`), `vm` and `bridge` variables. Targets that read what a guest reports about
itself (albatross' gc, memory, logs, http_response) have no vmscope family and are left
out, and so are panels left without a target. Run it after changing either InfluxDB
dashboard: python3 dashboards/prometheus/generate.py (--check: exit 1 if a file differs
from what it would write; a unit test runs that)."""
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
R = "$__rate_interval"
VM = 'instance=~"$host",vm=~"$vm"'
TAP = VM + ',bridge=~"$bridge"'
BR = 'instance=~"$host",bridge=~"$bridge"'
AGENT = 'instance=~"$host"'


def rate(metric, sel, by="vm", extra=""):
    return f"sum by ({by}) (rate({metric}{{{sel}{extra}}}[{R}]))"


def net(direction, what):
    return rate(f"vmscope_vm_network_{direction}_{what}_total", TAP)


def l4(direction, proto):
    return rate("vmscope_vm_net_l4_bytes_total", TAP,
                extra=f',direction="{direction}",protocol="{proto}"') + " * 8"


def service(field):
    return rate(f"vmscope_vm_service_{field}_total", TAP)


HANDSHAKE = (rate("vmscope_vm_service_handshake_seconds_sum", TAP) + " / " +
             rate("vmscope_vm_service_handshake_seconds_count", TAP))
WRITTEN = (rate("vmscope_vm_io_write_bytes_total", VM) + " - " +
           rate("vmscope_vm_io_cancelled_write_bytes_total", VM))

# (title, refId) -> (expr, legend); a legend of None keeps {{vm}}.
T = {}


def panel(title, *targets, unit=None, instant=False):
    T[title] = ([t for t in targets], unit, instant)


DNS = [(service("dns_" + r), r.upper() if r != "other" else "other")
       for r in ("noerror", "nxdomain", "servfail", "refused", "other")]
HTTP = [(service(f"http_{c}xx"), f"{c}xx") for c in range(1, 6)]
panel("Network throughput", (net("receive", "bytes") + " * 8", "{{vm}} host→vm (in)"),
      (net("transmit", "bytes") + " * 8", "{{vm}} vm→host (out)"))
panel("Memory usage", (f"sum by (vm) (vmscope_vm_memory_rss_bytes{{{VM}}})", "{{vm}} RSS"))
panel("Packets", (net("receive", "packets"), "{{vm}} host→vm"),
      (net("transmit", "packets"), "{{vm}} vm→host"))
panel("CPU (utime + stime)", (rate("vmscope_vm_cpu_seconds_total", VM) + " * 100", "{{vm}} CPU"))
panel("CPU wait per VM", (rate("vmscope_vm_cpu_run_delay_seconds_total", VM), "{{vm}} waiting"))
panel("Disk I/O per VM", (rate("vmscope_vm_io_read_bytes_total", VM), "{{vm}} read"),
      (WRITTEN, "{{vm}} write"))
panel("TCP connections to the VM", (service("tcp_accepted"), "{{vm}} accepted"),
      (service("tcp_refused"), "{{vm}} refused"), (service("tcp_unanswered"), "{{vm}} unanswered"))
panel("TCP handshake mean", (HANDSHAKE, "{{vm}} handshake"), unit="s")
panel("DNS answers by RCODE", *[(e, "{{vm}} " + l) for e, l in DNS])
panel("HTTP answers by class", *[(e, "{{vm}} " + l) for e, l in HTTP])
# host.json
panel("Top 10 VMs by bit/s (peak, both directions)",
      (f"topk(10, max by (vm) (max_over_time((sum by (vm) (rate(vmscope_vm_network_receive_bytes_total{{{VM}}}[{R}])) + "
       f"sum by (vm) (rate(vmscope_vm_network_transmit_bytes_total{{{VM}}}[{R}])))[$__range:$__interval]) * 8))", "{{vm}}"),
      instant=True)
panel("Throughput per VM", (net("receive", "bytes") + " * 8", "{{vm}} host→vm"),
      (net("transmit", "bytes") + " * 8", "{{vm}} vm→host"))
panel("CPU per VM (utime + stime)", (rate("vmscope_vm_cpu_seconds_total", VM) + " * 100", "{{vm}}"))
panel("RSS per VM", (f"sum by (vm) (vmscope_vm_memory_rss_bytes{{{VM}}})", "{{vm}}"))
panel("Page faults per VM",
      (rate("vmscope_vm_page_faults_total", VM, extra=',type="minor"'), "{{vm}} minor/s"),
      (rate("vmscope_vm_page_faults_total", VM, extra=',type="major"'), "{{vm}} major/s"))
panel("Top 10 VMs waiting for a CPU (mean)",
      (f"topk(10, sum by (vm) (rate(vmscope_vm_cpu_run_delay_seconds_total{{{VM}}}[$__range])))", "{{vm}}"),
      instant=True)
panel("Top 10 slowest to answer (TCP handshake mean)",
      (f"topk(10, sum by (vm) (increase(vmscope_vm_service_handshake_seconds_sum{{{TAP}}}[$__range])) / "
       f"sum by (vm) (increase(vmscope_vm_service_handshake_seconds_count{{{TAP}}}[$__range])))", "{{vm}}"),
      unit="s", instant=True)
panel("Top 10 busiest disks (read + write, mean)",
      (f"topk(10, sum by (vm) (rate(vmscope_vm_io_read_bytes_total{{{VM}}}[$__range])) + "
       f"sum by (vm) (rate(vmscope_vm_io_write_bytes_total{{{VM}}}[$__range])) - "
       f"sum by (vm) (rate(vmscope_vm_io_cancelled_write_bytes_total{{{VM}}}[$__range])))", "{{vm}}"),
      instant=True)
panel("Bytes per protocol vm→host", *[(l4("transmit", p), "{{vm}} " + p) for p in ("tcp", "udp", "icmp", "other")])
panel("Bytes per protocol host→vm", *[(l4("receive", p), "{{vm}} " + p) for p in ("tcp", "udp", "icmp", "other")])
panel("Packets per VM", (net("receive", "packets"), "{{vm}} host→vm"),
      (net("transmit", "packets"), "{{vm}} vm→host"))
panel("New TCP connections",
      (rate("vmscope_vm_net_tcp_syns_total", TAP, extra=',direction="receive"'), "{{vm}} opened by host"),
      (rate("vmscope_vm_net_tcp_syns_total", TAP, extra=',direction="transmit"'), "{{vm}} opened by VM"))
panel("Drops and errors", (net("receive", "drops"), "{{vm}} host→vm dropped"),
      (net("transmit", "drops"), "{{vm}} vm→host dropped"),
      (net("receive", "errors"), "{{vm}} host→vm errors"),
      (net("transmit", "errors"), "{{vm}} vm→host errors"))
panel("Bridge traffic", *[(rate("vmscope_bridge_net_bytes_total", BR, by="bridge", extra=f',path="{p}"') + " * 8",
                           "{{bridge}} " + p) for p in ("vm_to_host", "host_to_vm", "host_rx", "host_tx")])
panel("Taps per bridge", (f"sum by (bridge) (vmscope_bridge_taps{{{BR}}})", "{{bridge}}"))
panel("Tick duration",
      (f"sum by (instance) (rate(vmscope_tick_duration_seconds_sum{{{AGENT}}}[{R}])) / "
       f"sum by (instance) (rate(vmscope_tick_duration_seconds_count{{{AGENT}}}[{R}]))", "{{instance}} mean"),
      (f"histogram_quantile(0.99, sum by (instance, le) (rate(vmscope_tick_duration_seconds_bucket{{{AGENT}}}[{R}])))",
       "{{instance}} p99"), unit="s")
panel("Lines written / dropped",
      (f"sum by (instance) (rate(vmscope_output_lines_written_total{{{AGENT}}}[{R}]))", "{{instance}} written/s"),
      (f"sum by (instance) (rate(vmscope_output_lines_dropped_total{{{AGENT}}}[{R}]))", "{{instance}} dropped/s"))
panel("Agent RSS", (f"vmscope_resident_memory_bytes{{{AGENT}}}", "{{instance}}"))
panel("Process events lost / tracked",
      (f"vmscope_proc_events_lost_total{{{AGENT}}}", "{{instance}} events lost"),
      (f"vmscope_vms{{{AGENT}}}", "{{instance}} VMs"), (f"vmscope_taps{{{AGENT}}}", "{{instance}} taps"))


def variable(name, label, query):
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": query, "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "sort": 1, "multi": True, "includeAll": True,
            "allValue": ".*", "current": {}, "options": [], "hide": 0}


def convert(src, title):
    d = copy.deepcopy(src)
    d["__inputs"] = [{"name": "DS_PROMETHEUS", "label": "Prometheus (vmscope)",
                      "description": "Prometheus scraping the vmscope agents' /metrics",
                      "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]
    d["__requires"] = [r if r["type"] != "datasource" else
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}
                       for r in d["__requires"]]
    d["annotations"]["list"] = [a for a in d["annotations"]["list"] if a.get("builtIn")]
    d["description"] = title
    d["tags"] = ["vmscope", "prometheus"]
    d["title"] = title
    d["uid"] = src["uid"] + "-prometheus"
    d["templating"]["list"] = [
        variable("host", "Host", "label_values(vmscope_build_info, instance)"),
        variable("vm", "VM", 'label_values(vmscope_vm_cpu_seconds_total{instance=~"$host"}, vm)'),
        variable("bridge", "Bridge", 'label_values(vmscope_vm_network_receive_bytes_total{instance=~"$host"}, bridge)'),
    ]
    panels = []
    for p in d["panels"]:
        if p.get("type") == "row":
            panels.append(p)
            continue
        if p["title"] not in T:
            continue  # what the guest reports about itself
        targets, unit, instant = T[p["title"]]
        p["datasource"] = DS
        p["targets"] = [{"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": l,
                         "range": not instant, "instant": instant,
                         "format": "table" if instant else "time_series"}
                        for i, (e, l) in enumerate(targets)]
        if unit:
            p["fieldConfig"]["defaults"]["unit"] = unit
        if instant:
            # A table of the instant result: the vm label and the value, as the InfluxDB one.
            value = p["options"].get("sortBy", [{}])[0].get("displayName", "Value")
            p["transformations"] = [{"id": "organize", "options": {
                "excludeByName": {"Time": True}, "indexByName": {"vm": 0, "Value": 1},
                "renameByName": {"Value": value}}}]
        panels.append(p)
    d["panels"] = panels
    return d


check = sys.argv[1:] == ["--check"]
stale = []
for name, title in (("vm-overview", "vmscope · VM overview (Prometheus)"), ("host", "vmscope · host (Prometheus)")):
    with open(os.path.join(HERE, "..", name + ".json")) as f:
        src = json.load(f)
    out = convert(src, title)
    text = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    path = os.path.join(HERE, name + ".json")
    if check:
        with open(path) as f:
            if f.read() != text:
                stale.append(path)
        continue
    with open(path, "w") as f:
        f.write(text)
    print(name, len(out["panels"]), "panels,", sum(len(p.get("targets", [])) for p in out["panels"]), "queries")
if stale:
    print("not what dashboards/prometheus/generate.py writes (run it):", *stale)
    sys.exit(1)
