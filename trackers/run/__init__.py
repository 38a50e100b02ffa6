"""A run, around any tracker: frame sources (sources), the one run loop (session), the results kept
and exported (results), drawing (annotate), video writing (video_io), outputs that never destroy
the user's files (safe_output), ground truth and its scores (groundtruth, metrics) and the channel
ranking the app shows (channel_rank). Used alike by the app and the command-line tools."""
