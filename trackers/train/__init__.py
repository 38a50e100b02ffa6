"""Training and calibration of the project's own trackers."""

# training builds trackers by name: the project's catalogue (trackers/families' declared list)
from .. import families  # noqa: F401
