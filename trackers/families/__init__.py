"""One module per tracker family (SiamFC, SiamRPN / SiamRPN++, DaSiamRPN, SiamMask, SiamDW, SiamAttn,
NanoTrack, the training-free floor, the project's default tracker, OpenCV's trackers). Each
registers its variants with trackers.core.registry at import; the registry imports them by name."""
