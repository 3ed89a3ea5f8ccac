"""Run the rasa command line with numpy's and Python's global random generators seeded.

    python scripts/seeded_rasa.py [--seed N] test nlu --cross-validation ...

`rasa test nlu --cross-validation` draws its folds with an unseeded StratifiedKFold, so two runs score
different splits of the same data. Seeding the global generators fixes the folds, and the classifier's own
random_seed fixes its training, so the evaluation gives the same figures from run to run.
"""

from __future__ import annotations

import random
import sys

import numpy as np
from rasa.__main__ import main

if __name__ == "__main__":
    args = sys.argv[1:]
    seed = 0
    if args[:1] == ["--seed"]:
        seed, args = int(args[1]), args[2:]
    random.seed(seed)
    np.random.seed(seed)
    sys.argv = ["rasa", *args]
    main()
