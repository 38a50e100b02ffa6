"""SiamScope's data files, installed as the package `siamscope_resources` (pyproject.toml maps this
folder to that name): read them through trackers.core.paths, which finds this folder in a checkout
and the package when installed. Nothing to import here."""
