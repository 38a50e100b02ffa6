"""`--start N` / `--frames A:B`: where `track` and `eval` begin and end in a video or sequence
(Megamind's frame 0 is black; some sequences' first frames cannot be used)."""

from __future__ import annotations

from ..core.base import InvalidRequest


def parse_frame_range(start: int | None, frames: str | None) -> tuple[int, int | None]:
    """`--start N` / `--frames A:B` -> (first frame, one past the last or None = to the end).

    Frames are 0-based in decode order; A:B is Python's slice (A included, B not), either side may
    be left out ('10:', ':200')."""
    if start is not None and frames is not None:
        raise InvalidRequest("give --start or --frames, not both")
    if frames is None:
        first = 0 if start is None else start
        if first < 0:
            raise InvalidRequest(f"--start must be a frame index >= 0, got {first}")
        return first, None
    a, sep, b = frames.partition(":")
    try:
        if not sep:
            raise ValueError
        first = int(a) if a.strip() else 0
        end = int(b) if b.strip() else None
    except ValueError:
        raise InvalidRequest(
            f"--frames must be A:B (0-based, B not included; 'A:' runs to the end), got {frames!r}"
        ) from None
    if first < 0 or (end is not None and end <= first + 1):
        raise InvalidRequest(f"--frames {frames}: need 0 <= A and B > A + 1 (the first frame only initialises)")
    return first, end


def add_frame_range_arguments(parser, what: str) -> None:
    parser.add_argument(
        "--start", type=int, metavar="N", help=f"{what} at frame N (0-based), e.g. past black or unusable first frames"
    )
    parser.add_argument(
        "--frames", metavar="A:B", help=f"{what} at frame A and stop before frame B (0-based; 'A:' = to the end)"
    )
