"""Every tracker on the CPU and on CUDA in one run: speed, GPU memory, and how far the GPU's boxes
are from the CPU's (`python -m trackers.tools.gpu_bench --out DIR`; .ci/gpu-check runs it on the GPU
machine). Headless.

For each registered tracker (weights as `bench --all` takes them: real NanoTrack files, the
project's own, the fixtures' seeded weights for the rest) it runs, on the same frames of bag.avi:

* cpu: the tracker as built for the CPU (NanoTrack's default engine there is ONNX Runtime);
* cuda fp32: torch on the GPU, TF32 off (models.device.strict_fp32);
* cuda fp16: the network in half precision, where the tracker has that path;
* cuda onnxruntime: NanoTrack's ORT engine on ORT's CUDA provider, where this ONNX Runtime has one.

Only `track()` is timed, frame by frame, after `WARMUP` untimed frames (CUDA's first calls pay for
kernel selection and memory pools). GPU memory is torch's peak allocation during the run
(torch.cuda.max_memory_allocated). Parity against the CPU run: the mean IoU of the boxes frame by
frame and the largest distance between box centres, in frame pixels. The CPU and CUDA runs are
timed in the same process on the same frames, so the speed-up is a ratio measured in one run.
Writes gpu_bench.json and gpu_bench.md into --out (never over an existing file of another name).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback

import numpy as np

from ..run.session import Track
from .bench_timing import BAG_BOX, DEFAULT_NANO_DIR, DEFAULT_VIDEO, SHARED, bench_weights, read_frames

WARMUP = 5


def device_report() -> dict:
    """What this machine runs on: GPU name, torch / CUDA / cuDNN / ORT versions and providers."""
    import cv2
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "opencv": cv2.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda_available": torch.cuda.is_available(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_mib=round(p.total_memory / 2**20), gpu_capability=f"{p.major}.{p.minor}")
    try:
        import onnxruntime as ort

        info.update(onnxruntime=ort.__version__, ort_providers=ort.get_available_providers())
    except ImportError:
        info.update(onnxruntime=None, ort_providers=[])
    return info


def box_parity(boxes: list, reference: list) -> dict:
    """Mean IoU and max centre distance (px) of two runs' boxes over the same frames."""
    from ..run.metrics import iou

    a, b = np.asarray(boxes, float), np.asarray(reference, float)
    n = min(len(a), len(b))
    if n == 0:
        return {}
    a, b = a[:n], b[:n]
    ious = iou(a, b)
    ca, cb = a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    return {
        "mean_iou": float(np.mean(ious)),
        "min_iou": float(np.min(ious)),
        "max_center_px": float(np.linalg.norm(ca - cb, axis=1).max()),
    }


def run_one(tracker, frames: list, box, device: str) -> dict:
    """Init on frames[0], track the rest; fps over the frames after WARMUP, boxes of all."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    boxes, times = [], []
    track = Track(tracker)
    track.init(frames[0], 0, box)
    for i, frame in enumerate(frames[1:], 1):
        t0 = time.perf_counter()
        step = track.step(frame, i, keep_box=False)
        if cuda:
            torch.cuda.synchronize()  # track() returns numpy, so this only closes the books
        times.append(time.perf_counter() - t0)
        boxes.append([float(v) for v in step.box])
    timed = times[WARMUP:] if len(times) > 2 * WARMUP else times
    out = {
        "frames": len(timed),
        "fps": len(timed) / sum(timed),
        "ms_median": 1e3 * float(np.median(timed)),
        "boxes": boxes,
    }
    if cuda:
        out["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def configurations(name: str, cuda: bool, ort_cuda: bool) -> list[tuple[str, str, str]]:
    """(device, engine, precision) runs for a tracker."""
    runs = [("cpu", "default", "fp32")]
    if cuda:
        runs += [("cuda", "torch", "fp32"), ("cuda", "torch", "fp16")]
        if ort_cuda and name.startswith("nanotrack-"):
            runs.append(("cuda", "onnxruntime", "fp32"))
    return runs


def engine_name(tracker) -> str:
    """What runs the tracker's network (every Tracker says: "opencv" where OpenCV runs it all)."""
    return tracker.engine_name


def build_for(name: str, weights: str | None, device: str, engine: str, precision: str):
    """The tracker for one run, or None where it has nothing to run on `device`."""
    from ..core import registry

    if engine == "onnxruntime" or (name.startswith("nanotrack-") and device != "cpu"):
        from ..families.nanotrack import build

        tracker = build(name, weights, device, engine="onnxruntime" if engine == "onnxruntime" else "torch")
    else:
        tracker = registry.build(name, weights, device)
    if device != "cpu" and not hasattr(tracker, "network") and not hasattr(tracker, "trunk"):
        return None  # an OpenCV anchor: nothing of it runs on the GPU
    if precision != "fp32":
        tracker.set_precision(precision)
    if hasattr(tracker, "collect_channels"):
        tracker.collect_channels = False  # the tracking speed; the GUI check draws the channels
    return tracker


def bench_trackers(
    frames: list,
    box,
    names: list | None = None,
    devices=("cpu", "cuda"),
    log=print,
    on_record=None,
    cpu_frames: int | None = None,
) -> list:
    """The runs' records; `on_record(records)` after each (so a run cut short still leaves its results)."""
    import torch

    from models.checkpoint import CheckpointError
    from models.device import DeviceError, check_device, ort_providers

    from ..core import registry

    cuda = "cuda" in devices and torch.cuda.is_available()
    if "cuda" in devices and not cuda:
        log("no CUDA GPU here: CPU runs only")
    ort_cuda = False
    if cuda:
        check_device("cuda")
        try:
            ort_providers(torch.device("cuda"))
            ort_cuda = True
        except (DeviceError, ImportError) as e:
            log(f"ONNX Runtime CUDA runs skipped: {e}")
    fixtures_dir = os.path.join(SHARED, "fixtures")
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in registry.all_trackers():
            if names and spec.name not in names:
                continue
            try:
                weights, how = bench_weights(spec, fixtures_dir, DEFAULT_NANO_DIR, tmp)
            except OSError as e:
                records.append({"tracker": spec.name, "skipped": str(e)})
                log(f"  {spec.name:22s} skipped: {e}")
                continue
            cpu_boxes, cpu_fps, fp32_boxes = None, None, None
            for device, engine, precision in configurations(spec.name, cuda, ort_cuda):
                rec = {"tracker": spec.name, "weights": how, "device": device, "engine": engine, "precision": precision}
                try:
                    tracker = build_for(spec.name, weights, device, engine, precision)
                    if tracker is None:
                        continue
                    rec["engine"] = engine_name(tracker)
                    # the CPU runs may take fewer frames (the big networks crawl there); parity is
                    # then compared over the frames both runs tracked
                    use = frames[: cpu_frames + 1] if device == "cpu" and cpu_frames else frames
                    rec.update(run_one(tracker, use, box, device))
                except (DeviceError, CheckpointError) as e:
                    rec["skipped"] = " ".join(str(e).split())
                except Exception as e:  # noqa: BLE001 - one tracker's failure is a finding, not the end of the run
                    rec["error"] = f"{type(e).__name__}: {e}"
                    rec["traceback"] = traceback.format_exc(limit=6)
                finally:
                    tracker = None
                    if cuda:
                        torch.cuda.empty_cache()
                boxes = rec.pop("boxes", None)
                if boxes is not None:
                    if device == "cpu":
                        cpu_boxes, cpu_fps = boxes, rec["fps"]
                    else:
                        if cpu_boxes is not None:
                            rec["vs_cpu"] = box_parity(boxes, cpu_boxes)
                            rec["speedup_over_cpu"] = rec["fps"] / cpu_fps
                        if precision == "fp32" and engine == "torch":
                            fp32_boxes = boxes
                        elif fp32_boxes is not None:
                            rec["vs_cuda_fp32"] = box_parity(boxes, fp32_boxes)
                records.append(rec)
                log("  " + summary_line(rec))
                if on_record is not None:
                    on_record(records)
    return records


def summary_line(rec: dict) -> str:
    head = f"{rec['tracker']:22s} {rec.get('device', ''):4s} {rec.get('engine', ''):11s} {rec.get('precision', ''):4s}"
    if "fps" in rec:
        extra = f" x{rec['speedup_over_cpu']:.1f}" if "speedup_over_cpu" in rec else ""
        mem = f" {rec['gpu_peak_mib']:.0f} MiB" if "gpu_peak_mib" in rec else ""
        par = f" IoU {rec['vs_cpu']['mean_iou']:.4f}" if rec.get("vs_cpu") else ""
        return f"{head} {rec['fps']:8.1f} fps{extra}{mem}{par}"
    return f"{head} {rec.get('skipped') or rec.get('error')}"


def markdown_table(report: dict) -> str:
    dev = report["device"]
    lines = [
        f"GPU: {dev.get('gpu') or 'none'}; CPU: {dev['cpu_threads']} torch threads; torch {dev['torch']} "
        f"(CUDA {dev.get('torch_cuda')}, cuDNN {dev.get('cudnn')}); ONNX Runtime {dev.get('onnxruntime')}; "
        f"{report['frames']} frames of {os.path.basename(report['video'])} "
        f"({report.get('cpu_frames', report['frames'])} "
        f"on the CPU), first {WARMUP} untimed; IoU / centre difference over the frames both runs tracked.",
        "",
        "| tracker | device | engine | precision | fps | speed-up over CPU | GPU peak MiB | mean IoU vs CPU "
        "| max centre diff px |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        if "fps" not in r:
            why = (r.get("skipped") or r.get("error") or "").replace("|", "/")
            lines.append(
                f"| {r['tracker']} | {r.get('device', '')} | {r.get('engine', '')} | "
                f"{r.get('precision', '')} | - | - | - | - | {why[:90]} |"
            )
            continue
        vs = r.get("vs_cpu") or {}
        lines.append(
            f"| {r['tracker']} | {r['device']} | {r['engine']} | {r['precision']} | {r['fps']:.1f} | "
            + (f"{r['speedup_over_cpu']:.1f}x" if "speedup_over_cpu" in r else "-")
            + " | "
            + (f"{r['gpu_peak_mib']:.0f}" if "gpu_peak_mib" in r else "-")
            + " | "
            + (f"{vs['mean_iou']:.4f}" if vs else "-")
            + " | "
            + (f"{vs['max_center_px']:.2f}" if vs else "-")
            + " |"
        )
    return "\n".join(lines) + "\n"


def junit_counts(path: str) -> dict:
    """tests / failures / errors / skipped of a pytest --junitxml file, and the failed tests' names."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["failed"] = [
        f"{c.get('classname')}::{c.get('name')}"
        for c in suite.iter("testcase")
        if c.find("failure") is not None or c.find("error") is not None
    ]
    skips = {}
    for c in suite.iter("testcase"):
        sk = c.find("skipped")
        if sk is not None:
            why = (sk.get("message") or "").strip()[:160]
            skips[why] = skips.get(why, 0) + 1
    counts["skip_reasons"] = skips
    return counts


def write_summary(out_dir: str) -> int:
    """gpu_check.json / gpu_check.md from what the steps of .ci/gpu-check left in out_dir."""
    summary: dict = {}
    bench_json = os.path.join(out_dir, "gpu_bench.json")
    if os.path.isfile(bench_json):
        with open(bench_json) as f:
            summary["bench"] = json.load(f)
    gui_json = os.path.join(out_dir, "gui_cuda.json")
    if os.path.isfile(gui_json):
        with open(gui_json) as f:
            summary["gui_cuda"] = json.load(f)
    junit = os.path.join(out_dir, "pytest_cuda.xml")
    if os.path.isfile(junit):
        summary["tests_cuda"] = junit_counts(junit)
    with open(os.path.join(out_dir, "gpu_check.json"), "w") as f:
        json.dump(summary, f, indent=1)
    md = ["# GPU check", ""]
    t = summary.get("tests_cuda")
    if t:
        md += [
            f"Tests with SIAMSCOPE_DEVICE=cuda: {t['tests']} run, {t['failures']} failed, {t['errors']} errors, "
            f"{t['skipped']} skipped.",
            "",
        ]
        md += [f"- failed: {n}" for n in t["failed"]]
        md += [f"- skipped ({k}x): {why}" for why, k in t["skip_reasons"].items()]
        md.append("")
    g = summary.get("gui_cuda")
    if g:
        md += [
            f"Main window on {g.get('tracker_device')} ({g.get('gpu')}), {g['tracker']}: {g['tracked_frames']} frames "
            f"tracked, {g['packets_drawn']} drawn, heatmap {g['heatmap_results_drawn']} and channel grid "
            f"{g['channel_grid_results_drawn']} redraws of network output ({g['channel_maps_per_frame']} maps a "
            f"frame), window fps {g['window_fps']}, wall {g['wall_fps']} fps, GPU peak {g.get('gpu_peak_mib')} MiB.",
            "",
        ]
    if "bench" in summary:
        md.append(markdown_table(summary["bench"]))
    with open(os.path.join(out_dir, "gpu_check.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    return 0 if "bench" in summary else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trackers.tools.gpu_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="folder for gpu_bench.json and gpu_bench.md")
    p.add_argument(
        "--summary",
        metavar="DIR",
        help="instead: gpu_check.json / .md from the files .ci/gpu-check's steps left in DIR",
    )
    p.add_argument("--video", default=DEFAULT_VIDEO)
    p.add_argument("--frames", type=int, default=100, help="tracked frames per run (default 100)")
    p.add_argument("--cpu-frames", type=int, help="tracked frames of the CPU runs (default: --frames)")
    p.add_argument("--trackers", help="comma-separated names (default: all registered)")
    p.add_argument("--devices", default="cpu,cuda")
    args = p.parse_args(argv)
    if args.summary:
        return write_summary(args.summary)
    if not args.out:
        p.error("--out or --summary is needed")
    if not os.path.isfile(args.video):
        print(f"error: video {args.video!r} does not exist (pass --video)", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    frames = read_frames(args.video, args.frames + 1)
    names = args.trackers.split(",") if args.trackers else None
    report = {"device": device_report(), "video": args.video, "frames": len(frames) - 1, "box": list(BAG_BOX)}
    print(json.dumps(report["device"]))

    def write(runs):
        report["runs"] = runs
        with open(os.path.join(args.out, "gpu_bench.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(args.out, "gpu_bench.md"), "w") as f:
            f.write(markdown_table(report))

    report["cpu_frames"] = min(args.cpu_frames or report["frames"], report["frames"])
    write(
        bench_trackers(
            frames, BAG_BOX, names, tuple(args.devices.split(",")), on_record=write, cpu_frames=args.cpu_frames
        )
    )
    table = markdown_table(report)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
