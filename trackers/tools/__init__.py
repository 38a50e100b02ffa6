"""The command-line tools behind `python main.py COMMAND`: the command table (cli), track / bench /
gpu_bench, eval (evaluate, eval_*, datasets, longterm, ray_eval), the model zoo, training's command
(train_cli) and the VOT toolkit client. Nothing in trackers.core, trackers.families or
trackers.run imports them."""
