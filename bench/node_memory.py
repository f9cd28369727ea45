"""Node plugin memory: resident set size idle, after a 20-volume lifecycle, and at its peak.

The node plugin runs on every node of the cluster, so its memory is paid once per node. This
benchmark measures the command the Helm chart's DaemonSet runs: the console script
``oxide-csi serve --mode=node --endpoint=... --kubelet-dir=... --attachable=true`` with the
chart's environment (``LOG_LEVEL``, ``LOG_FORMAT``, ``OXIDE_MAX_DISKS_PER_INSTANCE``, the node id
in ``KUBE_NODE_NAME``) plus ``OXIDE_CSI_LOOP_DEVICE_DIR`` (dev mode's loop devices stand in for
the node's disks). It measures it twice: as the chart deploys it by default (metrics off) and
with ``OXIDE_CSI_METRICS_ADDRESS`` (metrics on), while
``oxide-csi dev`` in another process plays the rack and the controller; and a third time with
graceful power-off on (``gracefulPowerOff.enabled``: ``--graceful-power-off`` and the kubernetes
state backend), its heartbeat Lease and its watch for power-off requests running against an API
server over TLS (``bench/node_kube.py``). It reads the RSS from
``/proc/PID/status``: idle (serving, after a NodeGetInfo), after every volume's full lifecycle,
and the peak (the kernel's ``VmHWM`` high-water mark, and the highest of samples taken every
10 ms).

Lifecycle, 20 volumes in rounds of up to 7 (8 disk slots, one is the boot disk): CreateVolume
and ControllerPublishVolume (dev process); NodeStageVolume (format + mount) and
NodePublishVolume for all of a round at once, as kubelet does for a pod with many volumes; a
write that is fsynced; NodeUnpublish/NodeUnstage; ControllerUnpublish and DeleteVolume.

Baselines in the same run: a bare Python interpreter, and ones that have imported, without
serving, every ``oxide_csi`` module the measured command loads (found by running that command
once under ``python -X importtime``; the list is kept with the results), with and without the
``ssl`` module (which the node plugin leaves out, see ``oxide_csi/ssl_gate.py``) -- what the
plugin pays before doing anything. Targets: under 45 MB for the chart's default, idle and at
the peak; at most 55 MB at the peak with graceful power-off's heartbeat and watch over TLS.
Needs root. Run: ``.venv/bin/python -m bench.node_memory``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import devrig
from bench.common import (
    clean_env,
    free_port,
    machine_line,
    print_table,
    scratch_dir,
    wait_for_channel,
    write_results,
)
from bench.node_kube import TlsApiServer
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc

MIB = 1 << 20
BLOCK_SSL = "import oxide_csi.ssl_gate; oxide_csi.ssl_gate.block_ssl()"
SLOTS = 7
#: Targets (MB): the chart's default node plugin, idle and at the peak; and at the peak with
#: graceful power-off's heartbeat and watch over TLS.
TARGET_DEFAULT_MB = 45
TARGET_GRACEFUL_MB = 55
GRACEFUL = "graceful power-off (heartbeat and watch over TLS)"
#: The console script, next to this interpreter in the virtualenv.
CONSOLE_SCRIPT = Path(sys.executable).parent / "oxide-csi"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


class PeakSampler:
    """Samples a process's RSS every 10 ms in a thread and keeps the highest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def evict_libraries() -> int:
    """Drop the page cache of the interpreter's and the virtualenv's shared libraries.

    Why: a library written moments ago (a fresh ``scripts/bootstrap``) sits in the page cache
    in large folios, and a process mapping it then counts several MB more resident memory than
    one mapping the same library read from disk (seen: +6 MB for grpc's). Evicting first
    measures every run from the same state, that of libraries read from disk. Only clean pages
    go, nothing is lost. Returns how many files were evicted.
    """
    # The virtualenv's packages and the interpreter's own extension modules; nothing else.
    roots = [Path(sys.prefix), Path(sys.base_prefix) / "lib"]
    count = 0
    for root in roots:
        for lib in root.rglob("*.so*"):
            try:
                fd = os.open(lib, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def baseline_rss(code: str) -> float:
    """RSS of ``python -c CODE; sleep`` once it has settled."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{code}\nimport time\nprint('ready', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.5)
        return rss_mib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def run_round(
    dev: devrig.DevProcess, node: csi_pb2_grpc.NodeStub, kubelet: Path, names: list[str]
) -> None:
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        volumes = [devrig.create(dev.controller, n, 1 << 30) for n in names]
        contexts = list(
            pool.map(lambda v: devrig.controller_publish(dev.controller, v, dev.node_id), volumes)
        )
        vols = []
        for name, volume, context in zip(names, volumes, contexts, strict=True):
            staging, target = devrig.kubelet_paths(kubelet, name)
            vols.append(devrig.Volume(volume, staging, target, context))
        list(pool.map(lambda v: devrig.stage(node, v), vols))
        list(pool.map(lambda v: devrig.publish(node, v), vols))
        for vol in vols:
            devrig.write_probe(vol.target)

        def node_down(vol: devrig.Volume) -> None:
            vid = vol.volume.volume_id
            node.NodeUnpublishVolume(
                csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=str(vol.target)),
                timeout=120,
            )
            node.NodeUnstageVolume(
                csi_pb2.NodeUnstageVolumeRequest(
                    volume_id=vid, staging_target_path=str(vol.staging)
                ),
                timeout=120,
            )

        list(pool.map(node_down, vols))
        ids = [v.volume.volume_id for v in vols]
        list(pool.map(lambda i: devrig.controller_unpublish(dev.controller, i, dev.node_id), ids))
        for vid in ids:
            devrig.delete(dev.controller, vid)


class NodeProcess:
    """The chart's node command, ``oxide-csi serve --mode=node``, on its own socket and dirs."""

    def __init__(
        self,
        work: Path,
        dev: devrig.DevProcess,
        name: str,
        *,
        metrics: bool,
        python_flags: tuple[str, ...] = (),
        kube: TlsApiServer | None = None,
    ) -> None:
        self.kubelet = work / f"{name}-kubelet"
        self.kubelet.mkdir()
        endpoint = f"unix://{work / (name + '.sock')}"
        argv = [str(CONSOLE_SCRIPT), "serve", "--mode=node", f"--endpoint={endpoint}"]
        argv += [f"--kubelet-dir={self.kubelet}", "--attachable=true"]
        if kube is not None:
            argv += kube.node_args()
        if python_flags:  # the same script, run by this interpreter with extra flags
            argv = [sys.executable, *python_flags, *argv]
        env = clean_env() | {
            "LOG_LEVEL": "info",  # the chart's defaults (values.yaml, commonEnv)
            "LOG_FORMAT": "json",
            "OXIDE_MAX_DISKS_PER_INSTANCE": "8",
            "KUBE_NODE_NAME": dev.node_id,
            "OXIDE_CSI_LOOP_DEVICE_DIR": str(dev.state / "devices"),
        }
        if metrics:
            env["OXIDE_CSI_METRICS_ADDRESS"] = f"127.0.0.1:{free_port()}"
        if kube is not None:
            env |= kube.node_env()
        self.log_path = work / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.channel = wait_for_channel(endpoint, self.proc, self.log_path)
        self.stub = csi_pb2_grpc.NodeStub(self.channel)

    def idle(self) -> float:
        """RSS once it has answered a call and settled."""
        self.stub.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10)
        time.sleep(1.0)
        return rss_mib(self.proc.pid)

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


def plugin_modules(dev: devrig.DevProcess, work: Path) -> list[str]:
    """The ``oxide_csi`` modules the node command has loaded once it serves, in load order.

    Read from ``python -X importtime`` of the same command (a run apart from the measured
    ones), so the baseline imports what the real process imports, not a list kept by hand.
    """
    node = NodeProcess(work, dev, "node-imports", metrics=False, python_flags=("-X", "importtime"))
    try:
        node.idle()
    finally:
        node.close()
    modules: list[str] = []
    for line in node.log_path.read_text().splitlines():
        if line.startswith("import time:"):
            module = line.rsplit("|", 1)[1].strip()
            if module.split(".")[0] == "oxide_csi" and module not in modules:
                modules.append(module)
    if "oxide_csi.servicers.node" not in modules:
        raise RuntimeError(f"no node servicer among the imports; see {node.log_path}")
    return modules


def measure(
    dev: devrig.DevProcess,
    work: Path,
    label: str,
    *,
    metrics: bool,
    volumes: int,
    kube: TlsApiServer | None = None,
) -> list[dict[str, Any]]:
    """Idle, after ``volumes`` lifecycles, and peak RSS of one node plugin process."""
    name = "node-kube" if kube is not None else "node-metrics" if metrics else "node"
    node = NodeProcess(work, dev, name, metrics=metrics, kube=kube)
    try:
        if kube is not None:
            kube.wait_running()
        rows = [{"process": f"node plugin, {label}, idle", "rss_mib": node.idle()}]
        sampler = PeakSampler(node.proc.pid)
        names = [f"pvc-mem-{name}-{i:02d}" for i in range(volumes)]
        for first in range(0, len(names), SLOTS):
            batch = names[first : first + SLOTS]
            run_round(dev, node.stub, node.kubelet, batch)
            done, rss = first + len(batch), rss_mib(node.proc.pid)
            print(f"  {label}: {done} volumes done: RSS {rss:.1f} MiB", flush=True)
        sampled_peak = sampler.stop()
        after = rss_mib(node.proc.pid)
        hwm = status_kib(node.proc.pid, "VmHWM") / 1024
        rows.append({"process": f"node plugin, {label}, after {volumes} volumes", "rss_mib": after})
        rows.append({"process": f"node plugin, {label}, peak", "rss_mib": max(hwm, sampled_peak)})
        return rows
    finally:
        node.close()


def graceful_power_off_exists() -> bool:
    """Whether ``serve`` has ``--graceful-power-off`` (the node's heartbeat and watch)."""
    out = subprocess.run(
        [str(CONSOLE_SCRIPT), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return "--graceful-power-off" in out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=20)
    parser.add_argument(
        "--no-graceful",
        dest="graceful",
        action="store_false",
        help="leave out the run with graceful power-off (heartbeat and watch over TLS)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("node_memory runs oxide-csi dev and a node plugin, which need root")
    settings: dict[str, Any] = {
        "volumes": args.volumes,
        "per_round": SLOTS,
        "volume_size_gib": 1,
        "fs_type": "ext4",
        "measured_process": "oxide-csi serve --mode=node --endpoint=unix://... --kubelet-dir=... "
        "--attachable=true (the console script, the chart's node args and env; metrics off, the "
        "chart's default, and on), OXIDE_CSI_LOOP_DEVICE_DIR = oxide-csi dev's loop devices; "
        "then with --graceful-power-off --state-backend=kubernetes --kubeconfig=... (an API "
        "server over TLS, kube_sim)",
    }
    print(f"node memory on {machine_line()}; settings {settings}", flush=True)
    settings["shared_libraries_evicted_from_page_cache"] = evict_libraries() > 0
    with scratch_dir("bench-mem-") as work:
        dev = devrig.DevProcess(work, stop_seconds=0.2, start_seconds=0.2)
        try:
            modules = plugin_modules(dev, work)
            settings["baseline_imports"] = modules
            imports = "\n".join(f"import {m}" for m in modules)
            rows: list[dict[str, Any]] = [
                {"process": "python interpreter (baseline)", "rss_mib": baseline_rss("pass")},
                {
                    "process": "python + plugin modules imported (baseline)",
                    "rss_mib": baseline_rss(imports),
                },
                {
                    "process": "python + plugin modules imported, no ssl (baseline)",
                    "rss_mib": baseline_rss(f"{BLOCK_SSL}\n{imports}"),
                },
            ]
            for label, metrics in (("metrics off (chart default)", False), ("metrics on", True)):
                rows += measure(dev, work, label, metrics=metrics, volumes=args.volumes)
            if args.graceful and not graceful_power_off_exists():
                print("no graceful power-off in this plugin: its run is left out", flush=True)
            elif args.graceful:
                kube = TlsApiServer(work)
                try:
                    rows += measure(
                        dev, work, GRACEFUL, metrics=False, volumes=args.volumes, kube=kube
                    )
                    settings["graceful_api_activity"] = kube.activity()
                finally:
                    kube.close()
        finally:
            dev.close()
    for row in rows:
        row["rss_mib"] = round(row["rss_mib"], 1)
        row["rss_mb"] = round(row["rss_mib"] * MIB / 1e6, 1)
    print_table(
        "Node plugin resident memory",
        ["process", "RSS MiB", "RSS MB"],
        [list(r.values()) for r in rows],
    )
    default = [r["rss_mb"] for r in rows if "chart default" in r["process"]]
    peak_mb = max(default)
    verdict = "met" if peak_mb < TARGET_DEFAULT_MB else "MISSED"
    print(
        f"target < {TARGET_DEFAULT_MB} MB, chart default, idle and peak: {verdict} "
        f"(highest {peak_mb} MB)"
    )
    graceful = [r["rss_mb"] for r in rows if r["process"] == f"node plugin, {GRACEFUL}, peak"]
    if graceful:
        verdict = "met" if graceful[0] <= TARGET_GRACEFUL_MB else "MISSED"
        print(f"target <= {TARGET_GRACEFUL_MB} MB, {GRACEFUL}, peak: {verdict} ({graceful[0]} MB)")
    print(f"results: {write_results('node_memory', settings, rows)}")


if __name__ == "__main__":
    main()
