"""Convert local MATH/GSM8K-style JSONL files into verl's parquet layout.

python deploy/verl/prepare_math.py --train data/math/train.jsonl --test data/math/test.jsonl --out data/math
"""

import argparse
from pathlib import Path

from rlvr.tasks.math import read_math_jsonl, to_verl_parquet

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--train", type=Path, required=True)
parser.add_argument("--test", type=Path, required=True)
parser.add_argument("--out", type=Path, required=True)
args = parser.parse_args()
for split, path in (("train", args.train), ("test", args.test)):
    rows = read_math_jsonl(path)
    to_verl_parquet(rows, args.out / f"{split}.parquet", split)
    print(f"{split}: {len(rows)} rows -> {args.out / f'{split}.parquet'}")
