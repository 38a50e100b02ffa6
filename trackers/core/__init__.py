"""What every tracker shares and nothing else: the `Tracker` interface and its result types (base),
the crop around the target (crop), anchor / point decoding (decode), the Siamese RPN template whose
hooks the families override (siamese), the engines that run a network (engines, compute), and the
registry of trackers by name. Imports nothing from trackers.run, trackers.families or trackers.tools
(pyproject.toml's import-linter contracts)."""
