"""The command-line tools behind `python main.py COMMAND`: the command table (cli), track / bench /
gpu_bench, eval (evaluate, eval_*, datasets, longterm, ray_eval), the model zoo, training's command
(train_cli) and the VOT toolkit client. Nothing in trackers.core, trackers.families or
trackers.run imports them."""

# the commands name trackers: the project's catalogue (trackers/families' declared list) is added to
# the registry here, the one place above the families that every command passes through
from .. import families  # noqa: E402,F401
