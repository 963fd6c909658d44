"""The relevance domain: label schemas, the query-ad pair, prompts, answer parsing, reward, votes and metrics.

Plain functions and models, no training or serving stack: the annotation pipeline, the teacher recipe and the
students all build on this package. Heavier parts are imported from their modules directly:
``relevance.metrics`` (scikit-learn), ``relevance.importers`` (pandas, pyarrow) and ``relevance.synthetic``
(the benchmark generator).
"""

from relevance.pairs import (
    DEFAULT_LIMITS,
    Ad,
    Pair,
    PairBatch,
    PairLimits,
    RowError,
    read_pairs_jsonl,
    validate_jsonl,
    validate_pair,
    write_pairs_jsonl,
)
from relevance.parsing import format_label_line, parse_label
from relevance.prompts import (
    DEFAULT_TEMPLATE,
    PromptTemplate,
    build_messages,
    build_prompt,
    get_template,
    prompt_version,
)
from relevance.reward import RelevanceReward, graded_relevance_reward, relevance_reward
from relevance.schemas import DEFAULT_SCHEMA, Label, LabelSchema, get_schema, project_label, register_schema
from relevance.votes import Vote, vote

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_SCHEMA",
    "DEFAULT_TEMPLATE",
    "Ad",
    "Label",
    "LabelSchema",
    "Pair",
    "PairBatch",
    "PairLimits",
    "PromptTemplate",
    "RelevanceReward",
    "RowError",
    "Vote",
    "build_messages",
    "build_prompt",
    "format_label_line",
    "get_schema",
    "get_template",
    "graded_relevance_reward",
    "parse_label",
    "project_label",
    "prompt_version",
    "read_pairs_jsonl",
    "register_schema",
    "relevance_reward",
    "validate_jsonl",
    "validate_pair",
    "vote",
    "write_pairs_jsonl",
]
