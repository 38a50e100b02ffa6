"""Where the project's own files are, computed once: the modules that need them sit at different
depths of the package, so each counting its own `dirname`s would break on the next move."""
import os

#: the folder that holds trackers/, models/ and resources/ (a checkout, or the installed tree)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: the project's own data: the default tracker's weights, the model zoo's manifest
RESOURCES_DIR = os.path.join(REPO_ROOT, "resources")
