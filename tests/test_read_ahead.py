"""trackers/sources.py's ReadAheadSource: a file decoded ahead on its own thread (the app's worker
reads files through it, so decoding overlaps tracking). It must hand out exactly what the wrapped
source gives: the same frames in the same order, the same positions, the same end, the same error
at the same frame, and seeking to any frame. Real video (bag.avi) and real image folders."""

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from trackers.run.sources import ImageFolderSource, ReadAheadSource, SourceError, VideoFileSource


def bag_video():
    return shared_path("data", "videos", "bag.avi")


def test_same_frames_positions_and_end_as_the_file():
    direct = list(VideoFileSource(bag_video()))
    ahead = ReadAheadSource(VideoFileSource(bag_video()), depth=3)
    assert (ahead.name, ahead.frame_count, ahead.fps) == (bag_video(), 196, 25.0)
    got = []
    while (frame := ahead.read()) is not None:
        got.append(frame)
        assert ahead.position == len(got)
    assert len(got) == len(direct) == 196
    assert all(np.array_equal(a, b) for a, b in zip(got, direct))
    assert ahead.read() is None and ahead.read() is None and ahead.position == 196  # the end stays the end
    assert ahead.shortfall() is None
    ahead.close()


def test_seek_back_and_forward_reads_from_there():
    direct = list(VideoFileSource(bag_video()))
    with ReadAheadSource(VideoFileSource(bag_video())) as ahead:
        for _ in range(30):  # the reader is a few frames ahead of us when we seek
            ahead.read()
        ahead.seek(7)
        assert ahead.position == 7
        assert np.array_equal(ahead.read(), direct[7]) and ahead.position == 8
        ahead.seek(150)
        assert ahead.position == 150
        rest = list(ahead)
        assert len(rest) == 46 and all(np.array_equal(a, b) for a, b in zip(rest, direct[150:]))
        ahead.seek(0)
        assert np.array_equal(ahead.read(), direct[0])


def test_a_damaged_image_raises_at_its_frame_and_keeps_raising(tmp_path):
    frames = list(VideoFileSource(bag_video()))[:6]
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i:04d}.png"), f)
    (tmp_path / "0003.png").write_bytes(b"not a png")
    with ImageFolderSource(str(tmp_path)) as plain:
        expected = [plain.read() for _ in range(3)]
        with pytest.raises(SourceError) as direct_error:
            plain.read()
    with ReadAheadSource(ImageFolderSource(str(tmp_path))) as ahead:
        got = [ahead.read() for _ in range(3)]
        assert all(np.array_equal(a, b) for a, b in zip(got, expected)) and ahead.position == 3
        for _ in range(2):
            with pytest.raises(SourceError) as e:
                ahead.read()
            assert str(e.value) == str(direct_error.value) and "0003.png" in str(e.value)
        assert ahead.position == 3
        ahead.seek(4)  # past the damaged frame, reading goes on
        assert np.array_equal(ahead.read(), frames[4])


def test_a_live_source_is_refused():
    class Live(VideoFileSource):
        is_live = True

    with pytest.raises(ValueError, match="LatestFrameGrabber"):
        ReadAheadSource(Live(bag_video()))


def test_close_stops_the_reader_thread():
    import threading

    ahead = ReadAheadSource(VideoFileSource(bag_video()), depth=2)
    ahead.read()
    reader = ahead._thread
    assert reader in threading.enumerate() and reader.name == "read-ahead"
    ahead.close()
    assert not reader.is_alive() and not ahead.source.cap.isOpened()
