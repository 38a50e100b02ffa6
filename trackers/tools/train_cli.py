"""`python main.py train`: trains the default tracker's neck + head (trackers/train/trainer.py)."""

from __future__ import annotations

import dataclasses

DEFAULT_OUT = "resources/default_tracker.pth"
SIAMATTN_OUT = "resources/siamattn_effnet.pth"


def add_parser(subparsers) -> None:
    from trackers.train.trainer import TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser("train", help="train the EfficientNet tracker (siamscope-effnet) from ../shared/data")
    p.add_argument(
        "--model",
        choices=("default", "siamattn"),
        default="default",
        help="default: the EfficientNet tracker (siamscope-effnet); siamattn: SiamAttn's attention, RPN "
        "and refinement on the same pairs (trackers/train/siamattn_train.py; its own defaults "
        "for --pairs/--epochs/--batch-size/--lr where those are not given)",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"weights file to write (default {DEFAULT_OUT}, or {SIAMATTN_OUT} "
        "with --model siamattn); a .train.json (siamattn: .json) record is written beside it",
    )
    from trackers.core.paths import shared_path

    # ../shared/data beside the checkout, not the current folder; none for an installed package
    p.add_argument(
        "--data",
        default=shared_path("data"),
        help=f"data folder with videos/ and images/ (never the benchmark; default {d.data_dir} beside the checkout)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--time-limit", type=float, default=0.0, help="siamattn only: stop training after this many seconds (0: none)"
    )
    p.add_argument("--pairs", type=int, default=d.pairs, help="training pairs (features cached once)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--threads", type=int, default=d.threads, help="one thread budget for ONNX Runtime and torch")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="VIDEO",
        help="train without this video of ../shared/data/videos (repeatable): a leave-one-video-out "
        "fold, scored on the video it left out (trackers/train/lovo.py)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="processes cutting the training pairs (default 1: the serial stream the committed "
        "weights were trained with)",
    )
    p.add_argument("--cache", help="feature cache .npz: reused when it exists, written otherwise")
    p.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="siamattn only: start from this SiamAttn weights file (continue an earlier run)",
    )
    p.add_argument(
        "--write-synthetic",
        metavar="DIR",
        help="instead of training, write held-out synthetic sequences (OTB layout, exact ground "
        "truth) to DIR for `python main.py eval DIR`",
    )
    p.add_argument(
        "--write-lovo",
        metavar="DIR",
        help="instead of training, write the leave-one-video-out sequences (../shared/data/videos, "
        "pseudo-labelled by NanoTrack v3, NaN where the target is absent) to DIR "
        "(trackers/train/lovo.py)",
    )
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    import os

    from trackers.train.trainer import TrainConfig, train

    from .usage import UsageError

    if not args.data:
        from .program import program_name

        raise UsageError(
            f"no data folder given (../shared/data is the default only in a checkout): "
            f"{program_name()} train --data DIR"
        )
    if not os.path.isdir(args.data):
        raise UsageError(f"data folder {args.data!r} does not exist")
    if "bench" in os.path.normpath(os.path.abspath(args.data)).split(os.sep):
        raise UsageError("the benchmark folder is for evaluation only; train on ../shared/data")
    if args.write_synthetic:
        from trackers.train.synthetic import write_sequences

        for seq in write_sequences(args.data, args.write_synthetic):
            print(seq)
        return 0
    if args.write_lovo:
        from trackers.train.lovo import write_lovo

        shared = os.path.dirname(os.path.normpath(os.path.abspath(args.data)))
        try:
            write_lovo(args.data, shared, args.write_lovo)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(str(e)) from None
        return 0
    if args.model == "siamattn":
        return _train_siamattn(args)
    cfg = dataclasses.replace(
        TrainConfig(),
        data_dir=args.data,
        seed=args.seed,
        pairs=args.pairs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
        device=args.device,
        leave_out=tuple(args.leave_out),
        workers=args.workers,
    )
    from trackers.train.pairs import TRAIN_VIDEOS

    unknown = [v for v in args.leave_out if v not in TRAIN_VIDEOS]
    if unknown:
        raise UsageError(f"--leave-out {', '.join(unknown)}: not a training video (they are {', '.join(TRAIN_VIDEOS)})")
    train(cfg, args.out or DEFAULT_OUT, cache_path=args.cache)
    return 0


def _train_siamattn(args) -> int:
    import sys

    from trackers.train.siamattn_train import SiamAttnTrainConfig, train_siamattn

    d = SiamAttnTrainConfig()
    given = set(a.split("=")[0] for a in sys.argv[1:] if a.startswith("--"))

    def pick(flag, value, default):
        return value if flag in given else default

    cfg = dataclasses.replace(
        d,
        data_dir=args.data,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        pairs=pick("--pairs", args.pairs, d.pairs),
        epochs=pick("--epochs", args.epochs, d.epochs),
        batch_size=pick("--batch-size", args.batch_size, d.batch_size),
        lr=pick("--lr", args.lr, d.lr),
        time_limit_s=args.time_limit,
        init_from=args.init,
    )
    train_siamattn(cfg, args.out or SIAMATTN_OUT, cache_path=args.cache)
    return 0
