"""bat-core's own per-file command keeps the strategy contract (and so checks the contract suite itself)."""

import sys

from bat_core.dataset import Dataset
from bat_core.mels import MelConfig, compute_mels
from bat_core.runner import RunOptions
from bat_core.testing import StrategyContract


class TestMelsContract(StrategyContract):
    representation = "mels_48k"
    time_axis = 1

    def run_strategy(self, root, models, workers=0, overwrite=False):
        return compute_mels(Dataset.from_root(root), MelConfig(), overwrite=overwrite,
                            options=RunOptions(workers=workers, show_progress=False))

    def command(self, root, models):
        return [sys.executable, "-c", "import sys; from bat_core.cli import main; sys.exit(main(sys.argv[1:]))",
                "mels", "--root", str(root), "-q", "--num-workers", "1"]
